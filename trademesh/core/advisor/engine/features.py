"""Features from bars: one function for training and for live decisions, so the model sees in
production exactly what it was trained on.

Computed in floats (features are not money) over the last `LOOKBACK` bars, in plain Python:
the same numbers on every machine, and fast on a window this small.

| feature | meaning |
|---|---|
| ret_1, ret_5, ret_20 | log return over the last 1, 5, 20 bars |
| vol_20 | standard deviation of the last 20 one-bar log returns |
| range_10 | mean (high - low) / close over the last 10 bars |
| sma_gap_20 | close / SMA(20) - 1 |
| sma_cross_5_20 | SMA(5) / SMA(20) - 1 |
| rsi_14 | average gain / (average gain + average loss) over 14 bars, in [0, 1]; 0.5 when flat |
| volume_z_20 | the last bar's volume against the 20 before it, in standard deviations |
| zscore_20 | (close - SMA(20)) / std of the last 20 closes |
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

from trademesh.core.domain.model import Candle

__all__ = [
    "FEATURE_NAMES",
    "LOOKBACK",
    "BarSeries",
    "FeatureVector",
    "bar_series",
    "compute_features",
    "features_of",
]

FEATURE_NAMES: tuple[str, ...] = (
    "ret_1",
    "ret_5",
    "ret_20",
    "vol_20",
    "range_10",
    "sma_gap_20",
    "sma_cross_5_20",
    "rsi_14",
    "volume_z_20",
    "zscore_20",
)
LOOKBACK = 21  # bars a feature vector needs (20 returns)


@dataclass(frozen=True, slots=True)
class BarSeries:
    close: tuple[float, ...]
    high: tuple[float, ...]
    low: tuple[float, ...]
    volume: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class FeatureVector:
    values: tuple[float, ...]  # in FEATURE_NAMES' order

    def get(self, name: str) -> float:
        return self.values[FEATURE_NAMES.index(name)]

    def named(self) -> dict[str, float]:
        return dict(zip(FEATURE_NAMES, self.values, strict=True))


def bar_series(candles: Sequence[Candle]) -> BarSeries:
    return BarSeries(
        close=tuple(float(c.close) for c in candles),
        high=tuple(float(c.high) for c in candles),
        low=tuple(float(c.low) for c in candles),
        volume=tuple(float(c.volume) for c in candles),
    )


def _mean(xs: Sequence[float]) -> float:
    return math.fsum(xs) / len(xs)


def _std(xs: Sequence[float]) -> float:
    m = _mean(xs)
    return math.sqrt(math.fsum((x - m) ** 2 for x in xs) / len(xs))


def _rsi(close: Sequence[float]) -> float:
    moves = [b - a for a, b in zip(close[-15:-1], close[-14:], strict=True)]
    gains = math.fsum(m for m in moves if m > 0)
    losses = -math.fsum(m for m in moves if m < 0)
    return 0.5 if gains + losses == 0 else gains / (gains + losses)


def _ratio_minus_one(a: float, b: float) -> float:
    return a / b - 1.0 if b != 0 else 0.0


def _z(x: float, xs: Sequence[float]) -> float:
    s = _std(xs)
    return (x - _mean(xs)) / s if s > 0 else 0.0


def compute_features(
    close: Sequence[float], high: Sequence[float], low: Sequence[float], volume: Sequence[float]
) -> FeatureVector | None:
    """The feature vector at the last bar; None with fewer than LOOKBACK bars or a price <= 0."""
    if len(close) < LOOKBACK or min(close[-LOOKBACK:]) <= 0:
        return None
    c = close[-LOOKBACK:]
    logs = [math.log(b / a) for a, b in itertools.pairwise(c)]
    sma20 = _mean(c[-20:])
    values = (
        logs[-1],
        math.fsum(logs[-5:]),
        math.fsum(logs),
        _std(logs),
        _mean([(h - lo) / cl for h, lo, cl in zip(high[-10:], low[-10:], c[-10:], strict=True)]),
        _ratio_minus_one(c[-1], sma20),
        _ratio_minus_one(_mean(c[-5:]), sma20),
        _rsi(c),
        _z(volume[-1], volume[-LOOKBACK:-1]),
        _z(c[-1], c[-20:]),
    )
    return FeatureVector(values)


def features_of(series: BarSeries) -> FeatureVector | None:
    return compute_features(series.close, series.high, series.low, series.volume)
