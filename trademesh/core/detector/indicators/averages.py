"""Moving averages: simple, exponential and linearly weighted."""

from __future__ import annotations

import math

from trademesh.core.detector.indicators._window import RollingSum, new_deque

__all__ = ["Ema", "Sma", "Wma"]


class Sma:
    """Simple moving average: SMA = (x[t-n+1] + ... + x[t]) / n.

    Warm after n values. A compensated running sum: add the newest, remove the oldest."""

    __slots__ = ("_window", "period", "warmup")

    def __init__(self, period: int) -> None:
        self.period = period
        self.warmup = period
        self._window = RollingSum(period)

    def update(self, x: float) -> float | None:
        window = self._window
        window.push(x)
        if len(window.values) < self.period:
            return None
        return window.total / self.period

    def held(self) -> int:
        """How many past values the indicator keeps."""
        return len(self._window.values)


class Ema:
    """Exponential moving average: EMA[t] = EMA[t-1] + alpha * (x[t] - EMA[t-1]).

    alpha = 2 / (n + 1) unless given (Wilder's smoothing, as RSI and ATR use, is alpha = 1/n).
    Seeded with the SMA of the first n values, which is its first output: warm after n values."""

    __slots__ = ("_count", "_value", "alpha", "period", "warmup")

    def __init__(self, period: int, alpha: float | None = None) -> None:
        self.period = period
        self.alpha = 2.0 / (period + 1) if alpha is None else alpha
        self.warmup = period
        self._count = 0
        self._value = 0.0  # the seed's running sum until warm, then the average

    def update(self, x: float) -> float | None:
        if self._count >= self.period:
            self._value += self.alpha * (x - self._value)
            return self._value
        self._count += 1
        self._value += x
        if self._count < self.period:
            return None
        self._value /= self.period
        return self._value

    @property
    def value(self) -> float | None:
        return self._value if self._count >= self.period else None

    def held(self) -> int:
        return 0


class Wma:
    """Linearly weighted moving average, newest weight n, oldest 1:
    WMA = (1*x[t-n+1] + 2*x[t-n+2] + ... + n*x[t]) / (n(n+1)/2).

    Warm after n values. O(1): with S the window's plain sum and N its weighted sum, sliding
    by one value is N' = N - S + n*x[t], S' = S - x[t-n] + x[t]. The subtraction of S
    cancels, so both sums are recomputed exactly (math.fsum) once every n values: one pass of
    n per n values, O(1) amortised, drift reset before it grows."""

    __slots__ = ("_denominator", "_pushes", "_sum", "_values", "_weighted", "period", "warmup")

    def __init__(self, period: int) -> None:
        self.period = period
        self.warmup = period
        self._denominator = period * (period + 1) / 2.0
        self._values = new_deque()
        self._sum = 0.0
        self._weighted = 0.0
        self._pushes = 0

    def update(self, x: float) -> float | None:
        values = self._values
        values.append(x)
        n = len(values)
        if n <= self.period:
            self._weighted += n * x
            self._sum += x
        else:
            old = values.popleft()
            self._weighted += self.period * x - self._sum
            self._sum += x - old
        self._pushes += 1
        if self._pushes >= self.period:
            self._recompute()
        if n < self.period:
            return None
        return self._weighted / self._denominator

    def held(self) -> int:
        return len(self._values)

    def _recompute(self) -> None:
        values = self._values
        self._sum = math.fsum(values)
        self._weighted = math.fsum([weight * x for weight, x in enumerate(values, 1)])
        self._pushes = 0
