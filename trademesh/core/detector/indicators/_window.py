"""Rolling windows with O(1) work per value: the running sums every windowed indicator shares.

Two numerical schemes, chosen per need:

- RollingSum keeps a Neumaier-compensated running total (the rounding error of every add and
  every remove is carried in a second float), so adding the newest value and removing the
  oldest never drifts: strictly O(1), no periodic pass. When no nonzero value is left in the
  window the total is snapped to exactly 0.0 (a window of all-sell trades has a buy volume of
  0, not 1e-17).
- RollingMoments keeps sums of the values minus a shift K (Σ(x-K), Σ(x-K)²) so the variance
  Σ(x-K)²/n - (Σ(x-K)/n)² does not cancel catastrophically on prices far from zero. Every
  `size` values it re-anchors K at the window's mean and recomputes both sums exactly
  (math.fsum): one pass of n values per n values pushed, O(1) amortised, and the drift of the
  running sums is reset before it can grow. It also re-anchors early when the mean has moved
  from K by more than 100 standard deviations (Σ(x-K)² > 1e4 * m2: an outlier left a tight
  window), where the subtraction would lose digits; after a re-anchor the ratio is 1, and
  reaching 1e4 again needs the window's spread to shrink ~100-fold against the mean's move,
  so these are rare (none on a market price path; test_detector_indicators counts reads).
  A window whose values are all equal is recognised in O(1) (a run counter) and answers
  variance 0.0 and mean = the value, exactly (no early re-anchor is needed there).

Every deque is made by `new_deque` so a test can count what the indicators read from them.
"""

from __future__ import annotations

import math
from collections import deque

__all__ = ["RollingMoments", "RollingSum", "new_deque"]

# Σ(x-K)² = m2 + n(mean-K)²: past this ratio to m2, the variance keeps fewer than ~12 digits.
_CANCELLATION = 1e4


def new_deque() -> deque[float]:
    """A new deque for an indicator's window (one place, so tests can instrument it)."""
    return deque()


class RollingSum:
    """The sum of the last `size` values pushed (fewer until the window is full)."""

    __slots__ = ("_comp", "_nonzero", "_sum", "size", "total", "values")

    def __init__(self, size: int) -> None:
        self.size = size
        self.values = new_deque()
        self._sum = 0.0
        self._comp = 0.0  # Neumaier compensation: what rounding took from _sum
        self._nonzero = 0
        # _sum + _comp, kept at each push (read far more often than pushed: no property).
        self.total = 0.0

    @property
    def full(self) -> bool:
        return len(self.values) >= self.size

    def push(self, x: float) -> None:
        """Add `x` as the newest value, dropping the oldest once the window is full."""
        # Neumaier's step inlined (this is the hot path): new = total + x; the rounding
        # error, (total - new) + x or (x - new) + total, goes into the compensation.
        values = self.values
        values.append(x)
        total = self._sum
        new = total + x
        comp = self._comp + ((total - new) + x if abs(total) >= abs(x) else (x - new) + total)
        if x != 0.0:
            self._nonzero += 1
        if len(values) > self.size:
            old = values.popleft()
            total = new
            new = total - old
            comp += (total - new) - old if abs(total) >= abs(old) else (-old - new) + total
            if old != 0.0:
                self._nonzero -= 1
        if self._nonzero == 0:
            self._sum = 0.0
            self._comp = 0.0
            self.total = 0.0
        else:
            self._sum = new
            self._comp = comp
            self.total = new + comp


class RollingMoments:
    """Mean and variance of the last `size` values pushed (fewer until the window is full)."""

    __slots__ = ("_last", "_pushes", "_run", "_s1", "_s2", "_shift", "size", "values")

    def __init__(self, size: int) -> None:
        self.size = size
        self.values = new_deque()
        self._shift = 0.0
        self._s1 = 0.0  # Σ(x - shift) over the window
        self._s2 = 0.0  # Σ(x - shift)² over the window
        self._pushes = 0  # since the last exact recompute
        self._run = 0  # how many of the newest values equal _last
        self._last = 0.0

    @property
    def full(self) -> bool:
        return len(self.values) >= self.size

    def push(self, x: float) -> None:
        """Add `x` as the newest value, dropping the oldest once the window is full."""
        values = self.values
        if not values:
            self._shift = x
        values.append(x)
        d = x - self._shift
        self._s1 += d
        self._s2 += d * d
        if len(values) > self.size:
            d = values.popleft() - self._shift
            self._s1 -= d
            self._s2 -= d * d
        if self._run and x == self._last:
            self._run += 1
        else:
            self._run = 1
            self._last = x
        self._pushes += 1
        # Past the ratio _CANCELLATION, Σ(x-K)² - (Σ(x-K))²/n would lose digits (an outlier
        # left a now-tight window): re-anchor early. A constant window needs none.
        if self._pushes >= self.size or (
            self._run < len(values)
            and self._s2 > _CANCELLATION * (self._s2 - self._s1 * self._s1 / len(values))
        ):
            self._recompute()

    def mean(self) -> float:
        if self._run >= len(self.values):
            return self._last
        return self._shift + self._s1 / len(self.values)

    def variance(self, ddof: int = 0) -> float:
        """Population variance (ddof=0) or sample variance (ddof=1); 0.0 for a constant window."""
        n = len(self.values)
        if self._run >= n:
            return 0.0
        m2 = self._s2 - self._s1 * self._s1 / n
        return m2 / (n - ddof) if m2 > 0.0 else 0.0

    def _recompute(self) -> None:
        values = self.values
        shift = math.fsum(values) / len(values)
        self._shift = shift
        self._s1 = math.fsum([x - shift for x in values])
        self._s2 = math.fsum([(x - shift) * (x - shift) for x in values])
        self._pushes = 0
