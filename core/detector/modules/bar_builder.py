"""Bars of one symbol and timeframe built from trades, by core.bars' rules and code.

Each trade goes into its 1s bar by event time (core.bars.bar.SecondBar: a trade id already in
it is a duplicate and dropped); a closed 1s bar is merged into the bar of the timeframe
(Bar.merge: open and close by event time and trade id). A bar closes when the watermark (the
latest event time seen minus the lateness, or the clock minus the lateness at a tick) passes
its end; a trade whose 1s bar has closed is late and dropped. Decimal arithmetic as in
core.bars (WIDE context), floats only in the BarValue a closed bar becomes.
"""

from __future__ import annotations

import math
from decimal import Decimal, localcontext

from core.bars.bar import Bar, SecondBar, trade_key
from core.bars.timeframes import S1_NS
from core.decimals import WIDE
from core.detector.engine.values import BarValue, TradeValue
from core.model import Timeframe

__all__ = ["BarBuilder", "bar_value"]


class BarBuilder:
    def __init__(self, symbol: str, timeframe: Timeframe, lateness_ns: int) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.lateness_ns = lateness_ns
        self.max_ts_ns = 0
        self.seconds: dict[int, SecondBar] = {}
        # The earliest open second (None when none is open): a tick that closes nothing
        # answers from it alone, without sorting the open seconds or a Decimal context.
        self.first_ns: int | None = None
        self.partial: Bar | None = None
        self.late = 0
        self.duplicates = 0

    def add(self, trade: TradeValue) -> list[BarValue]:
        """Take a trade; the bars it closed, oldest first."""
        ts = trade.ts_event_ns
        if ts <= 0 or not (_positive(trade.price) and _positive(trade.size)):
            return []
        self.max_ts_ns = max(self.max_ts_ns, ts)
        with localcontext(WIDE):
            self._add(ts, trade.trade_id, Decimal(repr(trade.price)), Decimal(repr(trade.size)))
        return self.close_until(self.max_ts_ns - self.lateness_ns)

    def close_until(self, watermark_ns: int) -> list[BarValue]:
        """Close the bars whose end the watermark passed."""
        first, bar = self.first_ns, self.partial
        if (first is None or first + S1_NS > watermark_ns) and (
            bar is None or bar.open_time_ns + self.timeframe.ns > watermark_ns
        ):
            return []
        closed: list[BarValue] = []
        with localcontext(WIDE):
            for start in sorted(t for t in self.seconds if t + S1_NS <= watermark_ns):
                closed += self._close_second(self.seconds.pop(start))
            self.first_ns = min(self.seconds) if self.seconds else None
            bar = self.partial
            if bar is not None and bar.open_time_ns + self.timeframe.ns <= watermark_ns:
                closed.append(bar_value(self.symbol, self.timeframe, bar))
                self.partial = None
        return closed

    def _add(self, ts: int, trade_id: str, price: Decimal, size: Decimal) -> None:
        start = ts - ts % S1_NS
        bar = self.seconds.get(start)
        if bar is not None and trade_id in bar.ids:
            self.duplicates += 1
            return
        if start + S1_NS <= self.max_ts_ns - self.lateness_ns:
            self.late += 1
            return
        key = trade_key(ts, trade_id)
        if bar is None:
            self.seconds[start] = SecondBar.of_trade(start, key, price, size)
            if self.first_ns is None or start < self.first_ns:
                self.first_ns = start
        else:
            bar.add(key, price, size)
            if trade_id:
                bar.ids.add(trade_id)

    def _close_second(self, second: SecondBar) -> list[BarValue]:
        if self.timeframe is Timeframe.S1:
            return [bar_value(self.symbol, self.timeframe, second)]
        start = self.timeframe.open_time_ns(second.open_time_ns)
        closed: list[BarValue] = []
        current = self.partial
        if current is not None and current.open_time_ns != start:
            closed.append(bar_value(self.symbol, self.timeframe, current))
            current = None
        if current is None:
            self.partial = second.regrouped(start)
        else:
            current.merge(second)
        return closed


def bar_value(symbol: str, timeframe: Timeframe, bar: Bar) -> BarValue:
    return BarValue(
        symbol=symbol,
        timeframe_s=timeframe.value,
        open_time_ns=bar.open_time_ns,
        open=float(bar.open),
        high=float(bar.high),
        low=float(bar.low),
        close=float(bar.close),
        volume=float(bar.volume),
        quote_volume=float(bar.quote_volume),
        trade_count=bar.trade_count,
    )


def _positive(value: float) -> bool:
    return math.isfinite(value) and value > 0
