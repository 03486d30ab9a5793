"""Price channels: Donchian."""

from __future__ import annotations

from collections import deque

from trademesh.core.detector.indicators._window import new_deque

__all__ = ["Donchian"]


class Donchian:
    """Donchian channel over the last n bars: (upper, lower, middle).

    upper = max(high) and lower = min(low) over the n newest bars; middle = (upper + lower) / 2.
    Warm after n bars. The extremes come from monotonic deques (the front is the extreme; a new
    value first pops every value it beats from the back): each value is pushed and popped at
    most once, so O(1) amortised per bar."""

    __slots__ = ("_high_at", "_highs", "_index", "_low_at", "_lows", "period", "warmup")

    def __init__(self, period: int) -> None:
        self.period = period
        self.warmup = period
        self._index = 0
        # Values and the bar index each came from, front = the window's extreme.
        self._highs = new_deque()
        self._high_at: deque[float] = new_deque()
        self._lows = new_deque()
        self._low_at: deque[float] = new_deque()

    def update(self, high: float, low: float) -> tuple[float, float, float] | None:
        index = self._index
        self._index = index + 1
        expired = index - self.period
        highs, high_at = self._highs, self._high_at
        while highs and highs[-1] <= high:
            highs.pop()
            high_at.pop()
        highs.append(high)
        high_at.append(index)
        if high_at[0] <= expired:
            highs.popleft()
            high_at.popleft()
        lows, low_at = self._lows, self._low_at
        while lows and lows[-1] >= low:
            lows.pop()
            low_at.pop()
        lows.append(low)
        low_at.append(index)
        if low_at[0] <= expired:
            lows.popleft()
            low_at.popleft()
        if index + 1 < self.period:
            return None
        upper = highs[0]
        lower = lows[0]
        return upper, lower, (upper + lower) / 2.0

    def held(self) -> int:
        return max(len(self._highs), len(self._lows))
