"""The book as it stood when a backtest's range starts, from the recorder's book events.

A venue sends a book snapshot when a stream starts (and after a resync), then deltas: the
recorder keeps the snapshot of its own subscription and the deltas after it. A range that
starts later would open with deltas and no book. So the source begins each symbol with the
book at the start: the last recorded snapshot before it, with every delta after that snapshot
and before the start applied (trademesh.core.domain.book.L2Book, the levels' exact strings), given as one
snapshot at the start time with the last sequence applied. The live detector, subscribing at
that time, gets the same book as its stream's first snapshot.

The deltas are read with a server-side cursor, a page at a time, never all at once.
"""

from __future__ import annotations

from typing import Any

from trademesh.core.backtest.source_rows import BOOK_COLUMNS, book_event_of
from trademesh.core.domain.book import L2Book
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["book_at"]

_PAGE = 5000
_COLUMNS = ", ".join((*BOOK_COLUMNS[0], *BOOK_COLUMNS[1]))
_LAST_SNAPSHOT = (
    f"SELECT {_COLUMNS} FROM book_events WHERE venue = $1 AND symbol = $2 AND snapshot "
    "AND ts_event_ns < $3 ORDER BY ts_event_ns DESC, sequence DESC LIMIT 1"
)
_DELTAS_AFTER = (
    f"SELECT {_COLUMNS} FROM book_events WHERE venue = $1 AND symbol = $2 "
    "AND NOT snapshot AND ts_event_ns >= $4 AND (ts_event_ns, sequence) > ($4, $5) AND ts_event_ns < $3 "
    "ORDER BY ts_event_ns, sequence"
)


async def book_at(conn: Any, venue: str, symbol: str, start_ns: int) -> md.MarketEvent | None:
    """The symbol's book just before `start_ns` as a snapshot at `start_ns`; None when nothing
    before it was recorded. `conn` must be in a transaction (the cursor's)."""
    row = await conn.fetchrow(_LAST_SNAPSHOT, venue, symbol, start_ns)
    if row is None:
        return None
    snapshot = book_event_of(venue, symbol, row).book_snapshot
    book = L2Book()
    book.replace(snapshot.sequence, _levels(snapshot.bids), _levels(snapshot.asks))
    arguments = (venue, symbol, start_ns, row["ts_event_ns"], row["sequence"])
    async for delta_row in conn.cursor(_DELTAS_AFTER, *arguments, prefetch=_PAGE):
        delta = book_event_of(venue, symbol, delta_row).book_delta
        book.apply_wire(delta.sequence, delta.bids, delta.asks)
    return _as_snapshot(venue, symbol, start_ns, book)


def _levels(levels: Any) -> list[tuple[str, str]]:
    return [(level.price, level.size) for level in levels]


def _as_snapshot(venue: str, symbol: str, at_ns: int, book: L2Book) -> md.MarketEvent:
    event = md.MarketEvent(venue=venue, symbol=symbol, ts_event_ns=at_ns, ts_recv_ns=at_ns)
    snapshot = event.book_snapshot
    snapshot.sequence = book.sequence
    bids, asks = book.snapshot()
    for price, size in bids:
        snapshot.bids.add(price=price, size=size)
    for price, size in asks:
        snapshot.asks.add(price=price, size=size)
    return event
