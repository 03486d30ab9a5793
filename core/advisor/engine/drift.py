"""Feature drift: the live features of each market against the model's training data. Per
market, the mean of the last `drift_window` feature vectors; a feature drifts when

    shift = |live mean - training mean| / training std  >  drift_limit

An alert is raised when a feature starts drifting, and again only after it came back.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from core.advisor.engine.features import FEATURE_NAMES, FeatureVector
from core.advisor.engine.model import FeatureReference

__all__ = ["DriftAlert", "DriftMonitor"]


@dataclass(frozen=True, slots=True)
class DriftAlert:
    venue: str
    symbol: str
    feature: str
    live_mean: float
    reference_mean: float
    reference_std: float
    shift: float


class DriftMonitor:
    def __init__(self, reference: FeatureReference, window: int, limit: float) -> None:
        self.reference = reference
        self.window = window
        self.limit = limit
        self._recent: dict[tuple[str, str], deque[tuple[float, ...]]] = {}
        self._drifting: set[tuple[str, str, str]] = set()

    def observe(self, venue: str, symbol: str, features: FeatureVector) -> list[DriftAlert]:
        recent = self._recent.setdefault((venue, symbol), deque(maxlen=self.window))
        recent.append(features.values)
        if len(recent) < self.window:
            return []
        alerts = []
        for i, name in enumerate(FEATURE_NAMES):
            alert = self._check(venue, symbol, i, name, sum(v[i] for v in recent) / len(recent))
            if alert is not None:
                alerts.append(alert)
        return alerts

    def _check(self, venue: str, symbol: str, i: int, name: str, live: float) -> DriftAlert | None:
        mean, std = self.reference.means[i], self.reference.stds[i]
        shift = abs(live - mean) / std if std > 0 else 0.0
        key = (venue, symbol, name)
        if shift <= self.limit:
            self._drifting.discard(key)
            return None
        if key in self._drifting:
            return None
        self._drifting.add(key)
        return DriftAlert(venue, symbol, name, round(live, 12), mean, std, round(shift, 6))
