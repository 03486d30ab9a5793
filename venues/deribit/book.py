"""Deribit book notifications: what ccxt 4.5.90's deribit client does not check.

A `book.<instrument>.<interval>` notification's data has `type` "snapshot" (the whole
book, with `change_id`) or "change" (with `prev_change_id`, which must equal the last
`change_id`). ccxt applies both as changes and never compares the ids, so:
- DeribitBookSequence drops a change whose `prev_change_id` does not follow and every
  change after it until the next snapshot (the connector resubscribes to get one);
- DeribitClient starts the book afresh on a snapshot, so levels that vanished while
  the connection was down do not survive a reconnect.
"""

from __future__ import annotations

from typing import Any

import ccxt.pro

from venues.live.spec import SequenceBreak

__all__ = ["DeribitBookSequence", "DeribitClient"]


def _book_data(message: Any) -> dict[str, Any] | None:
    if not isinstance(message, dict) or message.get("method") != "subscription":
        return None
    params = message.get("params") or {}
    if not str(params.get("channel", "")).startswith("book."):
        return None
    data = params.get("data")
    return data if isinstance(data, dict) else None


class DeribitBookSequence:
    def __init__(self) -> None:
        self._last: dict[str, Any] = {}
        self._broken: set[str] = set()

    def check(self, message: Any, connection: object) -> SequenceBreak | None:
        data = _book_data(message)
        if data is None:
            return None
        instrument, change_id = str(data.get("instrument_name", "")), data.get("change_id")
        if data.get("type") == "snapshot":
            self._broken.discard(instrument)
            self._last[instrument] = change_id
            return None
        if instrument in self._broken:
            return SequenceBreak(instrument, "")
        last, previous = self._last.get(instrument), data.get("prev_change_id")
        if last is not None and previous != last:
            self._broken.add(instrument)
            return SequenceBreak(instrument, f"prev_change_id {previous} after change_id {last}")
        self._last[instrument] = change_id
        return None


class DeribitClient(ccxt.pro.deribit):  # type: ignore[misc]
    def handle_order_book(self, client: Any, message: dict[str, Any]) -> Any:
        data = _book_data(message)
        if data is not None and data.get("type") == "snapshot":
            symbol = self.safe_symbol(data.get("instrument_name"))
            if self.orderbooks and symbol in self.orderbooks:
                del self.orderbooks[symbol]
        return super().handle_order_book(client, message)
