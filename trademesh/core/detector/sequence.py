"""Market events in event-time order: the one order the engine sees them in, live and in a backtest.

The backtest reads the recorder's history by event time; the live detector gets the venues'
streams as they arrive, a little late and sometimes out of order. For both to give the same
signals at the same times, the live detector holds what arrives for a short while (its hold)
and then hands it on in the backtest's order, one timestamp at a time.

- `market_order` is the order of the events of one timestamp (of one venue): book events, then
  trades, then anything else; then by symbol; then a book event by sequence (a delta before
  the snapshot of the same sequence), a trade by trade id. The backtest sorts each
  timestamp's recorded events by it too, so the database's order of text never matters.
- `Sequencer` keeps the held events of every venue in one heap and releases, up to a time,
  one group per (timestamp, venue), oldest first. An event at or before a time already
  released is late: it goes out with the next group, at the last time released (the engine's
  clock never goes back), and is counted. An event without an event time (0) goes out the same
  way, uncounted.

Pure: no clock, no I/O; the shell says up to when.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["Group", "Sequencer", "in_market_order", "market_order"]

_BOOK, _TRADE, _OTHER = 0, 1, 2


def market_order(event: md.MarketEvent) -> tuple[int, str, int, int, str]:
    """The key of an event among the events of its timestamp."""
    kind = event.WhichOneof("payload")
    if kind == "book_delta":
        return (_BOOK, event.symbol, event.book_delta.sequence, 0, "")
    if kind == "book_snapshot":
        return (_BOOK, event.symbol, event.book_snapshot.sequence, 1, "")
    if kind == "trade":
        return (_TRADE, event.symbol, 0, 0, event.trade.trade_id)
    return (_OTHER, event.symbol, 0, 0, "")


class Group(NamedTuple):
    """The events of one venue at one time, in `market_order`, and when the last of them was
    handed in (the shell's clock, 0 unknown)."""

    time_ns: int
    venue: str
    events: list[md.MarketEvent]
    received_ns: int = 0


class Sequencer:
    """Held market events of every venue, released in event-time order up to a given time."""

    def __init__(self) -> None:
        self._heap: list[tuple[int, str, tuple[int, str, int, int, str], int, md.MarketEvent, int]] = []
        self._added = 0  # the tie-break that keeps equal keys in arrival order
        self.released_ns = 0  # the latest time released
        self.late = 0

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, venue: str, events: Iterable[md.MarketEvent], received_ns: int = 0) -> None:
        heap, released = self._heap, self.released_ns
        for event in events:
            at = event.ts_event_ns
            if at <= released:
                self.late += at > 0
                at = released
            self._added += 1
            heapq.heappush(heap, (at, venue, market_order(event), self._added, event, received_ns))

    def reach(self, time_ns: int) -> None:
        """A tick ran at this time: what comes before it is late (a tick runs before the events
        of its own time, as in a backtest)."""
        self.released_ns = max(self.released_ns, time_ns - 1)  # its own time's events come after it

    def earliest(self) -> int | None:
        """The time of the oldest event held, None when none is."""
        return self._heap[0][0] if self._heap else None

    def release(self, until_ns: int) -> list[Group]:
        """The groups at or before `until_ns`, oldest first; the events held after it stay."""
        heap, groups = self._heap, list[Group]()
        while heap and heap[0][0] <= until_ns:
            at, venue, _, _, event, received = heapq.heappop(heap)
            last = groups[-1] if groups else None
            if last is not None and last.time_ns == at and last.venue == venue:
                last.events.append(event)
                if received > last.received_ns:
                    groups[-1] = last._replace(received_ns=received)
            else:
                groups.append(Group(at, venue, [event], received))
        if groups:
            self.released_ns = max(self.released_ns, groups[-1].time_ns)
        return groups


def in_market_order(events: Sequence[md.MarketEvent]) -> list[md.MarketEvent]:
    """One timestamp's events of one venue in `market_order` (stable for equal keys)."""
    return sorted(events, key=market_order)
