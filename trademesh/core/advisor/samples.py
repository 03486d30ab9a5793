"""Calibration samples from bars: detector-like signals replayed through the advisor's own
stages 3-5 (evaluate_features, combine, and the regime as RegimeReader reads it from the bars up
to the signal's: the functions live decisions run), each labelled with whether its direction was
right `horizon` bars later. So a sample's regime is the one a live decision on those bars reads,
Overwatch's classifier's (trend_up ... thin_liquidity; unknown in the first bars).

The signals: a momentum trigger standing in for a strategy. At a bar where the 5-bar return
is at least `threshold` of its random-walk size (|ret_5| / (vol_20 * sqrt 5)), a signal in its
direction, with detector conviction min(1, strength / 3); then `spacing` bars without one.
Recorded signals and outcomes (the recorder's tables) replace these when there are enough.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Protocol

import numpy as np
import numpy.typing as npt

from trademesh.core.advisor.calibrating import CalibrationSample
from trademesh.core.advisor.engine.config import AdvisorConfig
from trademesh.core.advisor.engine.conviction import combine
from trademesh.core.advisor.engine.evaluation import evaluate_features
from trademesh.core.advisor.engine.features import LOOKBACK, compute_features
from trademesh.core.advisor.engine.model import ModelArtifact
from trademesh.core.advisor.engine.regime import RegimeReader
from trademesh.core.advisor.training import BarArrays
from trademesh.core.domain.model import Candle, Timeframe

__all__ = ["TimedBars", "conviction_samples", "regime_candles"]


class TimedBars(BarArrays, Protocol):
    """Bars as columns with their open times (synthetic.SyntheticBars, offline.BarColumns)."""

    @property
    def open_time_ns(self) -> Sequence[int] | npt.NDArray[np.int64]: ...


def regime_candles(bars: TimedBars, timeframe: Timeframe) -> list[Candle]:
    """The bars as the closed Candles the regime is read from: the classifier reads the high,
    low, close, volume and open time (the open is set to the close: it is not read). A float's
    shortest repr as the Decimal, so the classifier reads the column's own floats."""
    closes = (Decimal(repr(float(c))) for c in bars.close)
    highs, lows, volumes = (map(float, column) for column in (bars.high, bars.low, bars.volume))
    columns = zip(bars.open_time_ns, highs, lows, closes, volumes, strict=True)
    zero = Decimal(0)
    return [
        Candle(timeframe, int(t), c, Decimal(repr(h)), Decimal(repr(lo)), c, Decimal(repr(v)), zero, 0, True)
        for t, h, lo, c, v in columns
    ]


def _regimes(candles: list[Candle], config: AdvisorConfig) -> Callable[[int], str]:
    """The regime a live decision reads at bar t: its context's last window_bars bars up to t, by
    the reader the core runs (t only grows, so each step is a few updates)."""
    reader, kept = RegimeReader(config.regime), config.regime.window_bars

    def regime_at(t: int) -> str:
        return reader.read(("", ""), candles[max(0, t + 1 - kept) : t + 1]).label

    return regime_at


def conviction_samples(
    bars: TimedBars,
    model: ModelArtifact | None,
    config: AdvisorConfig,
    *,
    timeframe: Timeframe,
    horizon: int = 5,
    threshold: float = 1.0,
    spacing: int = 5,
) -> list[CalibrationSample]:
    close, high, low, volume = ([float(v) for v in c] for c in (bars.close, bars.high, bars.low, bars.volume))
    regime_at = _regimes(regime_candles(bars, timeframe), config)
    samples: list[CalibrationSample] = []
    t = LOOKBACK - 1
    while t < len(close) - horizon:
        window = slice(t - LOOKBACK + 1, t + 1)
        features = compute_features(close[window], high[window], low[window], volume[window])
        vol = 0.0 if features is None else features.get("vol_20")
        if features is None or vol <= 0:
            t += 1
            continue
        strength = features.get("ret_5") / (vol * math.sqrt(5))
        if abs(strength) < threshold:
            t += 1
            continue
        sign = 1 if strength > 0 else -1
        evaluation = evaluate_features(features, sign, model, config.rules)
        conviction = combine(min(1.0, abs(strength) / 3.0), evaluation, config.conviction)
        outcome = 1 if sign * (close[t + horizon] - close[t]) > 0 else 0
        samples.append(CalibrationSample(regime_at(t), conviction.raw, outcome))
        t += spacing
    return samples
