"""Deribit's book sequence, which ccxt 4.5.90's deribit client does not check.

A `book.<instrument>.<interval>` notification's data has `type` "snapshot" (the whole
book, with `change_id`) or "change" (with `prev_change_id`, which must equal the last
`change_id`). ccxt applies both as changes and never compares the ids, so
DeribitBookSequence drops a change whose `prev_change_id` does not follow, and every
change after it until the next snapshot (the connector resubscribes to get one).
"""

from __future__ import annotations

from typing import Any

from trademesh.venues.live.spec import SequenceBreak

__all__ = ["DeribitBookSequence", "book_data"]


def book_data(message: Any) -> dict[str, Any] | None:
    """The data of a `book.*` subscription notification; None for any other message."""
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
        data = book_data(message)
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
