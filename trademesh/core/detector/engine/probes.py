"""Probes on a patch's output ports: the latest value wins, drained at most `rate_hz` a second.

Recording is O(1) (store the value and its time) so a probe never slows an evaluation and
never queues; the shell drains updates at its own pace, throttled by the time it gives.
"""

from __future__ import annotations

from dataclasses import dataclass

from trademesh.core.detector.engine.values import Value

__all__ = ["Probe"]


@dataclass(slots=True)
class Probe:
    min_interval_ns: int
    value: Value = None
    at_ns: int = 0
    pending: bool = False
    sent_ns: int | None = None

    def record(self, value: Value, now_ns: int) -> None:
        self.value, self.at_ns, self.pending = value, now_ns, True

    def due(self, now_ns: int) -> bool:
        """Whether an update goes out now (and, if so, it counts as sent)."""
        if not self.pending:
            return False
        if self.sent_ns is not None and now_ns - self.sent_ns < self.min_interval_ns:
            return False
        self.pending, self.sent_ns = False, now_ns
        return True
