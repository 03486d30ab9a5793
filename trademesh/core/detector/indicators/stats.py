"""Statistics of a series: rolling z-score and returns."""

from __future__ import annotations

import math

from trademesh.core.detector.indicators._window import RollingMoments, new_deque

__all__ = ["Returns", "ZScore"]


class ZScore:
    """Rolling z-score: z = (x[t] - mean) / sd, mean and population standard deviation over the
    last n values including x[t]; 0.0 when sd is 0 (a constant window). Warm after n values."""

    __slots__ = ("_moments", "period", "warmup")

    def __init__(self, period: int) -> None:
        self.period = period
        self.warmup = period
        self._moments = RollingMoments(period)

    def update(self, x: float) -> float | None:
        moments = self._moments
        moments.push(x)
        if not moments.full:
            return None
        variance = moments.variance()
        if variance == 0.0:
            return 0.0
        return (x - moments.mean()) / math.sqrt(variance)

    def held(self) -> int:
        return len(self._moments.values)


class Returns:
    """Returns over a lag of k values: simple r = x[t] / x[t-k] - 1, or log r = ln(x[t] / x[t-k]).

    Warm after k + 1 values. A value <= 0 is not a price: it is skipped (the state does not
    change and the last return is answered again)."""

    __slots__ = ("_last", "_log", "_values", "lag", "warmup")

    def __init__(self, lag: int, log: bool = False) -> None:
        self.lag = lag
        self.warmup = lag + 1
        self._log = log
        self._values = new_deque()
        self._last: float | None = None

    def update(self, x: float) -> float | None:
        if not x > 0.0:
            return self._last
        values = self._values
        values.append(x)
        if len(values) <= self.lag:
            return None
        base = values.popleft()
        self._last = math.log(x / base) if self._log else x / base - 1.0
        return self._last

    def held(self) -> int:
        return len(self._values)
