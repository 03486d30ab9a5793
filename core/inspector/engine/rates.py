"""Sliding-window order counts per venue and per strategy."""

from __future__ import annotations

from collections import deque

__all__ = ["RateWindow"]


class RateWindow:
    """Times of the orders placed per name, kept for one window."""

    def __init__(self) -> None:
        self._times: dict[str, deque[int]] = {}

    def count(self, name: str, now_ns: int, window_ns: int) -> int:
        times = self._times.get(name)
        if times is None:
            return 0
        while times and times[0] <= now_ns - window_ns:
            times.popleft()
        return len(times)

    def names(self) -> list[str]:
        return sorted(self._times)

    def record(self, name: str, now_ns: int) -> None:
        self._times.setdefault(name, deque()).append(now_ns)
