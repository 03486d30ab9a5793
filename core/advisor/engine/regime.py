"""Stage 5a, the market regime from volatility and trend: a trend label (up, down, range) and
a volatility label (calm, volatile), e.g. "up.calm". Calibration is fitted per regime.

- volatility: vol_20 (per-bar std of log returns) at or above RegimeConfig.high_volatility
  is volatile;
- trend strength: |ret_20| / (vol_20 * sqrt(20)), the 20-bar move in units of its expected
  size under a random walk; at or above RegimeConfig.trend_strength it trends, up or down by
  the sign of ret_20.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from core.advisor.engine.config import RegimeConfig
from core.advisor.engine.features import FeatureVector

__all__ = ["REGIMES", "UNKNOWN", "Regime", "detect_regime", "regime_of"]

UNKNOWN = "unknown"  # too few bars to tell
REGIMES: tuple[str, ...] = tuple(f"{t}.{v}" for t in ("up", "down", "range") for v in ("calm", "volatile"))


@dataclass(frozen=True, slots=True)
class Regime:
    label: str
    volatility: float
    trend_strength: float


def regime_of(ret_20: float, vol_20: float, cfg: RegimeConfig) -> Regime:
    strength = abs(ret_20) / (vol_20 * math.sqrt(20)) if vol_20 > 0 else 0.0
    trend = ("up" if ret_20 > 0 else "down") if strength >= cfg.trend_strength else "range"
    volatility = "volatile" if vol_20 >= cfg.high_volatility else "calm"
    return Regime(f"{trend}.{volatility}", round(vol_20, 12), round(strength, 9))


def detect_regime(features: FeatureVector | None, cfg: RegimeConfig) -> Regime:
    if features is None:
        return Regime(UNKNOWN, 0.0, 0.0)
    return regime_of(features.get("ret_20"), features.get("vol_20"), cfg)
