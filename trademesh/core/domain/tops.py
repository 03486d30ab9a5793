"""A book's top over time, to look at a market as of an event time (the advisor's context as of
a signal's time: trademesh.core.advisor.book_feed; the inspector's quote as of an intent's signal time:
trademesh.core.inspector.market).

- TopBook: one L2 book's best bid and ask kept from a snapshot and deltas (the bridge's, or a
  venue's MarketData stream). Each side's levels are kept by price; a delta moves the best only
  through its own levels, so the side is searched again only when a delta takes its best level
  away.
- Timeline: values by event time (a book's tops, a market's quotes), kept `keep_ns` behind the
  newest (and the one in force at the start of that window). `at(t)` is the last value at or
  before `t`: what a backtest replaying the recorded events up to `t` holds.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Generic, TypeVar

from trademesh.core.domain.book import WireLevel, is_zero

__all__ = ["Timeline", "TopBook"]

T = TypeVar("T")


def _better_bid(price: Decimal, best: Decimal) -> bool:
    return price > best


def _better_ask(price: Decimal, best: Decimal) -> bool:
    return price < best


def _apply(
    side: dict[Decimal, str],
    levels: Sequence[WireLevel],
    best: Decimal | None,
    better: Callable[[Decimal, Decimal], bool],
    pick: Callable[[dict[Decimal, str]], Decimal],
) -> Decimal | None:
    """The side with the levels applied (a zero size removes its level); its best price."""
    lost = False
    for level in levels:
        price = Decimal(level.price)
        if is_zero(level.size):
            if side.pop(price, None) is not None and price == best:
                lost = True
        else:
            side[price] = level.size
            if best is None or better(price, best):
                best = price
    if lost:
        best = pick(side) if side else None
    return best


class TopBook:
    """One book's levels by price and its best of each side."""

    __slots__ = ("ask", "asks", "bid", "bids")

    def __init__(self) -> None:
        self.bids: dict[Decimal, str] = {}
        self.asks: dict[Decimal, str] = {}
        self.bid: Decimal | None = None
        self.ask: Decimal | None = None

    def replace(self, bids: Sequence[WireLevel], asks: Sequence[WireLevel]) -> None:
        self.bids = {Decimal(level.price): level.size for level in bids if not is_zero(level.size)}
        self.asks = {Decimal(level.price): level.size for level in asks if not is_zero(level.size)}
        self.bid = max(self.bids) if self.bids else None
        self.ask = min(self.asks) if self.asks else None

    def apply(self, bids: Sequence[WireLevel], asks: Sequence[WireLevel]) -> None:
        self.bid = _apply(self.bids, bids, self.bid, _better_bid, max)
        self.ask = _apply(self.asks, asks, self.ask, _better_ask, min)

    def key(self) -> tuple[Decimal, str, Decimal, str] | None:
        """The top as it stands (prices and size strings), None while a side is empty."""
        bid, ask = self.bid, self.ask
        if bid is None or ask is None:
            return None
        return bid, self.bids[bid], ask, self.asks[ask]


class Timeline(Generic[T]):
    """Values by event time (non-decreasing: a book's events come in sequence)."""

    __slots__ = ("_times", "_values", "keep_ns")

    def __init__(self, keep_ns: int) -> None:
        self.keep_ns = keep_ns
        self._times: deque[int] = deque()
        self._values: deque[T] = deque()

    def add(self, ts_ns: int, value: T) -> None:
        """The value from `ts_ns` on. A value of the newest's time, or of an earlier one, takes
        the newest's place."""
        times, values = self._times, self._values
        if times and ts_ns <= times[-1]:
            values[-1] = value
            return
        times.append(ts_ns)
        values.append(value)
        start = ts_ns - self.keep_ns
        while len(times) > 1 and times[1] <= start:
            times.popleft()
            values.popleft()

    def at(self, ts_ns: int) -> T | None:
        """The value in force at `ts_ns`; None when the timeline does not reach back to it."""
        found = bisect_right(self._times, ts_ns)
        return self._values[found - 1] if found else None

    @property
    def newest(self) -> T | None:
        """The newest value kept (None: none)."""
        return self._values[-1] if self._values else None

    @property
    def newest_ns(self) -> int | None:
        """The time of the newest value kept."""
        return self._times[-1] if self._times else None

    def clear(self) -> None:
        self._times.clear()
        self._values.clear()

    def __len__(self) -> int:
        return len(self._times)
