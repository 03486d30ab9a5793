"""Calibration samples from bars: detector-like signals replayed through the advisor's own
stages 3-5 (evaluate_features, combine, detect_regime: the functions live decisions run), each
labelled with whether its direction was right `horizon` bars later.

The signals: a momentum trigger standing in for a strategy. At a bar where the 5-bar return
is at least `threshold` of its random-walk size (|ret_5| / (vol_20 * sqrt 5)), a signal in its
direction, with detector conviction min(1, strength / 3); then `spacing` bars without one.
Recorded signals and outcomes (the recorder's tables) replace these when there are enough.
"""

from __future__ import annotations

import math

from core.advisor.calibrating import CalibrationSample
from core.advisor.engine.config import AdvisorConfig
from core.advisor.engine.conviction import combine
from core.advisor.engine.evaluation import evaluate_features
from core.advisor.engine.features import LOOKBACK, compute_features
from core.advisor.engine.model import ModelArtifact
from core.advisor.engine.regime import detect_regime
from core.advisor.training import BarArrays

__all__ = ["conviction_samples"]


def conviction_samples(
    bars: BarArrays,
    model: ModelArtifact | None,
    config: AdvisorConfig,
    *,
    horizon: int = 5,
    threshold: float = 1.0,
    spacing: int = 5,
) -> list[CalibrationSample]:
    close, high, low, volume = ([float(v) for v in c] for c in (bars.close, bars.high, bars.low, bars.volume))
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
        regime = detect_regime(features, config.regime)
        outcome = 1 if sign * (close[t + horizon] - close[t]) > 0 else 0
        samples.append(CalibrationSample(regime.label, conviction.raw, outcome))
        t += spacing
    return samples
