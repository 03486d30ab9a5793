"""The indicator modules of the catalog: each wraps one indicator of trademesh.core.detector.indicators.

One generic wrapper, `IndicatorModule`, does the work: a module type declares its spec, how
its input becomes the indicator's arguments (`reads`: a number, a bar's high/low/close, a
trade's price and size, a book's sides) and `build` (the indicator from the parameters).

A module steps its indicator only when its input is fresh (a new value arrived since its last
step) and is usable (a finite number; a bar, trade or book of the right type), and answers
only the outputs whose value changed. Until the indicator is warm it answers nothing.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import ClassVar, Protocol

from trademesh.core.detector.engine.kernel import UNCHANGED, Inline, Kernel
from trademesh.core.detector.engine.module import Category, KernelModule, ModuleSpec, Param, ParamKind, Port
from trademesh.core.detector.engine.values import BarValue, BookValue, PortType, TradeValue, Value
from trademesh.core.detector.indicators import (
    Atr,
    Bollinger,
    BookImbalance,
    Donchian,
    Ema,
    Macd,
    RealisedVol,
    Returns,
    Rsi,
    Sma,
    Spread,
    TradeFlowImbalance,
    VolumeSpike,
    Vwap,
    Wma,
    ZScore,
)
from trademesh.core.detector.modules._common import Params
from trademesh.core.platform.errors import InvalidArgument

__all__ = [
    "INDICATOR_MODULES",
    "AtrModule",
    "BollingerModule",
    "BookImbalanceModule",
    "DonchianModule",
    "EmaModule",
    "IndicatorModule",
    "MacdModule",
    "RealisedVolModule",
    "ReturnsModule",
    "RsiModule",
    "SmaModule",
    "SpreadModule",
    "TradeFlowImbalanceModule",
    "VolumeSpikeModule",
    "VwapModule",
    "WmaModule",
    "ZScoreModule",
    "bar_high_low",
    "bar_high_low_close",
    "book_sides",
    "number",
    "trade_price_size",
    "trade_size_side",
]

_MAX_PERIOD = 10_000
_VALUE_IN = Port("value", PortType.NUMBER, "The series, one value per step (e.g. a bar's close).")
_BAR_IN = Port("bar", PortType.BAR, "Closed bars (OHLCV).")
_TRADE_IN = Port("trade", PortType.TRADE, "Trades, one per step.")
_BOOK_IN = Port("book", PortType.BOOK, "L2 book snapshots, best levels first.")


class Indicator(Protocol):
    """What trademesh.core.detector.indicators' classes have in common."""

    warmup: int

    @property
    def update(self) -> Callable[..., object]:
        """One value, or a tuple of them (one per output port), or None while not warm."""


# How a fresh input value becomes the indicator's arguments; None: not usable, skipped.
Reader = Callable[[Value], tuple[object, ...] | None]


def _finite(*values: float) -> bool:
    return all(map(math.isfinite, values))


