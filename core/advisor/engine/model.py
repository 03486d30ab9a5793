"""The scikit-learn model as the core uses it: P(the price is higher `horizon_bars` bars on),
with each feature's contribution to that probability.

The artifact is made offline (core.advisor.training) and loaded from its bytes by
core.advisor.artifact; the core only calls `score`, which is pure computation.

Attribution is by occlusion: a feature's contribution is the probability minus the
probability with that feature set to its training mean. It works for any estimator with
`predict_proba`, and costs one batched call (one row per feature plus the real one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from core.advisor.engine.features import FEATURE_NAMES, FeatureVector

__all__ = ["Estimator", "FeatureReference", "ModelArtifact", "ModelScore"]


class Estimator(Protocol):
    def predict_proba(self, x: Any) -> Any: ...


@dataclass(frozen=True, slots=True)
class FeatureReference:
    """Each feature's mean and standard deviation on the training data (drift and attribution)."""

    means: tuple[float, ...]
    stds: tuple[float, ...]


@dataclass(frozen=True, slots=True)
class ModelScore:
    p_up: float
    contributions: tuple[tuple[str, float, float], ...]  # (feature, value, contribution to p_up)


@dataclass(frozen=True)
class ModelArtifact:
    version: str
    sha256: str  # of the estimator's serialised bytes
    horizon_bars: int
    timeframe: str
    feature_names: tuple[str, ...]
    reference: FeatureReference
    estimator: Estimator

    def __post_init__(self) -> None:
        if self.feature_names != FEATURE_NAMES:
            raise ValueError(f"model {self.version} was trained on other features: {self.feature_names}")

    def score(self, features: FeatureVector) -> ModelScore:
        base = np.asarray(features.values, dtype=np.float64)
        rows = np.tile(base, (len(base) + 1, 1))
        for i, mean in enumerate(self.reference.means):
            rows[i + 1, i] = mean
        proba = self.estimator.predict_proba(rows)[:, 1]
        p_up = _clip(float(proba[0]))
        contributions = tuple(
            (name, value, round(p_up - _clip(float(proba[i + 1])), 9))
            for i, (name, value) in enumerate(zip(self.feature_names, features.values, strict=True))
        )
        return ModelScore(round(p_up, 9), contributions)


def _clip(p: float) -> float:
    return 0.5 if math.isnan(p) else min(1.0, max(0.0, p))
