"""The decisions this advisor made lately, in memory: what GetDecision answers before the
recorder has them (and for dry runs, which are never published), and what WatchDecisions
streams. The last `capacity` decisions with their telemetry; `pulse` wakes the streams."""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from core.foundations.pulse import Pulse
from trademesh.advisor.v1 import messages_pb2 as am

__all__ = ["DecisionJournal", "Made"]


@dataclass(frozen=True)
class Made:
    """One decision (None for telemetry of no decision, e.g. a portfolio allocation) and its events."""

    sequence: int
    decision: am.Decision | None
    events: tuple[am.TelemetryEvent, ...]
    published: bool


class DecisionJournal:
    def __init__(self, capacity: int = 10_000) -> None:
        self.pulse = Pulse()
        self._log: deque[Made] = deque(maxlen=capacity)
        self._by_id: OrderedDict[str, Made] = OrderedDict()
        self._capacity = capacity
        self.sequence = 0

    def add(self, decision: am.Decision | None, events: Sequence[am.TelemetryEvent], published: bool) -> None:
        self.sequence += 1
        made = Made(self.sequence, decision, tuple(events), published)
        self._log.append(made)
        if decision is not None:
            self._by_id[decision.decision_id] = made
            while len(self._by_id) > self._capacity:
                self._by_id.popitem(last=False)
        self.pulse.bump()

    def get(self, decision_id: str) -> Made | None:
        return self._by_id.get(decision_id)

    def after(self, sequence: int) -> tuple[list[Made], int]:
        """What was made after `sequence` (as far as the log reaches), and the sequence now."""
        return [m for m in self._log if m.sequence > sequence], self.sequence
