"""The portfolio allocation recommendation across strategies, from the decisions so far:

    score(strategy) = pass rate * mean final conviction of its intents
    weight(strategy) = score / sum of scores    (equal weights while every score is 0)

The pass rate is intents over decisions. Recommended every `allocation_every` decisions; a
recommendation only (Inspector's limits decide what is traded).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Allocation", "AllocationTracker"]


@dataclass
class _Stats:
    decisions: int = 0
    intents: int = 0
    conviction_sum: float = 0.0

    def score(self) -> float:
        if self.intents == 0:
            return 0.0
        return (self.intents / self.decisions) * (self.conviction_sum / self.intents)


@dataclass(frozen=True, slots=True)
class Allocation:
    weights: dict[str, float]
    decisions: int


@dataclass
class AllocationTracker:
    every: int
    _stats: dict[str, _Stats] = field(default_factory=dict)
    _decisions: int = 0

    def observe(self, strategy_id: str, intent: bool, conviction: float) -> Allocation | None:
        stats = self._stats.setdefault(strategy_id, _Stats())
        stats.decisions += 1
        if intent:
            stats.intents += 1
            stats.conviction_sum += conviction
        self._decisions += 1
        if self._decisions % self.every:
            return None
        return Allocation(self.weights(), self._decisions)

    def weights(self) -> dict[str, float]:
        scores = {s: stats.score() for s, stats in sorted(self._stats.items())}
        total = sum(scores.values())
        if total <= 0:
            return {s: round(1.0 / len(scores), 9) for s in scores}
        return {s: round(v / total, 9) for s, v in scores.items()}
