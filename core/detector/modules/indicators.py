"""The indicator modules of the catalog: each wraps one indicator of core.detector.indicators.

A module steps its indicator only when its input is fresh (a new value arrived since its last
step) and is usable (a finite number; a bar, trade or book of the right type), and answers
only the outputs whose value changed. Until the indicator is warm it answers nothing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from types import MappingProxyType
from typing import Protocol

from core.detector.engine.module import (
    Category,
    Inputs,
    Module,
    ModuleSpec,
    Outputs,
    Param,
    ParamKind,
    Port,
)
from core.detector.engine.values import BarValue, BookValue, PortType, TradeValue, Value
from core.detector.indicators import (
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
from core.errors import InvalidArgument

__all__ = [
    "INDICATOR_MODULES",
    "AtrModule",
    "BollingerModule",
    "BookImbalanceModule",
    "DonchianModule",
    "EmaModule",
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
]

Params = Mapping[str, int | float | bool | str]

# Shared and read-only: a step with nothing new answers this.
_NO_CHANGE: Outputs = MappingProxyType({})

_MAX_PERIOD = 10_000
_VALUE_IN = Port("value", PortType.NUMBER, "The series, one value per step (e.g. a bar's close).")
_BAR_IN = Port("bar", PortType.BAR, "Closed bars (OHLCV).")
_TRADE_IN = Port("trade", PortType.TRADE, "Trades, one per step.")
_BOOK_IN = Port("book", PortType.BOOK, "L2 book snapshots, best levels first.")


def _period(default: int, description: str, minimum: int = 1, name: str = "period") -> Param:
    return Param(name, ParamKind.INT, default, description, minimum=minimum, maximum=_MAX_PERIOD)


def _number_out(name: str, description: str) -> Port:
    return Port(name, PortType.NUMBER, description)


def _number(inputs: Inputs, name: str) -> float | None:
    """The input as a float when it is fresh and a finite number; None otherwise."""
    if not inputs.is_fresh(name):
        return None
    value = inputs[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _fresh(inputs: Inputs, name: str) -> Value:
    return inputs[name] if inputs.is_fresh(name) else None


class _Scalar(Protocol):
    warmup: int

    def update(self, x: float) -> float | None: ...


class _IndicatorModule(Module):
    """Checks its params, remembers what it emitted and answers only changes."""

    def __init__(self, params: Params) -> None:
        super().__init__(self.spec.checked_params(params))
        self._emitted: dict[str, Value] = {}
        self._warmup = 0

    @property
    def warmup(self) -> int:
        return self._warmup

    def _int(self, name: str) -> int:
        value = self.params[name]
        assert isinstance(value, int)
        return value

    def _float(self, name: str) -> float:
        value = self.params[name]
        assert isinstance(value, (int, float))
        return float(value)

    def _changed(self, values: dict[str, Value]) -> Outputs:
        emitted = self._emitted
        changed = {name: value for name, value in values.items() if emitted.get(name) != value}
        if not changed:
            return _NO_CHANGE
        emitted.update(changed)
        return changed

    def _one(self, value: float | None) -> Outputs:
        if value is None or self._emitted.get("value") == value:
            return _NO_CHANGE
        self._emitted["value"] = value
        return {"value": value}


class _ScalarModule(_IndicatorModule):
    """A module from one NUMBER input "value" to one NUMBER output "value"."""

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._indicator = self._build()
        self._warmup = self._indicator.warmup

    def _build(self) -> _Scalar:
        raise NotImplementedError

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        x = _number(inputs, "value")
        if x is None:
            return _NO_CHANGE
        return self._one(self._indicator.update(x))


class SmaModule(_ScalarModule):
    spec = ModuleSpec(
        type="sma",
        category=Category.INDICATOR,
        description="Simple moving average: the mean of the last `period` values. "
        "First output after `period` values.",
        inputs=(_VALUE_IN,),
        outputs=(_number_out("value", "The average."),),
        params=(_period(20, "How many values the average spans."),),
    )

    def _build(self) -> _Scalar:
        return Sma(self._int("period"))


class EmaModule(_ScalarModule):
    spec = ModuleSpec(
        type="ema",
        category=Category.INDICATOR,
        description="Exponential moving average with alpha = 2 / (period + 1), seeded with the "
        "simple average of the first `period` values. First output after `period` values.",
        inputs=(_VALUE_IN,),
        outputs=(_number_out("value", "The average."),),
        params=(_period(20, "The span: alpha = 2 / (period + 1)."),),
    )

    def _build(self) -> _Scalar:
        return Ema(self._int("period"))


class WmaModule(_ScalarModule):
    spec = ModuleSpec(
        type="wma",
        category=Category.INDICATOR,
        description="Linearly weighted moving average of the last `period` values: the newest "
        "weighs `period`, the oldest 1. First output after `period` values.",
        inputs=(_VALUE_IN,),
        outputs=(_number_out("value", "The average."),),
        params=(_period(20, "How many values the average spans."),),
    )

    def _build(self) -> _Scalar:
        return Wma(self._int("period"))


class RsiModule(_ScalarModule):
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

    def _build(self) -> _Scalar:
        return Rsi(self._int("period"))


class ZScoreModule(_ScalarModule):
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

    def _build(self) -> _Scalar:
        return ZScore(self._int("period"))


class ReturnsModule(_ScalarModule):
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

    def _build(self) -> _Scalar:
        return Returns(self._int("lag"), log=self.params["kind"] == "log")


class RealisedVolModule(_ScalarModule):
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

    def _build(self) -> _Scalar:
        return RealisedVol(self._int("period"), self._float("periods_per_year"))


class MacdModule(_IndicatorModule):
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

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        fast, slow = self._int("fast"), self._int("slow")
        if fast >= slow:
            raise InvalidArgument.field("fast", f"fast ({fast}) must be less than slow ({slow})")
        self._macd = Macd(fast, slow, self._int("signal"))
        self._warmup = self._macd.warmup

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        x = _number(inputs, "value")
        if x is None:
            return _NO_CHANGE
        result = self._macd.update(x)
        if result is None:
            return _NO_CHANGE
        line, signal, histogram = result
        return self._changed({"line": line, "signal": signal, "histogram": histogram})


class BollingerModule(_IndicatorModule):
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

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._bands = Bollinger(self._int("period"), self._float("k"))
        self._warmup = self._bands.warmup

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        x = _number(inputs, "value")
        if x is None:
            return _NO_CHANGE
        result = self._bands.update(x)
        if result is None:
            return _NO_CHANGE
        middle, upper, lower = result
        return self._changed({"middle": middle, "upper": upper, "lower": lower})


class AtrModule(_IndicatorModule):
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

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._atr = Atr(self._int("period"))
        self._warmup = self._atr.warmup

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        bar = _fresh(inputs, "bar")
        if not isinstance(bar, BarValue) or not _finite(bar.high, bar.low, bar.close):
            return _NO_CHANGE
        return self._one(self._atr.update(bar.high, bar.low, bar.close))


class DonchianModule(_IndicatorModule):
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

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._channel = Donchian(self._int("period"))
        self._warmup = self._channel.warmup

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        bar = _fresh(inputs, "bar")
        if not isinstance(bar, BarValue) or not _finite(bar.high, bar.low):
            return _NO_CHANGE
        result = self._channel.update(bar.high, bar.low)
        if result is None:
            return _NO_CHANGE
        upper, lower, middle = result
        return self._changed({"upper": upper, "lower": lower, "middle": middle})


class VwapModule(_IndicatorModule):
    spec = ModuleSpec(
        type="vwap",
        category=Category.INDICATOR,
        description="Rolling volume-weighted average price of the last `period` trades: "
        "Σ(price * size) / Σ(size). First output after `period` trades.",
        inputs=(_TRADE_IN,),
        outputs=(_number_out("value", "The VWAP."),),
        params=(_period(100, "How many trades the average spans."),),
    )

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._vwap = Vwap(self._int("period"))
        self._warmup = self._vwap.warmup

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        trade = _fresh(inputs, "trade")
        if not isinstance(trade, TradeValue) or not _finite(trade.price, trade.size):
            return _NO_CHANGE
        return self._one(self._vwap.update(trade.price, trade.size))


class TradeFlowImbalanceModule(_IndicatorModule):
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

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._flow = TradeFlowImbalance(self._int("period"))
        self._warmup = self._flow.warmup

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        trade = _fresh(inputs, "trade")
        if not isinstance(trade, TradeValue) or not math.isfinite(trade.size):
            return _NO_CHANGE
        return self._one(self._flow.update(trade.size, trade.taker_buy))


class VolumeSpikeModule(_IndicatorModule):
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

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._spike = VolumeSpike(self._int("period"), self._float("factor"))
        self._warmup = self._spike.warmup

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        volume = _number(inputs, "value")
        if volume is None:
            return _NO_CHANGE
        result = self._spike.update(volume)
        if result is None:
            return _NO_CHANGE
        ratio, spike = result
        return self._changed({"ratio": ratio, "spike": spike})


class SpreadModule(_IndicatorModule):
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

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._spread = Spread()
        self._warmup = self._spread.warmup

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        book = _fresh(inputs, "book")
        if not isinstance(book, BookValue):
            return _NO_CHANGE
        result = self._spread.update(book.bids, book.asks)
        if result is None or not _finite(*result):
            return _NO_CHANGE
        spread, bps, mid = result
        return self._changed({"spread": spread, "bps": bps, "mid": mid})


class BookImbalanceModule(_IndicatorModule):
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

    def __init__(self, params: Params) -> None:
        super().__init__(params)
        self._imbalance = BookImbalance(self._int("levels"))
        self._warmup = self._imbalance.warmup

    def step(self, inputs: Inputs, now_ns: int) -> Outputs:
        book = _fresh(inputs, "book")
        if not isinstance(book, BookValue):
            return _NO_CHANGE
        value = self._imbalance.update(book.bids, book.asks)
        if value is not None and not math.isfinite(value):
            return _NO_CHANGE
        return self._one(value)


def _finite(*values: float) -> bool:
    return all(map(math.isfinite, values))


INDICATOR_MODULES: tuple[type[Module], ...] = (
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
