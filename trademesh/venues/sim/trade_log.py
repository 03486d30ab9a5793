"""The sim's public trades kept for MarketData.GetTrades: the latest TRADES_KEPT of each symbol.

Kept as int columns (time, trade sequence, price ticks, lots, taker side): a trade costs five
array appends on the hot path and 33 bytes kept, not a Python object. The columns are cut back to
TRADES_KEPT when they reach twice that, so the log's memory is bounded and steady. A read from
before the oldest trade kept, once older ones were cut, is refused (FailedPrecondition naming
the oldest kept): the range's start is no longer held, and an answer from later would look whole.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import Callable

from trademesh.core.domain.model import Side
from trademesh.core.platform.errors import FailedPrecondition
from trademesh.venues.runtime.trades import PublicTrade, TradesRead

__all__ = ["TRADES_KEPT", "TradeLog"]

TRADES_KEPT = 20_000
_BUY = Side.BUY


class TradeLog:
    __slots__ = ("_kept", "cut", "lots", "prices", "sells", "seqs", "times")

    def __init__(self, kept: int = TRADES_KEPT) -> None:
        self._kept = kept
        self.times = array("q")
        self.seqs = array("q")
        self.prices = array("q")
        self.lots = array("q")
        self.sells = array("b")
        self.cut = False  # older trades were let go: the first kept is not the symbol's first

    def __len__(self) -> int:
        return len(self.times)

    def add(self, ts_ns: int, trade_seq: int, price_ticks: int, lots: int, taker_side: Side) -> None:
        self.times.append(ts_ns)
        self.seqs.append(trade_seq)
        self.prices.append(price_ticks)
        self.lots.append(lots)
        self.sells.append(taker_side is not _BUY)
        if len(self.times) >= 2 * self._kept:
            cut = len(self.times) - self._kept
            for column in (self.times, self.seqs, self.prices, self.lots, self.sells):
                del column[:cut]
            self.cut = True

    def read(
        self,
        since_ns: int,
        end_ns: int,
        limit: int,
        price_text: Callable[[int], str],
        size_text: Callable[[int], str],
    ) -> TradesRead:
        """The first `limit` kept trades of [since_ns, end_ns) (all of them: complete);
        FailedPrecondition when trades from since_ns on were let go."""
        times = self.times
        if self.cut and since_ns < times[0]:
            raise FailedPrecondition(
                f"the sim keeps the latest {self._kept:,} trades of a symbol: the oldest it holds is "
                f"at {times[0]} ns; ask from then on"
            )
        start = bisect_left(times, since_ns)
        stop = min(len(times), start + limit)
        trades = [
            PublicTrade(
                times[i],
                str(self.seqs[i]),
                price_text(self.prices[i]),
                size_text(self.lots[i]),
                Side.SELL if self.sells[i] else Side.BUY,
            )
            for i in range(start, stop)
            if times[i] < end_ns
        ]
        complete = stop == len(times) or times[stop] >= end_ns or len(trades) < stop - start
        return TradesRead(trades, complete)
