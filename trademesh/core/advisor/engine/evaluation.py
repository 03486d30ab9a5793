"""Stage 3, independent evaluation: the advisor's rules and the scikit-learn model over the
features of the context's bars. With fewer bars than the features need, neither can run: the
stage says so and conviction (stage 4) leaves them out."""

from __future__ import annotations

from dataclasses import dataclass

from trademesh.core.advisor.engine.config import RulesConfig
from trademesh.core.advisor.engine.features import LOOKBACK, FeatureVector, bar_series, features_of
from trademesh.core.advisor.engine.model import ModelArtifact, ModelScore
from trademesh.core.advisor.engine.rules import RuleResult, evaluate_rules
from trademesh.core.advisor.engine.snapshot import ContextSnapshot
from trademesh.core.domain.model import Candle

__all__ = ["AdvisorEvaluation", "ScoredBars", "evaluate", "evaluate_features", "score_bars"]


@dataclass(frozen=True)
class AdvisorEvaluation:
    features: FeatureVector | None  # None: fewer than LOOKBACK bars
    rules: RuleResult | None
    model: ModelScore | None  # None: no model, or no features
    model_version: str
    p_direction: float | None  # the model's probability that the signal's direction is right
    note: str  # why a part is missing; "" when all ran


@dataclass(frozen=True)
class ScoredBars:
    """A market's last LOOKBACK bars with their features and the model's score of them. The
    shell hands a market's bars over unchanged until a bar closes (and the backtest the same
    candles), so the same bars are scored once, not once per signal (`score_bars`)."""

    bars: tuple[Candle, ...]
    model: ModelArtifact | None
    features: FeatureVector | None
    score: ModelScore | None


def score_bars(bars: tuple[Candle, ...], model: ModelArtifact | None, last: ScoredBars | None) -> ScoredBars:
    """The bars' features and score: `last` again when it was of equal bars and the same model."""
    window = bars[-LOOKBACK:]
    if last is not None and last.model is model and last.bars == window:
        return last
    features = features_of(bar_series(window))
    score = None if features is None or model is None else model.score(features)
    return ScoredBars(window, model, features, score)


def evaluate(
    snap: ContextSnapshot, sign: int, model: ModelArtifact | None, cfg: RulesConfig,
    scored: ScoredBars | None = None,
) -> AdvisorEvaluation:  # fmt: skip
    """`scored`: the context's bars scored already (score_bars), else they are scored here."""
    if scored is None or scored.model is not model:
        scored = score_bars(snap.context.bars, model, scored)
    features = scored.features
    if features is None:
        note = f"{len(snap.context.bars)} bar(s), the features need {LOOKBACK}"
        return AdvisorEvaluation(None, None, None, "", None, note)
    return evaluate_features(features, sign, model, cfg, scored.score)


def evaluate_features(
    features: FeatureVector, sign: int, model: ModelArtifact | None, cfg: RulesConfig,
    score: ModelScore | None = None,
) -> AdvisorEvaluation:  # fmt: skip
    """The rules and the model on a feature vector (offline calibration calls this too);
    `score`: the model's score of `features`, when known."""
    rules = evaluate_rules(features, sign, cfg)
    if model is None:
        return AdvisorEvaluation(features, rules, None, "", None, "no model loaded")
    if score is None:
        score = model.score(features)
    p_direction = score.p_up if sign > 0 else round(1.0 - score.p_up, 9)
    return AdvisorEvaluation(features, rules, score, model.version, p_direction, "")
