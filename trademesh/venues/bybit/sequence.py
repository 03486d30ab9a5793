"""Bybit order-book update ids: ccxt's bybit client applies deltas without checking them.

Every `orderbook.<depth>.<symbol>` frame carries `u`, the update id: a snapshot (or `u`
= 1, Bybit's service-restart snapshot) starts a run and each delta must carry the previous
`u` + 1. A delta that skips means one was missed: it and every delta after it are
dropped until the venue's next snapshot, which the connector asks for by resubscribing.
"""

from __future__ import annotations

from typing import Any

from trademesh.venues.live.spec import SequenceBreak

__all__ = ["BybitBookSequence"]


class BybitBookSequence:
    def __init__(self) -> None:
        self._last: dict[str, int] = {}
        self._broken: set[str] = set()

    def check(self, message: Any, connection: object) -> SequenceBreak | None:
        if not isinstance(message, dict) or not str(message.get("topic", "")).startswith("orderbook."):
            return None
        data = message.get("data") or {}
        symbol, update_id = str(data.get("s", "")), data.get("u")
        if not isinstance(update_id, int):
            return None
        if message.get("type") == "snapshot" or update_id == 1:
            self._last[symbol] = update_id
            self._broken.discard(symbol)
            return None
        if symbol in self._broken:
            return SequenceBreak(symbol, "")
        last = self._last.get(symbol)
        if last is not None and update_id != last + 1:
            self._broken.add(symbol)
            return SequenceBreak(symbol, f"update id {update_id} after {last}")
        self._last[symbol] = update_id
        return None
