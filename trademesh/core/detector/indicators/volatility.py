"""Volatility: Wilder's ATR, Bollinger bands, realised volatility of log returns."""

from __future__ import annotations

import math

from trademesh.core.detector.indicators._window import RollingMoments
from trademesh.core.detector.indicators.averages import Ema

__all__ = ["Atr", "Bollinger", "RealisedVol"]


class Atr:
    """Wilder's average true range over bars.

    TR = max(high - low, |high - prev_close|, |low - prev_close|); the first bar has no
    previous close and only supplies it. ATR = Wilder's smoothing of TR: the mean of the
    first n TRs, then ATR = ATR + (TR - ATR) / n. Warm after n + 1 bars."""

    __slots__ = ("_prev_close", "_smooth", "period", "warmup")

    def __init__(self, period: int) -> None:
        self.period = period
        self.warmup = period + 1
        self._prev_close: float | None = None
        self._smooth = Ema(period, alpha=1.0 / period)

    def update(self, high: float, low: float, close: float) -> float | None:
        prev = self._prev_close
        self._prev_close = close
        if prev is None:
            return None
        true_range = max(high - low, abs(high - prev), abs(low - prev))
        return self._smooth.update(true_range)

    def held(self) -> int:
        return 1


class Bollinger:
    """Bollinger bands: (middle, upper, lower).

    middle = SMA(x, n); sd = population standard deviation of the same n values;
    upper = middle + k * sd; lower = middle - k * sd. Warm after n values."""

    __slots__ = ("_moments", "k", "period", "warmup")

    def __init__(self, period: int, k: float) -> None:
        self.period = period
        self.k = k
        self.warmup = period
        self._moments = RollingMoments(period)

    def update(self, x: float) -> tuple[float, float, float] | None:
        moments = self._moments
        moments.push(x)
        if not moments.full:
            return None
        middle = moments.mean()
        width = self.k * math.sqrt(moments.variance())
        return middle, middle + width, middle - width

    def held(self) -> int:
        return len(self._moments.values)


class RealisedVol:
    """Realised volatility: the sample standard deviation (n - 1 in the denominator) of the last
    n log returns ln(x[t] / x[t-1]), times sqrt(periods_per_year) (1 = per period, not
    annualised; e.g. 365 for daily bars of a market that never closes).

    Warm after n + 1 values; n >= 2. A value <= 0 is not a price: it is skipped (the state does
    not change and the last volatility is answered again)."""

    __slots__ = ("_last", "_moments", "_prev", "_scale", "period", "warmup")

    def __init__(self, period: int, periods_per_year: float = 1.0) -> None:
        if period < 2:
            raise ValueError(f"realised volatility needs a period of at least 2, got {period}")
        self.period = period
        self.warmup = period + 1
        self._scale = math.sqrt(periods_per_year)
        self._moments = RollingMoments(period)
        self._prev: float | None = None
        self._last: float | None = None

    def update(self, x: float) -> float | None:
        if not x > 0.0:
            return self._last
        prev = self._prev
        self._prev = x
        if prev is None:
            return None
        moments = self._moments
        moments.push(math.log(x / prev))
        if moments.full:
            self._last = math.sqrt(moments.variance(ddof=1)) * self._scale
        return self._last

    def held(self) -> int:
        return len(self._moments.values) + 1
