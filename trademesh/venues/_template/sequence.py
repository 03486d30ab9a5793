"""The template venue's book sequence, for a venue whose ccxt client does not check it.

Say which field numbers the book (an update id, a previous id, a checksum) and what ccxt does
with it. The connector calls `check` with every frame before ccxt sees it: a SequenceBreak
drops the frame, and one with a reason resubscribes the book (a RESYNC for its subscribers).
Delete this file (and `sequence_check` in spec.py) when ccxt checks the sequence itself.
"""

from __future__ import annotations

from typing import Any

from trademesh.venues.live.spec import SequenceBreak

__all__ = ["TemplateBookSequence"]


class TemplateBookSequence:
    def __init__(self) -> None:
        self._last: dict[str, Any] = {}  # native symbol -> the last update id applied
        self._broken: set[str] = set()  # symbols waiting for a new snapshot

    def check(self, message: Any, connection: object) -> SequenceBreak | None:
        if not isinstance(message, dict) or message.get("channel") != "book":
            return None
        symbol, update, previous = str(message.get("symbol")), message.get("u"), message.get("pu")
        if message.get("type") == "snapshot":
            self._broken.discard(symbol)
        elif symbol in self._broken:
            return SequenceBreak(symbol, "")  # dropped quietly until the new snapshot
        elif (last := self._last.get(symbol)) is not None and previous != last:
            self._broken.add(symbol)
            return SequenceBreak(symbol, f"update {update} follows {previous}, not {last}")
        self._last[symbol] = update
        return None
