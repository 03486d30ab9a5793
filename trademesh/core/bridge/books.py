"""The bridge's copy of every L2 book on the bus, per (venue, symbol), kept from its snapshots and deltas.

It lets a new book subscriber start with a snapshot and a conflated one restart from a
fresh one, and it keeps the bridge's promise that deltas follow their snapshot without
holes: a delta that repeats an older sequence (the bus delivers at least once) is dropped,
and one that skips a sequence makes the book unusable until the venue's next snapshot;
deltas are held back meanwhile, and subscribers are told once (a GAP notice).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator, Sequence

from trademesh.core.bridge.encode import event_chunk
from trademesh.core.domain.book import L2Book, Level
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["BookVerdict", "BridgeBooks"]


class BookVerdict(enum.Enum):
    PASS = "pass"  # the event is the book's next step: pass it on
    DROP = "drop"  # a repeat, or the book is unusable: subscribers must not see it
    HOLE = "hole"  # the book just became unusable: tell its subscribers


class _State:
    __slots__ = ("book", "chunk", "last", "usable")

    def __init__(self) -> None:
        self.book = L2Book()
        self.usable = False
        # The last event applied: a snapshot made of the book takes its times (read only then).
        self.last: md.MarketEvent | None = None
        self.chunk: bytes | None = None  # the encoded snapshot, until the book changes


_PASSED = (BookVerdict.PASS, "")
_DROPPED = (BookVerdict.DROP, "")


def _levels(levels: Sequence[md.BookLevel]) -> list[Level]:
    return [(level.price, level.size) for level in levels]


class BridgeBooks:
    def __init__(self) -> None:
        self._states: dict[tuple[str, str], _State] = {}

    def snapshot(self, venue: str, symbol: str, event: md.MarketEvent) -> BookVerdict:
        state = self._state(venue, symbol)
        snapshot = event.book_snapshot
        bids, asks = _levels(snapshot.bids), _levels(snapshot.asks)
        if state.usable and snapshot.sequence == state.book.sequence and _same(state.book, bids, asks):
            return BookVerdict.DROP  # the same snapshot again (written twice to the bus)
        state.book.replace(snapshot.sequence, bids, asks)
        self._changed(state, event)
        state.usable = True
        return BookVerdict.PASS

    def delta(self, venue: str, symbol: str, event: md.MarketEvent) -> tuple[BookVerdict, str]:
        """The verdict, and for a HOLE why."""
        state = self._states.get((venue, symbol))
        if state is None:
            self._state(venue, symbol)
            return BookVerdict.HOLE, "no snapshot of this book on the bus since the bridge started"
        delta, book = event.book_delta, state.book
        sequence = delta.sequence
        if not state.usable or sequence <= book.sequence:
            return _DROPPED
        if sequence != book.sequence + 1:
            state.usable = False
            return BookVerdict.HOLE, f"book delta {sequence} does not follow {book.sequence} on the bus"
        book.apply_wire(sequence, delta.bids, delta.asks)
        state.chunk, state.last = None, event
        return _PASSED

    def follows(self, venue: str, symbol: str, event: md.MarketEvent) -> bool | None:
        """delta()'s common cases in one call, for the pump's loop: True when the delta is the
        book's next step (applied), False when it is dropped (a repeat, or the book unusable);
        None when delta() must judge it (a hole, or a book never seen)."""
        state = self._states.get((venue, symbol))
        if state is None:
            return None
        if not state.usable:
            return False
        delta, book = event.book_delta, state.book
        sequence = delta.sequence
        if sequence != book.sequence + 1:
            return None if sequence > book.sequence else False
        book.apply_wire(sequence, delta.bids, delta.asks)
        state.chunk, state.last = None, event
        return True

    def sequence(self, venue: str, symbol: str) -> int:
        """The book's sequence; 0 when the bridge has no usable copy."""
        state = self._states.get((venue, symbol))
        return state.book.sequence if state is not None and state.usable else 0

    def usable(self) -> Iterator[tuple[str, str]]:
        """(venue, symbol) of every book the bridge can give a snapshot of."""
        return (key for key, state in self._states.items() if state.usable)

    def snapshot_chunk(self, venue: str, symbol: str) -> bytes:
        """The book as an encoded snapshot event; b"" when it is not usable."""
        state = self._states.get((venue, symbol))
        if state is None or not state.usable:
            return b""
        if state.chunk is None:
            state.chunk = event_chunk(_snapshot_event(venue, symbol, state))
        return state.chunk

    def _state(self, venue: str, symbol: str) -> _State:
        state = self._states.get((venue, symbol))
        if state is None:
            state = self._states[(venue, symbol)] = _State()
        return state

    @staticmethod
    def _changed(state: _State, event: md.MarketEvent) -> None:
        state.chunk, state.last = None, event


def _same(book: L2Book, bids: list[Level], asks: list[Level]) -> bool:
    check = L2Book()
    check.replace(book.sequence, bids, asks)
    return check.bids == book.bids and check.asks == book.asks


def _snapshot_event(venue: str, symbol: str, state: _State) -> md.MarketEvent:
    bids, asks = state.book.snapshot()
    snapshot = md.BookSnapshot(
        sequence=state.book.sequence,
        bids=[md.BookLevel(price=price, size=size) for price, size in bids],
        asks=[md.BookLevel(price=price, size=size) for price, size in asks],
    )
    # The time of the last event in the book: the snapshot is the book as of then.
    last = state.last
    return md.MarketEvent(
        venue=venue,
        symbol=symbol,
        ts_event_ns=0 if last is None else last.ts_event_ns,
        ts_recv_ns=0 if last is None else last.ts_recv_ns,
        book_snapshot=snapshot,
    )
