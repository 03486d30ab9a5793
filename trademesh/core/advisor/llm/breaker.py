"""A circuit breaker per model: a failing endpoint is left alone for a while, then tried once.

CLOSED: requests go through; `failure_threshold` consecutive failures open it.
OPEN: no request goes through until `cooldown_s` have passed on the injected clock.
HALF_OPEN: one trial request goes through; its success closes the circuit, its failure opens
it for another cool-down.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

__all__ = ["BreakerState", "CircuitBreaker"]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """The breaker of one model; time comes from `clock` (seconds, monotonic)."""

    def __init__(self, failure_threshold: int, cooldown_s: float, clock: Callable[[], float]) -> None:
        self.failure_threshold = failure_threshold
        self.cooldown_s = cooldown_s
        self._clock = clock
        self.failures = 0
        self._opened_at: float | None = None
        self._trial = False

    @property
    def state(self) -> BreakerState:
        if self._opened_at is None:
            return BreakerState.CLOSED
        if self._trial or self._clock() - self._opened_at >= self.cooldown_s:
            return BreakerState.HALF_OPEN
        return BreakerState.OPEN

    def allow(self) -> bool:
        """Whether a request may go now; in HALF_OPEN it lets the one trial through."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self._trial:
            return False
        self._trial = True
        return True

    def record_success(self) -> None:
        self.failures = 0
        self._opened_at = None
        self._trial = False

    def record_failure(self) -> bool:
        """Count a failed request; True when it opened the circuit (the trial's failure re-opens it)."""
        self.failures += 1
        if self._trial or (self._opened_at is None and self.failures >= self.failure_threshold):
            self._opened_at = self._clock()
            self._trial = False
            return True
        return False

    def abandon(self) -> None:
        """The trial request ended with no answer either way (cancelled): another may try."""
        self._trial = False
