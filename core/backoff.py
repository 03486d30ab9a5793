"""Exponential backoff with jitter, for every reconnect loop (venues, ingest, consumers)."""

from __future__ import annotations

import random
from collections.abc import Callable

__all__ = ["Backoff"]


class Backoff:
    """Exponential backoff with full jitter around the nominal delay (0.5x to 1.5x)."""

    def __init__(self, initial_s: float, max_s: float, rng: Callable[[], float] = random.random) -> None:
        self.initial_s = initial_s
        self.max_s = max_s
        self.failures = 0
        self._rng = rng

    def next(self) -> float:
        nominal = min(self.max_s, self.initial_s * 2**self.failures)
        self.failures += 1
        return float(nominal * (0.5 + self._rng()))

    def reset(self) -> None:
        self.failures = 0
