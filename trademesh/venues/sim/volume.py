"""The sim's 24h volume and 24h open: what a symbol traded over the last 24 hours, and its price
24 hours ago, from its own trades.

A real venue's ticker states its rolling 24h volume (Binance's 24hrTicker `v` and `q`); the sim
states what its own trades add up to (synthetic flow and the user's, and the history it played
before it opened), in integer lots and ticks x lots. Trades are summed in one-minute buckets: a
bucket leaves the window once all of it is more than 24 h old, so the window is 24 h to 24 h and
one minute long, and a ticker's figure moves at most once a minute as old trades leave it.

The 24h open is the window's first trade's price, as a venue's rolling 24h open is (Binance's
openPrice): each bucket keeps its first trade's price beside its sums (set when the bucket is
made, so a trade into an existing bucket costs nothing more), and the oldest bucket in the
window holds it. A window without trades opens at the last price before it (the price has not
moved since). Memory: at most 1,441 buckets of four ints a symbol.
"""

from __future__ import annotations

from collections import deque

__all__ = ["BUCKET_NS", "WINDOW_NS", "RollingVolume"]

WINDOW_NS = 24 * 3600 * 1_000_000_000
BUCKET_NS = 60 * 1_000_000_000


class RollingVolume:
    """Lots and notional (price ticks x lots) traded in the window, kept as running totals, and
    the window's open (its first trade's price ticks)."""

    __slots__ = ("_buckets", "lots", "notional")

    def __init__(self) -> None:
        # [bucket start ns, lots, notional, first price ticks], oldest first
        self._buckets: deque[list[int]] = deque()
        self.lots = 0
        self.notional = 0

    def add(self, ts_ns: int, price_ticks: int, lots: int) -> None:
        """A trade (per trade, on the hot path: int arithmetic only)."""
        start = ts_ns - ts_ns % BUCKET_NS
        buckets = self._buckets
        if buckets and buckets[-1][0] == start:
            bucket = buckets[-1]
            bucket[1] += lots
            bucket[2] += price_ticks * lots
        else:
            buckets.append([start, lots, price_ticks * lots, price_ticks])
        self.lots += lots
        self.notional += price_ticks * lots

    def totals(self, now_ns: int) -> tuple[int, int]:
        """(lots, notional) of the trades of the last 24 h at now_ns (at a minute's resolution)."""
        buckets, oldest = self._buckets, now_ns - WINDOW_NS - BUCKET_NS
        while buckets and buckets[0][0] <= oldest:
            _, lots, notional, _ = buckets.popleft()
            self.lots -= lots
            self.notional -= notional
        return self.lots, self.notional

    def opening(self, now_ns: int, last: int | None) -> int | None:
        """The price ticks 24 h ago at now_ns (at a minute's resolution): the first trade's of the
        window, else `last` (the symbol's last price: no trade since, so the price then); None
        without either."""
        self.totals(now_ns)
        return self._buckets[0][3] if self._buckets else last