def number(value: Value) -> tuple[object, ...] | None:
    """A finite number (an int as a float; not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    x = float(value)
    return (x,) if math.isfinite(x) else None


def bar_high_low_close(bar: Value) -> tuple[object, ...] | None:
    if not isinstance(bar, BarValue) or not _finite(bar.high, bar.low, bar.close):
        return None
    return bar.high, bar.low, bar.close


def bar_high_low(bar: Value) -> tuple[object, ...] | None:
    if not isinstance(bar, BarValue) or not _finite(bar.high, bar.low):
        return None
    return bar.high, bar.low


def trade_price_size(trade: Value) -> tuple[object, ...] | None:
    if not isinstance(trade, TradeValue) or not _finite(trade.price, trade.size):
        return None
    return trade.price, trade.size


def trade_size_side(trade: Value) -> tuple[object, ...] | None:
    if not isinstance(trade, TradeValue) or not math.isfinite(trade.size):
        return None
    return trade.size, trade.taker_buy


def book_sides(book: Value) -> tuple[object, ...] | None:
    return (book.bids, book.asks) if isinstance(book, BookValue) else None


def _period(default: int, description: str, minimum: int = 1, name: str = "period") -> Param:
    return Param(name, ParamKind.INT, default, description, minimum=minimum, maximum=_MAX_PERIOD)


def _number_out(name: str, description: str) -> Port:
    return Port(name, PortType.NUMBER, description)


class IndicatorModule(KernelModule):
    """One indicator as a module: declare `spec`, `reads` (a number by default) and `build`;
    `finite_only` drops results that are not finite (the book indicators)."""

    reads: ClassVar[Reader] = number
    finite_only: ClassVar[bool] = False

    def __init__(self, params: Params) -> None:
        super().__init__(self.spec.checked_params(params))
        self.indicator = self.build()
        # What each output answered last (None before its first answer).
        self.emitted: list[object] = [None] * len(self.spec.outputs)
        port = self.spec.inputs[0].name
        inline = None
        if type(self).reads is number and len(self.emitted) <= 2 and not self.finite_only:
            lines = _NUMBER_INLINE if len(self.emitted) == 1 else _PAIR_INLINE
            inline = Inline(lines, {"update": self.indicator.update, "emitted": self.emitted})
        self._kernel = Kernel(self._step_function(), (port,), (port,), inline=inline)

    def build(self) -> Indicator:
        raise NotImplementedError

    @property
    def warmup(self) -> int:
        return self.indicator.warmup

    def kernel(self, connected: frozenset[str]) -> Kernel:
        return self._kernel

    def int_param(self, name: str) -> int:
        value = self.params[name]
        assert isinstance(value, int)
        return value

    def float_param(self, name: str) -> float:
        value = self.params[name]
        assert isinstance(value, (int, float))
        return float(value)

    def _step_function(self) -> Callable[[Value, bool], object]:
        update, emitted, finite_only = self.indicator.update, self.emitted, self.finite_only
        if len(emitted) == 1:
            answer = _single_answer(emitted, finite_only)
        else:
            answer = _CHANGES.get(len(emitted), _changes)
            if finite_only:
                answer = _finite_first(answer)
        if type(self).reads is number:
            return _number_step(update, emitted, answer, single=len(emitted) == 1 and not finite_only)
        return _general_step(type(self).reads, update, emitted, answer)


Answer = Callable[[list[object], object], object]

# The number step's common path (a fresh finite float) written out for the generated walk;
# anything else goes through the step itself.
_NUMBER_INLINE = (
    "t_x = {0}",
    "if {1} and type(t_x) is float and t_x - t_x == 0.0:",
    "    r = {update}(t_x)",
    "    if r is None or r == {emitted}[0]:",
    "        r = U",
    "    else:",
    "        {emitted}[0] = r",
    "else:",
    "    r = {call}(t_x, {1})",
)
# The same for two outputs (volume_spike), with the pair's answer of `_number_step`.
_PAIR_INLINE = (
    "t_x = {0}",
    "if {1} and type(t_x) is float and t_x - t_x == 0.0:",
    "    r = {update}(t_x)",
    "    if r is None:",
    "        r = U",
    "    else:",
    "        t_a, t_b = r",
    "        t_e = {emitted}",
    "        if t_e[0] != t_a:",
    "            t_e[0] = t_a",
    "        else:",
    "            t_a = U",
    "        if t_e[1] != t_b:",
    "            t_e[1] = t_b",
    "            r = t_a, t_b",
    "        elif t_a is U:",
    "            r = U",
    "        else:",
    "            r = t_a, U",
    "else:",
    "    r = {call}(t_x, {1})",
)


def _number_step(
    update: Callable[[float], object], emitted: list[object], answer: Answer, *, single: bool
) -> Callable[[Value, bool], object]:
    """A number in, with the checks of `number` inlined (the common case); the answers of one
    and of two outputs inlined too."""
    pair = not single and answer is _changes2

    def step(given: Value, fresh: bool) -> object:
        if not fresh:
            return UNCHANGED
        if type(given) is float:
            if given - given != 0.0:  # inf or nan
                return UNCHANGED
            x = given
        else:
            usable = number(given)
            if usable is None:
                return UNCHANGED
            x = usable[0]  # type: ignore[assignment]
        result = update(x)
        if result is None:
            return UNCHANGED
        if single:
            if result == emitted[0]:
                return UNCHANGED
            emitted[0] = result
            return result
        if pair:  # _changes2 inlined (volume_spike)
            a: object
            b: object
            a, b = result  # type: ignore[misc]
            old_a, old_b = emitted
            if old_a != a:
                emitted[0] = a
            else:
                a = UNCHANGED
            if old_b != b:
                emitted[1] = b
            elif a is UNCHANGED:
                return UNCHANGED
            else:
                b = UNCHANGED
            return a, b
        return answer(emitted, result)

    return step


def _general_step(
    read: Reader, update: Callable[..., object], emitted: list[object], answer: Answer
) -> Callable[[Value, bool], object]:
    def step(value: Value, fresh: bool) -> object:
        if not fresh:
            return UNCHANGED
        args = read(value)
        if args is None:
            return UNCHANGED
        result = update(*args)
        return UNCHANGED if result is None else answer(emitted, result)

    return step


def _single_answer(emitted: list[object], finite_only: bool) -> Answer:
    def answer(emitted: list[object], result: object) -> object:
        if (finite_only and not math.isfinite(result)) or result == emitted[0]:  # type: ignore[arg-type]
            return UNCHANGED
        emitted[0] = result
        return result

    return answer


def _finite_first(answer: Answer) -> Answer:
    def finite(emitted: list[object], result: object) -> object:
        return answer(emitted, result) if _finite(*result) else UNCHANGED  # type: ignore[misc]

    return finite


# The outputs of a tuple result that differ from what they answered last (UNCHANGED for the
# others, or alone when none does); written out for two and three outputs, the indicators' cases.
def _changes(emitted: list[object], result: object) -> object:
    assert isinstance(result, tuple)
    answer: list[object] = []
    for i, new in enumerate(result):
        if emitted[i] != new:
            emitted[i] = new
            answer.append(new)
        else:
            answer.append(UNCHANGED)
    return UNCHANGED if answer.count(UNCHANGED) == len(answer) else tuple(answer)


def _changes2(emitted: list[object], result: object) -> object:
    a: object
    b: object
    a, b = result  # type: ignore[misc]
    old_a, old_b = emitted
    if old_a != a:
        emitted[0] = a
    else:
        a = UNCHANGED
    if old_b != b:
        emitted[1] = b
    elif a is UNCHANGED:
        return UNCHANGED
    else:
        b = UNCHANGED
    return a, b


def _changes3(emitted: list[object], result: object) -> object:
    a: object
    b: object
    c: object
    a, b, c = result  # type: ignore[misc]
    old_a, old_b, old_c = emitted
    if old_a != a:
        emitted[0] = a
    else:
        a = UNCHANGED
    if old_b != b:
        emitted[1] = b
    else:
        b = UNCHANGED
    if old_c != c:
        emitted[2] = c
    else:
        c = UNCHANGED
    if a is UNCHANGED and b is UNCHANGED and c is UNCHANGED:
        return UNCHANGED
    return a, b, c


_CHANGES: dict[int, Answer] = {2: _changes2, 3: _changes3}


class SmaModule(IndicatorModule):
    spec = ModuleSpec(
        type="sma",
        category=Category.INDICATOR,
        description="Simple moving average: the mean of the last `period` values. "
        "First output after `period` values.",
        inputs=(_VALUE_IN,),
        outputs=(_number_out("value", "The average."),),
        params=(_period(20, "How many values the average spans."),),
    )

    def build(self) -> Indicator:
        return Sma(self.int_param("period"))


class EmaModule(IndicatorModule):
    spec = ModuleSpec(
        type="ema",
        category=Category.INDICATOR,
        description="Exponential moving average with alpha = 2 / (period + 1), seeded with the "
        "simple average of the first `period` values. First output after `period` values.",
        inputs=(_VALUE_IN,),
        outputs=(_number_out("value", "The average."),),
        params=(_period(20, "The span: alpha = 2 / (period + 1)."),),
    )

    def build(self) -> Indicator:
        return Ema(self.int_param("period"))


class WmaModule(IndicatorModule):
    spec = ModuleSpec(
        type="wma",
        category=Category.INDICATOR,
        description="Linearly weighted moving average of the last `period` values: the newest "
        "weighs `period`, the oldest 1. First output after `period` values.",
        inputs=(_VALUE_IN,),
        outputs=(_number_out("value", "The average."),),
        params=(_period(20, "How many values the average spans."),),
    )

    def build(self) -> Indicator:
        return Wma(self.int_param("period"))


class RsiModule(IndicatorModule):
    spec = ModuleSpec(
        type="rsi",
        category=Category.INDICATOR,
        description="Wilder's relative strength index, 0 to 100: average gain against average "
        "loss of the changes, smoothed over `period`. 50 on a flat series. "
        "First output after period + 1 values.",
        inputs=(_VALUE_IN,),
        outputs=(_number_out("value", "RSI, 0 to 100."),),
        params=(_period(14, "Wilder's smoothing period."),),
    )

    def build(self) -> Indicator:
        return Rsi(self.int_param("period"))


class ZScoreModule(IndicatorModule):
    spec = ModuleSpec(
        type="zscore",
        category=Category.INDICATOR,
        description="Rolling z-score: how many standard deviations the newest value lies from "
        "the mean of the last `period` values (population deviation; 0 on a constant window). "
        "First output after `period` values.",
        inputs=(_VALUE_IN,),
        outputs=(_number_out("value", "The z-score."),),
        params=(_period(20, "How many values the mean and deviation span.", minimum=2),),
    )

    def build(self) -> Indicator:
        return ZScore(self.int_param("period"))


class ReturnsModule(IndicatorModule):
    spec = ModuleSpec(
        type="returns",
        category=Category.INDICATOR,
        description="Return over `lag` values: simple (x / x[lag back] - 1) or log "
        "(ln(x / x[lag back])). Values <= 0 are not prices and are skipped. "
        "First output after lag + 1 values.",
        inputs=(_VALUE_IN,),
        outputs=(_number_out("value", "The return, as a fraction (0.01 = 1%)."),),
        params=(
            _period(1, "How many values back the return is taken.", name="lag"),
            Param(
                "kind",
                ParamKind.CHOICE,
                "simple",
                "simple or log returns.",
                choices=("simple", "log"),
            ),
        ),
    )

    def build(self) -> Indicator:
        return Returns(self.int_param("lag"), log=self.params["kind"] == "log")


class RealisedVolModule(IndicatorModule):
    spec = ModuleSpec(
        type="realised_vol",
        category=Category.INDICATOR,
        description="Realised volatility: the sample standard deviation of the last `period` "
        "log returns, times sqrt(periods_per_year) (1 = per period). Values <= 0 are skipped. "
        "First output after period + 1 values.",
        inputs=(_VALUE_IN,),
        outputs=(_number_out("value", "The volatility, as a fraction (0.01 = 1%)."),),
        params=(
            _period(20, "How many returns the deviation spans.", minimum=2),
            Param(
                "periods_per_year",
                ParamKind.FLOAT,
                1.0,
                "Annualises: the result is multiplied by its square root (e.g. 365 for daily "
                "bars of a market that never closes, 525600 for minute bars). 1 = per period.",
                minimum=1.0,
                maximum=1e8,
            ),
        ),
    )

    def build(self) -> Indicator:
        return RealisedVol(self.int_param("period"), self.float_param("periods_per_year"))


class MacdModule(IndicatorModule):
    spec = ModuleSpec(
        type="macd",
        category=Category.INDICATOR,
        description="MACD: line = EMA(fast) - EMA(slow), signal = EMA(signal) of the line, "
        "histogram = line - signal. First output after slow + signal - 1 values.",
        inputs=(_VALUE_IN,),
        outputs=(
            _number_out("line", "EMA(fast) - EMA(slow)."),
            _number_out("signal", "The EMA of the line."),
            _number_out("histogram", "line - signal."),
        ),
        params=(
            _period(12, "The fast EMA's period; less than slow.", name="fast"),
            _period(26, "The slow EMA's period.", minimum=2, name="slow"),
            _period(9, "The signal EMA's period.", name="signal"),
        ),
    )

    def build(self) -> Indicator:
        fast, slow = self.int_param("fast"), self.int_param("slow")
        if fast >= slow:
            raise InvalidArgument.field("fast", f"fast ({fast}) must be less than slow ({slow})")
        return Macd(fast, slow, self.int_param("signal"))


class BollingerModule(IndicatorModule):
    spec = ModuleSpec(
        type="bollinger",
        category=Category.INDICATOR,
        description="Bollinger bands: middle = simple average of the last `period` values, "
        "upper/lower = middle ± k population standard deviations of the same values. "
        "First output after `period` values.",
        inputs=(_VALUE_IN,),
        outputs=(
            _number_out("middle", "The simple moving average."),
            _number_out("upper", "middle + k deviations."),
            _number_out("lower", "middle - k deviations."),
        ),
        params=(
            _period(20, "How many values the average and deviation span."),
            Param(
                "k",
                ParamKind.FLOAT,
                2.0,
                "How many standard deviations the bands lie from the middle.",
                minimum=0.0,
                maximum=10.0,
            ),
        ),
    )

    def build(self) -> Indicator:
        return Bollinger(self.int_param("period"), self.float_param("k"))


class AtrModule(IndicatorModule):
    spec = ModuleSpec(
        type="atr",
        category=Category.INDICATOR,
        description="Wilder's average true range of bars: true range = max(high - low, "
        "|high - previous close|, |low - previous close|), smoothed over `period`. "
        "First output after period + 1 bars.",
        inputs=(_BAR_IN,),
        outputs=(_number_out("value", "The average true range, in price units."),),
        params=(_period(14, "Wilder's smoothing period."),),
    )
    reads = bar_high_low_close

    def build(self) -> Indicator:
        return Atr(self.int_param("period"))


class DonchianModule(IndicatorModule):
    spec = ModuleSpec(
        type="donchian",
        category=Category.INDICATOR,
        description="Donchian channel: the highest high and lowest low of the last `period` "
        "bars, and their midpoint. First output after `period` bars.",
        inputs=(_BAR_IN,),
        outputs=(
            _number_out("upper", "The highest high."),
            _number_out("lower", "The lowest low."),
            _number_out("middle", "(upper + lower) / 2."),
        ),
        params=(_period(20, "How many bars the channel spans."),),
    )
    reads = bar_high_low

    def build(self) -> Indicator:
        return Donchian(self.int_param("period"))


class VwapModule(IndicatorModule):
    spec = ModuleSpec(
        type="vwap",
        category=Category.INDICATOR,
        description="Rolling volume-weighted average price of the last `period` trades: "
        "Σ(price * size) / Σ(size). First output after `period` trades.",
        inputs=(_TRADE_IN,),
        outputs=(_number_out("value", "The VWAP."),),
        params=(_period(100, "How many trades the average spans."),),
    )
    reads = trade_price_size

    def build(self) -> Indicator:
        return Vwap(self.int_param("period"))


class TradeFlowImbalanceModule(IndicatorModule):
    spec = ModuleSpec(
        type="trade_flow_imbalance",
        category=Category.INDICATOR,
        description="Trade-flow imbalance of the last `period` trades, -1 to 1: (taker-buy "
        "volume - taker-sell volume) / (their sum). Trades of unknown side count on neither "
        "side. First output after `period` trades.",
        inputs=(_TRADE_IN,),
        outputs=(_number_out("value", "The imbalance, -1 (all sells) to 1 (all buys)."),),
        params=(_period(100, "How many trades the imbalance spans."),),
    )
    reads = trade_size_side

    def build(self) -> Indicator:
        return TradeFlowImbalance(self.int_param("period"))


class VolumeSpikeModule(IndicatorModule):
    spec = ModuleSpec(
        type="volume_spike",
        category=Category.INDICATOR,
        description="Volume spike: ratio = the newest volume / the average of the `period` "
        "volumes before it; spike when ratio >= factor. First output after period + 1 values.",
        inputs=(Port("value", PortType.NUMBER, "A volume per step (e.g. a bar's volume)."),),
        outputs=(
            _number_out("ratio", "The volume over its average (inf over a baseline of 0)."),
            Port("spike", PortType.BOOLEAN, "ratio >= factor."),
        ),
        params=(
            _period(20, "How many earlier volumes the baseline averages."),
            Param(
                "factor",
                ParamKind.FLOAT,
                3.0,
                "The ratio at which a volume is a spike.",
                minimum=1.0,
                maximum=1000.0,
            ),
        ),
    )

    def build(self) -> Indicator:
        return VolumeSpike(self.int_param("period"), self.float_param("factor"))


class SpreadModule(IndicatorModule):
    spec = ModuleSpec(
        type="spread",
        category=Category.INDICATOR,
        description="Bid-ask spread of the book: best ask - best bid, the same in basis points "
        "of the mid price, and the mid. No output while a side is empty.",
        inputs=(_BOOK_IN,),
        outputs=(
            _number_out("spread", "best ask - best bid, in price units."),
            _number_out("bps", "The spread in basis points of the mid (1 bp = 0.01%)."),
            _number_out("mid", "(best bid + best ask) / 2."),
        ),
    )
    reads = book_sides
    finite_only = True

    def build(self) -> Indicator:
        return Spread()


class BookImbalanceModule(IndicatorModule):
    spec = ModuleSpec(
        type="book_imbalance",
        category=Category.INDICATOR,
        description="Order-book imbalance over the best `levels` levels, -1 to 1: (bid size - "
        "ask size) / (their sum). Positive when bids outweigh asks.",
        inputs=(_BOOK_IN,),
        outputs=(_number_out("value", "The imbalance, -1 (all asks) to 1 (all bids)."),),
        params=(
            Param(
                "levels",
                ParamKind.INT,
                5,
                "How many of the best levels of each side count.",
                minimum=1,
                maximum=100,
            ),
        ),
    )
    reads = book_sides
    finite_only = True

    def build(self) -> Indicator:
        return BookImbalance(self.int_param("levels"))


INDICATOR_MODULES: tuple[type[KernelModule], ...] = (
    SmaModule,
    EmaModule,
    WmaModule,
    RsiModule,
    MacdModule,
    AtrModule,
    BollingerModule,
    DonchianModule,
    VwapModule,
    ZScoreModule,
    ReturnsModule,
    RealisedVolModule,
    SpreadModule,
    BookImbalanceModule,
    TradeFlowImbalanceModule,
    VolumeSpikeModule,
)
