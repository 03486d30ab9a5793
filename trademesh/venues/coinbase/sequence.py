"""Coinbase Advanced Trade `sequence_num`: ccxt's coinbase client does not read it.

Every message on a WebSocket connection carries `sequence_num`, one more than the
previous message's on that connection, whatever its channel. A skip means a message
was lost; which stream it belonged to is unknown, so every book on the connection is
rebuilt: the frame and all after it are dropped until the connector has resubscribed
on a new connection (whose numbers start afresh).
"""

from __future__ import annotations

from typing import Any

from trademesh.venues.live.spec import SequenceBreak

__all__ = ["CoinbaseSequence"]


class CoinbaseSequence:
    def __init__(self) -> None:
        self._last: dict[int, int] = {}
        self._broken: set[int] = set()

    def check(self, message: Any, connection: object) -> SequenceBreak | None:
        if not isinstance(message, dict) or not isinstance(message.get("sequence_num"), int):
            return None
        key, number = id(connection), message["sequence_num"]
        if key in self._broken:
            return SequenceBreak("", "")
        last = self._last.get(key)
        if last is not None and number != last + 1:
            self._broken.add(key)
            return SequenceBreak("", f"sequence_num {number} after {last}")
        self._last[key] = number
        return None
