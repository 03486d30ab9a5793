"""Bars of one symbol and timeframe built from trades, by trademesh.core.bars' rules and code.

Each trade goes into its 1s bar by event time (a trade id already in it is a duplicate and dropped);
when the 1s bar closes it is built from its trades (trademesh.core.domain.bar.SecondBar) and merged
into the bar of the timeframe (Bar.merge: open and close by event time and trade id). A bar closes
when the watermark (the latest event time seen minus the lateness, or the clock minus the lateness at
a tick) passes its end; a trade whose 1s bar has closed is late and dropped. Decimal arithmetic as in
trademesh.core.bars (WIDE context), floats only in the BarValue a closed bar becomes.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from trademesh.core.detector.engine.values import BarValue, TradeValue
from trademesh.core.domain.bar import Bar, SecondBar, trade_key
from trademesh.core.domain.decimals import WIDE
from trademesh.core.domain.model import Timeframe

__all__ = ["BarBuilder", "bar_value"]

S1_NS = Timeframe.S1.ns  # every bar is built as 1s bars first (trademesh.core.domain.bar)

_INF = float("inf")
# The float -> Decimal cache is emptied past this many entries. Prices repeat (the tick grid near
# the mid: hundreds of values), sizes mostly do not (the sim's: a new one nearly every trade), so
# the cache fills with sizes at the trade rate: 65,536 entries (~168 B each, ~11 MB a builder,
# hours to fill: the soak's detector slope, issue 57 item 2) held by every builder; 4,096 holds
# the prices a bar needs (~0.7 MB at the cap) and costs a refill of them at most every 4,096 trades.
_MAX_DECIMALS = 4_096


class _OpenSecond:
    """A 1s bar still open: its trades as they came (its Bar is built when it closes) and the
    ids a later copy is a duplicate of (as SecondBar.ids: the first trade's id, even "", then
    every non-empty one)."""

    __slots__ = ("ids", "trades")

    def __init__(self, trade: TradeValue) -> None:
        self.trades = [trade]
        self.ids = {trade.trade_id}


class BarBuilder:
    def __init__(self, symbol: str, timeframe: Timeframe, lateness_ns: int) -> None:
        self.symbol = symbol
        self.timeframe = timeframe
        self.lateness_ns = lateness_ns
        self.max_ts_ns = 0
        self.seconds: dict[int, _OpenSecond] = {}
        # The earliest open second (None when none is open): a trade or tick that closes
        # nothing answers from it alone, without sorting the open seconds or a Decimal context.
        self.first_ns: int | None = None
        self.partial: Bar | None = None
        self.late = 0
        self.duplicates = 0
        self._timeframe_ns = timeframe.ns
        # float -> Decimal(repr(float)), exact either way: prices (and many sizes) repeat.
        self._decimals: dict[float, Decimal] = {}

    def add(self, trade: TradeValue) -> list[BarValue]:
        """Take a trade; the bars it closed, oldest first.

        A trade is only kept with its second (no Decimal, no context): when the second closes,
        its trades go through trademesh.core.bars' SecondBar in the order they came, as they did one by
        one before (issue 18), under one Decimal context for them all; the same bar either
        way (tests/unit/test_detector_backtest.py holds the signals recorded before)."""
        ts, price, size = trade.ts_event_ns, trade.price, trade.size
        # Both finite and above 0 (NaN fails every comparison).
        if ts <= 0 or not (0.0 < price < _INF and 0.0 < size < _INF):
            return []
        if ts > self.max_ts_ns:
            self.max_ts_ns = ts
        watermark = self.max_ts_ns - self.lateness_ns
        start = ts - ts % S1_NS
        second = self.seconds.get(start)
        trade_id = trade.trade_id
        if second is not None and trade_id in second.ids:
            self.duplicates += 1
        elif start + S1_NS <= watermark:
            self.late += 1
        elif second is None:
            self.seconds[start] = _OpenSecond(trade)
            if self.first_ns is None or start < self.first_ns:
                self.first_ns = start
        else:
            second.trades.append(trade)
            if trade_id:
                second.ids.add(trade_id)
        first, partial = self.first_ns, self.partial
        if (first is None or first + S1_NS > watermark) and (
            partial is None or partial.open_time_ns + self._timeframe_ns > watermark
        ):
            return []
        return self.close_until(watermark)

    def close_until(self, watermark_ns: int) -> list[BarValue]:
        """Close the bars whose end the watermark passed."""
        first, bar = self.first_ns, self.partial
        if (first is None or first + S1_NS > watermark_ns) and (
            bar is None or bar.open_time_ns + self._timeframe_ns > watermark_ns
        ):
            return []
        closed: list[BarValue] = []
        with localcontext(WIDE):
            for start in sorted(t for t in self.seconds if t + S1_NS <= watermark_ns):
                closed += self._close_second(self._built(start, self.seconds.pop(start).trades))
            self.first_ns = min(self.seconds) if self.seconds else None
            bar = self.partial
            if bar is not None and bar.open_time_ns + self._timeframe_ns <= watermark_ns:
                closed.append(bar_value(self.symbol, self.timeframe, bar))
                self.partial = None
        return closed

    def _built(self, start: int, trades: list[TradeValue]) -> SecondBar:
        """The 1s bar of these trades (in the order they came), by trademesh.core.bars' SecondBar."""
        known = self._decimals
        if len(known) > _MAX_DECIMALS:
            known.clear()
        decimal = known.get
        first = trades[0]
        price = decimal(first.price) or self._decimal(first.price)
        size = decimal(first.size) or self._decimal(first.size)
        bar = SecondBar.of_trade(start, trade_key(first.ts_event_ns, first.trade_id), price, size)
        for n in range(1, len(trades)):
            trade = trades[n]
            price = decimal(trade.price) or self._decimal(trade.price)
            size = decimal(trade.size) or self._decimal(trade.size)
            bar.add(trade_key(trade.ts_event_ns, trade.trade_id), price, size)
        return bar

    def _decimal(self, value: float) -> Decimal:
        exact = self._decimals[value] = Decimal(repr(value))
        return exact

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
