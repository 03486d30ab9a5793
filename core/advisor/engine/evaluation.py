"""Stage 3, independent evaluation: the advisor's rules and the scikit-learn model over the
features of the context's bars. With fewer bars than the features need, neither can run: the
stage says so and conviction (stage 4) leaves them out."""

from __future__ import annotations

from dataclasses import dataclass

from core.advisor.engine.config import RulesConfig
from core.advisor.engine.features import LOOKBACK, FeatureVector, bar_series, features_of
from core.advisor.engine.model import ModelArtifact, ModelScore
from core.advisor.engine.rules import RuleResult, evaluate_rules
from core.advisor.engine.snapshot import ContextSnapshot

__all__ = ["Evaluation", "evaluate", "evaluate_features"]


@dataclass(frozen=True)
class Evaluation:
    features: FeatureVector | None  # None: fewer than LOOKBACK bars
    rules: RuleResult | None
    model: ModelScore | None  # None: no model, or no features
    model_version: str
    p_direction: float | None  # the model's probability that the signal's direction is right
    note: str  # why a part is missing; "" when all ran


def evaluate(snap: ContextSnapshot, sign: int, model: ModelArtifact | None, cfg: RulesConfig) -> Evaluation:
    features = features_of(bar_series(snap.context.bars[-LOOKBACK:]))
    if features is None:
        note = f"{len(snap.context.bars)} bar(s), the features need {LOOKBACK}"
        return Evaluation(None, None, None, "", None, note)
    return evaluate_features(features, sign, model, cfg)


def evaluate_features(
    features: FeatureVector, sign: int, model: ModelArtifact | None, cfg: RulesConfig
) -> Evaluation:
    """The rules and the model on a feature vector (offline calibration calls this too)."""
    rules = evaluate_rules(features, sign, cfg)
    if model is None:
        return Evaluation(features, rules, None, "", None, "no model loaded")
    score = model.score(features)
    p_direction = score.p_up if sign > 0 else round(1.0 - score.p_up, 9)
    return Evaluation(features, rules, score, model.version, p_direction, "")
