"""The classifier's indicators, each O(1) per bar in time and memory bounded by its window.

- Dmi: Wilder's directional movement (+DI, -DI) and ADX, smoothed as Wilder did (a sum over the
  first `period` values, then S <- S - S / period + x; ADX the mean of the first `period` DX,
  then ADX <- (ADX * (period - 1) + DX) / period).
- RollingStats: a running mean and standard deviation over the last `size` values from running sums
  (re-summed every RESUM updates so float error cannot build up over a long run).
- LongRun: a market's own long-run level: the plain mean of everything seen while fewer than
  `bars` values came, an exponential mean with weight 1 / bars after; so it is unbiased from
  the first value and forgets slowly (a burst shorter than a fraction of `bars` stands out).

The classifier keeps its state in them and reads them, but steps them in its own loop
(Classifier.update_all: the same operations in the same order on local variables, as a reader
of 700 bars makes 700 steps a decision); their `update`s are the reference its tests hold it to,
bit for bit.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["Dmi", "LongRun", "RollingStats"]

RESUM = 4_096  # updates between exact re-sums of a RollingStats


class Dmi:
    """+DI, -DI and ADX of Wilder's period from highs, lows and closes; None until ready."""

    __slots__ = ("_adx", "_dm_minus", "_dm_plus", "_dx_sum", "_n", "_prev", "_tr", "period")

    def __init__(self, period: int) -> None:
        self.period = period
        self._prev: tuple[float, float, float] | None = None  # the last bar's high, low, close
        self._n = 0  # bars with a true range so far (the first bar has none)
        self._tr = self._dm_plus = self._dm_minus = 0.0
        self._dx_sum = 0.0
        self._adx: float | None = None

    def update(self, high: float, low: float, close: float) -> None:
        prev, self._prev = self._prev, (high, low, close)
        if prev is None:
            return
        p_high, p_low, p_close = prev
        tr = max(high - low, abs(high - p_close), abs(low - p_close))
        up, down = high - p_high, p_low - low
        plus = up if up > down and up > 0 else 0.0
        minus = down if down > up and down > 0 else 0.0
        self._n += 1
        n = self.period
        if self._n <= n:  # the first smoothed values are plain sums
            self._tr += tr
            self._dm_plus += plus
            self._dm_minus += minus
        else:
            self._tr += tr - self._tr / n
            self._dm_plus += plus - self._dm_plus / n
            self._dm_minus += minus - self._dm_minus / n
        if self._n >= n:
            self._add_dx(self._dx())

    def _dx(self) -> float:
        di_plus, di_minus = self.di_plus, self.di_minus
        total = di_plus + di_minus
        return 100.0 * abs(di_plus - di_minus) / total if total > 0 else 0.0

    def _add_dx(self, dx: float) -> None:
        n = self.period
        if self._adx is not None:
            self._adx = (self._adx * (n - 1) + dx) / n
            return
        self._dx_sum += dx
        if self._n == 2 * n - 1:  # n DX values so far: their mean is the first ADX
            self._adx = self._dx_sum / n

    @property
    def di_plus(self) -> float:
        return 100.0 * self._dm_plus / self._tr if self._tr > 0 else 0.0

    @property
    def di_minus(self) -> float:
        return 100.0 * self._dm_minus / self._tr if self._tr > 0 else 0.0

    @property
    def adx(self) -> float | None:
        return self._adx


class RollingStats:
    """Mean and population standard deviation of the last `size` values."""

    __slots__ = ("_since_resum", "_sum", "_sum_sq", "_values", "size")

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: deque[float] = deque(maxlen=size)
        self._sum = self._sum_sq = 0.0
        self._since_resum = 0

    def update(self, value: float) -> None:
        if len(self._values) == self.size:
            old = self._values[0]
            self._sum -= old
            self._sum_sq -= old * old
        self._values.append(value)
        self._sum += value
        self._sum_sq += value * value
        self._since_resum += 1
        if self._since_resum >= RESUM:
            self._since_resum = 0
            self._sum = math.fsum(self._values)
            self._sum_sq = math.fsum(v * v for v in self._values)

    @property
    def full(self) -> bool:
        return len(self._values) == self.size

    @property
    def mean(self) -> float:
        return self._sum / len(self._values) if self._values else 0.0

    @property
    def std(self) -> float:
        count = len(self._values)
        if count == 0:
            return 0.0
        mean = self._sum / count
        return math.sqrt(max(self._sum_sq / count - mean * mean, 0.0))


class LongRun:
    """The long-run level of a series: a running mean for the first `bars` values, then an
    exponential mean of weight 1 / bars."""

    __slots__ = ("bars", "count", "level")

    def __init__(self, bars: int) -> None:
        self.bars = bars
        self.count = 0  # values seen
        self.level = 0.0

    def update(self, value: float) -> None:
        self.count += 1
        weight = 1.0 / min(self.count, self.bars)
        self.level += weight * (value - self.level)
