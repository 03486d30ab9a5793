"""Stage 3's rules: the advisor's own checks of a signal's direction against the bars,
independent of the detector's. Each rule has a weight; the rule score is the fired weight over
the total weight, in [0, 1].

| rule | fires when (long; short mirrored) |
|---|---|
| trend | SMA(5) is above SMA(20) |
| momentum | the 5-bar return is positive |
| not_overextended | RSI(14) is below overbought_rsi (short: above oversold_rsi) |
| volume | the last bar's volume is above the 20 before it (volume_z_20 > 0) |
| volatility | vol_20 is at most max_volatility (either direction) |
"""

from __future__ import annotations

from dataclasses import dataclass

from trademesh.core.advisor.engine.config import RulesConfig
from trademesh.core.advisor.engine.features import FeatureVector

__all__ = ["RuleCheck", "RuleResult", "evaluate_rules"]


@dataclass(frozen=True, slots=True)
class RuleCheck:
    name: str
    weight: float
    value: float  # the feature the rule looked at
    fired: bool


@dataclass(frozen=True)
class RuleResult:
    checks: tuple[RuleCheck, ...]
    score: float  # fired weight / total weight

    @property
    def fired(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.checks if c.fired)


def evaluate_rules(features: FeatureVector, sign: int, cfg: RulesConfig) -> RuleResult:
    """The rules for a signal of direction `sign` (+1 long, -1 short)."""
    cross = features.get("sma_cross_5_20")
    momentum = features.get("ret_5")
    rsi = features.get("rsi_14")
    volume_z = features.get("volume_z_20")
    vol = features.get("vol_20")
    extended = rsi >= cfg.overbought_rsi if sign > 0 else rsi <= cfg.oversold_rsi
    checks = (
        RuleCheck("trend", cfg.trend_weight, cross, cross * sign > 0),
        RuleCheck("momentum", cfg.momentum_weight, momentum, momentum * sign > 0),
        RuleCheck("not_overextended", cfg.extension_weight, rsi, not extended),
        RuleCheck("volume", cfg.volume_weight, volume_z, volume_z > 0),
        RuleCheck("volatility", cfg.volatility_weight, vol, vol <= cfg.max_volatility),
    )
    fired = sum(c.weight for c in checks if c.fired)
    return RuleResult(checks, round(fired / cfg.weights_total(), 9))
