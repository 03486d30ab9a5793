"""Stage 4, conviction in [0, 1]: a weighted mean of what speaks for the signal's direction.

    raw = (w_d * d + w_m * m + w_r * r) / (w_d + w_m * [m known] + w_r * [r known])

d: the detector's conviction; m: the model's probability that the direction is right
(P(up) for a long, 1 - P(up) for a short); r: the advisor's rule score. A part that could not
run (no model, too few bars) drops out of both sums, so the others keep their proportions.
Weights from ConvictionConfig (0.4, 0.35, 0.25 by default).
"""

from __future__ import annotations

from dataclasses import dataclass

from trademesh.core.advisor.engine.config import ConvictionConfig
from trademesh.core.advisor.engine.evaluation import AdvisorEvaluation

__all__ = ["Conviction", "combine"]


@dataclass(frozen=True, slots=True)
class Conviction:
    detector: float
    model: float | None
    rules: float | None
    weights: tuple[float, float, float]  # (detector, model, rules) as used: 0 for a missing part
    raw: float


def combine(detector: float, evaluation: AdvisorEvaluation, cfg: ConvictionConfig) -> Conviction:
    model = evaluation.p_direction
    rules = None if evaluation.rules is None else evaluation.rules.score
    w_d = cfg.detector_weight
    w_m = 0.0 if model is None else cfg.model_weight
    w_r = 0.0 if rules is None else cfg.rule_weight
    total = w_d * detector + w_m * (model or 0.0) + w_r * (rules or 0.0)
    raw = min(1.0, max(0.0, total / (w_d + w_m + w_r)))
    return Conviction(detector, model, rules, (w_d, w_m, w_r), round(raw, 9))
