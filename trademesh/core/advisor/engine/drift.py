"""Feature drift: the live features of each market against the model's training data. Per
market, the mean of the last `drift_window` feature vectors; a feature drifts when

    shift = |live mean - training mean| / training std  >  drift_limit

An alert is raised when a feature starts drifting, and again only after it came back.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

from trademesh.core.advisor.engine.features import FEATURE_NAMES, FeatureVector
from trademesh.core.advisor.engine.model import FeatureReference

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


class _Window:
    """The last `size` vectors and their column sums, kept up to date as vectors come and go
    (and summed afresh every `size` additions, so rounding cannot build up)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.rows: deque[tuple[float, ...]] = deque()
        self.sums = [0.0] * len(FEATURE_NAMES)
        self.added = 0

    def add(self, row: tuple[float, ...]) -> list[float] | None:
        """The column means once the window is full, else None."""
        self.rows.append(row)
        self.sums = [s + x for s, x in zip(self.sums, row, strict=True)]
        if len(self.rows) > self.size:
            old = self.rows.popleft()
            self.sums = [s - x for s, x in zip(self.sums, old, strict=True)]
        self.added += 1
        if self.added % self.size == 0:
            self.sums = [math.fsum(col) for col in zip(*self.rows, strict=True)]
        if len(self.rows) < self.size:
            return None
        return [s / self.size for s in self.sums]


class DriftMonitor:
    def __init__(self, reference: FeatureReference, window: int, limit: float) -> None:
        self.reference = reference
        self.window = window
        self.limit = limit
        self._windows: dict[tuple[str, str], _Window] = {}
        self._drifting: set[tuple[str, str, str]] = set()

    def observe(self, venue: str, symbol: str, features: FeatureVector) -> list[DriftAlert]:
        window = self._windows.setdefault((venue, symbol), _Window(self.window))
        means = window.add(features.values)
        if means is None:
            return []
        alerts = []
        for i, name in enumerate(FEATURE_NAMES):
            alert = self._check(venue, symbol, i, name, means[i])
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
