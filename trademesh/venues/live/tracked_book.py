"""ccxt.pro order books that remember which price levels changed, for incremental book deltas.

ccxt applies every venue update to its order book one level at a time (`storeArray`, which
`store` calls), trims each side to its depth (`limit`) and rebuilds a side from a snapshot
(`reset`, which clears it first). A tracked side records the prices its `storeArray` and
`limit` touched since its change log was last taken; a clear (a reset from a snapshot)
makes the log unusable until it is taken again. The book normalizer takes the log on every
poll and re-reads only those levels, instead of rebuilding and diffing both whole sides.

The log is a hint, never the truth: whoever takes it reads the levels' current sizes from
the side itself, and falls back to a full diff when the log is missing (an untracked book,
an indexed book, a reset, a log taken by someone else, a new book object).

Exchanges get tracked books through `TrackedBooks`, a mixin for the hooked exchange class
that overrides ccxt's `order_book` and `counted_order_book` factories.
"""

from __future__ import annotations

import sys
from bisect import bisect_left
from typing import Any

from ccxt.async_support.base.ws import order_book_side as sides
from ccxt.async_support.base.ws.order_book import CountedOrderBook, OrderBook

__all__ = [
    "LOG_LIMIT",
    "TrackedBooks",
    "TrackedCountedOrderBook",
    "TrackedOrderBook",
    "level_size",
    "take_changes",
]

# A log longer than this is dropped (nobody is taking it, or a burst rewrote the side):
# the next reader diffs the whole side.
LOG_LIMIT = 20_000


class _TrackedSide:
    """Mixin for ccxt's OrderBookSide: `_touched` holds the prices changed since the log was taken.

    None: unknown (a new side, a clear, an overflow); `_taker` is who took the log last.
    """

    _touched: set[Any] | None
    _taker: object | None
    _depth: int

    def __init__(self, deltas: Any = (), depth: int | None = None) -> None:
        self._touched = None
        self._taker = None
        super().__init__(deltas, depth)  # type: ignore[call-arg]

    def storeArray(self, delta: Any) -> None:
        super().storeArray(delta)  # type: ignore[misc]
        touched = self._touched
        if touched is not None:  # recorded after ccxt accepted the level (a bad price raises first)
            touched.add(delta[0])
            if len(touched) > LOG_LIMIT:
                self._touched = None

    def limit(self) -> None:
        touched = self._touched
        if touched is not None and len(self) > self._depth:  # type: ignore[arg-type]
            touched.update(level[0] for level in self[self._depth :])  # type: ignore[index]
        super().limit()  # type: ignore[misc]

    def clear(self) -> None:
        self._touched = None
        super().clear()  # type: ignore[misc]


class TrackedAsks(_TrackedSide, sides.Asks):  # type: ignore[misc]
    pass


class TrackedBids(_TrackedSide, sides.Bids):  # type: ignore[misc]
    pass


class TrackedCountedAsks(_TrackedSide, sides.CountedAsks):  # type: ignore[misc]
    pass


class TrackedCountedBids(_TrackedSide, sides.CountedBids):  # type: ignore[misc]
    pass


def take_changes(side: Any, taker: object) -> set[Any] | None:
    """The prices `side` changed since `taker` last took its log (then a fresh log starts).

    None when they are not known: an untracked side, a cleared or overflowed log, or a log
    someone else took in between.
    """
    if not isinstance(side, _TrackedSide):
        return None
    touched = side._touched if side._taker is taker else None
    side._touched, side._taker = set(), taker
    return touched


def level_size(side: Any, price: Any) -> Any | None:
    """The size of `side`'s level at `price`, or None when it has none (a bisect on ccxt's index)."""
    key = -price if side.side else price
    keys = side._index
    index = bisect_left(keys, key)
    if index < len(keys) and keys[index] == key:
        return side[index][1]
    return None


def _tracked_snapshot(snapshot: Any, depth: int | None, asks: type[Any], bids: type[Any]) -> dict[str, Any]:
    copy = dict(snapshot)
    side_depth = depth or sys.maxsize
    copy["asks"] = asks(snapshot.get("asks", []), side_depth)
    copy["bids"] = bids(snapshot.get("bids", []), side_depth)
    return copy


class TrackedOrderBook(OrderBook):  # type: ignore[misc]
    """ccxt's OrderBook with tracked sides."""

    def __init__(self, snapshot: Any = None, depth: int | None = None) -> None:
        super().__init__(_tracked_snapshot(snapshot or {}, depth, TrackedAsks, TrackedBids), depth)


class TrackedCountedOrderBook(CountedOrderBook):  # type: ignore[misc]
    """ccxt's CountedOrderBook (levels deleted by an order count of 0) with tracked sides."""

    def __init__(self, snapshot: Any = None, depth: int | None = None) -> None:
        tracked = _tracked_snapshot(snapshot or {}, depth, TrackedCountedAsks, TrackedCountedBids)
        OrderBook.__init__(self, tracked, depth)


class TrackedBooks:
    """Mixin for a ccxt.pro exchange class: the books it creates record their changed levels.

    Indexed books (one entry per order, several at a price) stay ccxt's own: they are diffed whole.
    """

    def order_book(self, snapshot: Any = None, depth: int | None = None) -> Any:
        return TrackedOrderBook(snapshot or {}, depth)

    def counted_order_book(self, snapshot: Any = None, depth: int | None = None) -> Any:
        return TrackedCountedOrderBook(snapshot or {}, depth)
