"""OHLCV candles of the sim's own trades, in integer ticks and lots, for live updates and history.

Closed candles are kept at 1s (for six hours) and 1m (for a week), as int64 columns
allocated in full at start (trademesh/venues/sim/candle_store.py: about 2 MB a symbol, then flat);
larger timeframes are built from them on demand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, fields
from decimal import Decimal

from trademesh.core.domain.model import Candle, Timeframe
from trademesh.venues.sim.candle_store import CandleRing

__all__ = ["KEEP_M1_ENTRIES", "KEEP_S1_ENTRIES", "CandleBook", "IntCandle"]

# The history API promises six hours of 1s candles and a week of 1m.
KEEP_S1_ENTRIES = 6 * 3600
KEEP_M1_ENTRIES = 7 * 24 * 60
# (timeframe, length, offset): an interval opens at ts - (ts - offset) % length.
_TIMEFRAMES = tuple((timeframe, timeframe.ns, timeframe.offset_ns) for timeframe in Timeframe)


@dataclass(slots=True)
class IntCandle:
    open_time_ns: int
    open: int
    high: int
    low: int
    close: int
    lots: int = 0
    # Sum of price ticks * lots: quote volume in tick*lot units.
    notional: int = 0
    trades: int = 0

    def add(self, price: int, lots: int) -> None:
        # Per trade and timeframe, on the hot path: comparisons, not max() and min() calls.
        if price > self.high:
            self.high = price
        elif price < self.low:
            self.low = price
        self.close = price
        self.lots += lots
        self.notional += price * lots
        self.trades += 1

    def merge(self, other: IntCandle) -> None:
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)
        self.close = other.close
        self.lots += other.lots
        self.notional += other.notional
        self.trades += other.trades

    def row(self) -> tuple[int, ...]:
        """The fields in their order: a closed candle's row in its CandleRing."""
        return (
            self.open_time_ns,
            self.open,
            self.high,
            self.low,
            self.close,
            self.lots,
            self.notional,
            self.trades,
        )


_WIDTH = len(fields(IntCandle))


def _new(open_time_ns: int, price: int, lots: int) -> IntCandle:
    candle = IntCandle(open_time_ns, price, price, price, price)
    candle.add(price, lots)
    return candle


class CandleBook:
    """One symbol's candles at every timeframe."""

    def __init__(
        self,
        tick: Decimal,
        lot: Decimal,
        *,
        s1_entries: int = KEEP_S1_ENTRIES,
        m1_entries: int = KEEP_M1_ENTRIES,
    ) -> None:
        self._tick = tick
        self._lot = lot
        self._open: list[IntCandle | None] = [None] * len(_TIMEFRAMES)
        self._closed = {
            Timeframe.S1: CandleRing(_WIDTH, s1_entries),
            Timeframe.M1: CandleRing(_WIDTH, m1_entries),
        }

    def add_trade(
        self, ts_ns: int, price: int, lots: int, on_close: Callable[[Timeframe, IntCandle], None]
    ) -> None:
        # Per trade on the hot path: plain int arithmetic, the open candles in a list.
        opened = self._open
        for index, (timeframe, length_ns, offset_ns) in enumerate(_TIMEFRAMES):
            start = ts_ns - (ts_ns - offset_ns) % length_ns
            current = opened[index]
            if current is not None and current.open_time_ns == start:
                # Every open candle holds the last trade and the timeframes nest, so each coarser
                # one holds this interval, and this trade.
                for coarser in opened[index:]:
                    coarser.add(price, lots)  # type: ignore[union-attr]
                return
            if current is not None:
                self._close(timeframe, current, on_close)
            opened[index] = _new(start, price, lots)

    @property
    def open(self) -> dict[Timeframe, IntCandle]:
        """The candles still open, by timeframe."""
        return {tf: c for (tf, _, _), c in zip(_TIMEFRAMES, self._open, strict=True) if c is not None}

    def roll(self, now_ns: int, on_close: Callable[[Timeframe, IntCandle], None]) -> None:
        """Close candles whose interval has ended even when no trade came after them."""
        for index, (timeframe, length_ns, _) in enumerate(_TIMEFRAMES):
            current = self._open[index]
            if current is not None and current.open_time_ns + length_ns <= now_ns:
                self._close(timeframe, current, on_close)
                self._open[index] = None

    def _close(
        self, timeframe: Timeframe, candle: IntCandle, on_close: Callable[[Timeframe, IntCandle], None]
    ) -> None:
        kept = self._closed.get(timeframe)
        if kept is not None:
            kept.append(candle.row())
        on_close(timeframe, candle)

    def history(self, timeframe: Timeframe, start_ns: int, end_ns: int, limit: int) -> list[Candle]:
        source = Timeframe.S1 if timeframe is Timeframe.S1 else Timeframe.M1
        candles = [IntCandle(*row) for row in self._closed[source].between(start_ns, end_ns)]
        merged = list(_regroup(candles, timeframe)) if timeframe is not source else candles
        # The open candle of the asked timeframe, when it falls in the range, comes last.
        current = self.open.get(timeframe)
        if current is not None and start_ns <= current.open_time_ns < end_ns:
            merged = [c for c in merged if c.open_time_ns != current.open_time_ns]
            merged.append(current)
        # Only the candles returned are converted to Decimals: the costly step, about 3 us a candle.
        return [self.to_candle(timeframe, c, closed=c is not current) for c in merged[:limit]]

    def to_candle(self, timeframe: Timeframe, candle: IntCandle, closed: bool) -> Candle:
        tick, lot = self._tick, self._lot
        return Candle(
            timeframe=timeframe,
            open_time_ns=candle.open_time_ns,
            open=candle.open * tick,
            high=candle.high * tick,
            low=candle.low * tick,
            close=candle.close * tick,
            volume=candle.lots * lot,
            quote_volume=candle.notional * tick * lot,
            trade_count=candle.trades,
            closed=closed,
        )


def _regroup(candles: Iterable[IntCandle], timeframe: Timeframe) -> Iterable[IntCandle]:
    group: IntCandle | None = None
    for candle in candles:
        start = timeframe.open_time_ns(candle.open_time_ns)
        if group is not None and group.open_time_ns == start:
            group.merge(candle)
            continue
        if group is not None:
            yield group
        group = IntCandle(start, candle.open, candle.high, candle.low, candle.close, candle.lots,
                          candle.notional, candle.trades)  # fmt: skip
    if group is not None:
        yield group
