"""Exponential backoff with jitter, for every reconnect loop (venues, ingest, consumers), and the
count of loops retrying now (trademesh_retrying_loops)."""

from __future__ import annotations

import random
import weakref
from collections.abc import Callable

from prometheus_client import Gauge

__all__ = ["RETRYING", "Backoff"]

# Every backoff in use: one per retry loop (a loop's backoff lives as long as the loop).
_LIVE: weakref.WeakSet[Backoff] = weakref.WeakSet()
# A loop that never stops retrying (a follower of a venue nobody serves, a request resent though it
# was refused) shows as a count that does not come back down: tests/integration/test_fuzz.py
# reads it after its fuzz.
RETRYING = Gauge(
    "trademesh_retrying_loops",
    "Retry and reconnect loops whose last attempt failed: each waits on its backoff to try again.",
)


def _retrying() -> float:
    # The metrics server's thread reads while the loop adds backoffs: read again when the set moved.
    for _ in range(100):
        try:
            return float(sum(1 for backoff in list(_LIVE) if backoff.failures))
        except RuntimeError:
            continue
    return float("nan")


RETRYING.set_function(_retrying)


class Backoff:
    """Exponential backoff with full jitter around the nominal delay (0.5x to 1.5x)."""

    def __init__(self, initial_s: float, max_s: float, rng: Callable[[], float] = random.random) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0
        self._rng = rng
        _LIVE.add(self)

    def next(self) -> float:
        nominal = min(self.max_s, self.initial_s * 2**self.failures)
        self.failures += 1
        return float(nominal * (0.5 + self._rng()))

    def reset(self) -> None:
        self.failures = 0
