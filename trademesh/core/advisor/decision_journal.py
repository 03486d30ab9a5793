"""The decisions this advisor made lately, in memory: what GetDecision answers before the
recorder has them (and for dry runs, which are never published), and what WatchDecisions
streams; `pulse` wakes the streams.

Bounded by age as well as by count, so that the memory does not grow with the hours the advisor
runs: a decision with its telemetry holds ~60 kB (its protobuf messages, measured from a mesh's
own), and the 10,000 kept before grew the demo mesh's advisor by ~20-30 MB an hour for 36 hours
(its ~275 decisions an hour), to ~600 MB (issue 57). Kept:
- the log WatchDecisions reads, and the published decisions GetDecision finds: those of the last
  `keep_s` (a watcher takes what is new every second; the recorder has a published decision
  within seconds, and GetDecision then reads it there), at most `capacity` however young;
- dry runs (in no other store): the last `dry_runs`, however old.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.platform.rpc.pulse import Pulse

__all__ = ["CAPACITY", "DRY_RUNS", "KEEP_S", "DecisionJournal", "Made"]

KEEP_S = 600.0
CAPACITY = 1_000  # ~60 MB at most, when decisions come faster than 1,000 in KEEP_S
DRY_RUNS = 100


@dataclass(frozen=True)
class Made:
    """One decision (None for telemetry of no decision, e.g. a portfolio allocation) and its events."""

    sequence: int
    decision: am.Decision | None
    events: tuple[am.TelemetryEvent, ...]
    published: bool
    at_s: float = 0.0  # when it was added (the journal's clock)


class DecisionJournal:
    def __init__(
        self,
        capacity: int = CAPACITY,
        keep_s: float = KEEP_S,
        dry_runs: int = DRY_RUNS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pulse = Pulse()
        self.capacity, self.keep_s, self.dry_runs = capacity, keep_s, dry_runs
        self._clock = clock
        self._log: deque[Made] = deque()
        self._published: OrderedDict[str, Made] = OrderedDict()
        self._dry: OrderedDict[str, Made] = OrderedDict()
        self.sequence = 0

    def add(self, decision: am.Decision | None, events: Sequence[am.TelemetryEvent], published: bool) -> None:
        self.sequence += 1
        made = Made(self.sequence, decision, tuple(events), published, self._clock())
        self._log.append(made)
        if decision is not None:
            kept = self._published if published else self._dry
            kept.pop(decision.decision_id, None)  # an id added again is the newest
            kept[decision.decision_id] = made
        self._trim(made.at_s - self.keep_s)
        self.pulse.bump()

    def _trim(self, oldest_s: float) -> None:
        log, published = self._log, self._published
        while log and (len(log) > self.capacity or log[0].at_s < oldest_s):
            log.popleft()
        while published and (
            len(published) > self.capacity or next(iter(published.values())).at_s < oldest_s
        ):
            published.popitem(last=False)
        while len(self._dry) > self.dry_runs:
            self._dry.popitem(last=False)

    def get(self, decision_id: str) -> Made | None:
        return self._published.get(decision_id) or self._dry.get(decision_id)

    def sizes(self) -> tuple[int, int, int]:
        """Entries of the log, published decisions and dry runs kept now."""
        return len(self._log), len(self._published), len(self._dry)

    def after(self, sequence: int) -> tuple[list[Made], int]:
        """What was made after `sequence` (as far as the log reaches), and the sequence now."""
        return [m for m in self._log if m.sequence > sequence], self.sequence
