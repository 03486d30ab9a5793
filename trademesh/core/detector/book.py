"""A symbol's L2 book as the detector's feed keeps it, for the engine's BookValue.

The engine takes a book as floats, its top levels best first (trademesh.core.detector.engine.values.
BookValue; signals are not money, and no price or size of a book reaches the wire from here).
So each side keeps its sizes by price as floats, and its prices in order, best first, updated
level by level with bisect: a delta that changes a size is one dict write, a new or emptied
level a bisect and a list insert or delete, and the top N levels are a slice. Nothing is sorted
per batch and no Decimal is made (the venue runtime's trademesh.core.domain.book.L2Book, which keeps the exact
strings for snapshots on the wire, sorts by Decimal whenever it is read).

A price is keyed by its value: "100.1" and "100.10" are one level, as they are for Decimal. A
level whose price is not finite is ignored; a size of zero, in any spelling, removes the level.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterable, Sequence
from math import isfinite
from typing import Protocol

__all__ = ["BookSide", "FloatBook", "Level"]


class Level(Protocol):
    """A price level as the wire has it (trademesh.marketdata.v1.BookLevel): decimal strings."""

    @property
    def price(self) -> str: ...

    @property
    def size(self) -> str: ...


class BookSide:
    """One side: size by price, and the prices best first (stored negated for bids, so both
    sides keep ascending keys)."""

    __slots__ = ("_keys", "_sign", "_sizes")

    def __init__(self, bids: bool) -> None:
        self._sign = -1.0 if bids else 1.0
        self._sizes: dict[float, float] = {}
        self._keys: list[float] = []

    def replace(self, levels: Iterable[Level]) -> None:
        sizes: dict[float, float] = {}
        for level in levels:
            price, size = float(level.price), float(level.size)
            if size != 0.0 and isfinite(price):
                sizes[price] = size
        sign = self._sign
        self._sizes = sizes
        self._keys = sorted(sign * price for price in sizes)

    def apply(self, levels: Iterable[Level]) -> None:
        sizes, keys, sign = self._sizes, self._keys, self._sign
        for level in levels:
            price, size = float(level.price), float(level.size)
            if size == 0.0:
                if sizes.pop(price, None) is not None:
                    del keys[bisect_left(keys, sign * price)]
            elif price in sizes:
                sizes[price] = size
            elif isfinite(price):
                insort(keys, sign * price)
                sizes[price] = size

    def top(self, depth: int) -> tuple[tuple[float, float], ...]:
        """The best `depth` levels, best first, as (price, size)."""
        sizes = self._sizes
        if self._sign > 0:
            return tuple([(price, sizes[price]) for price in self._keys[:depth]])
        return tuple([(-key, sizes[-key]) for key in self._keys[:depth]])


class FloatBook:
    """Both sides of one symbol's book."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = BookSide(bids=True)
        self.asks = BookSide(bids=False)

    def replace(self, bids: Iterable[Level], asks: Iterable[Level]) -> None:
        self.bids.replace(bids)
        self.asks.replace(asks)

    def apply(self, bids: Sequence[Level], asks: Sequence[Level]) -> None:
        # A delta mostly changes one level of one side: skip the other side's call.
        if bids:
            self.bids.apply(bids)
        if asks:
            self.asks.apply(asks)
