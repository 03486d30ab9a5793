"""Oscillators: Wilder's RSI and MACD."""

from __future__ import annotations

from trademesh.core.detector.indicators.averages import Ema

__all__ = ["Macd", "Rsi"]


class Rsi:
    """Wilder's relative strength index, 0..100.

    With change = x[t] - x[t-1], gain = max(change, 0) and loss = max(-change, 0): the first
    average gain (loss) is the mean of the first n gains (losses); then
    avg = (avg * (n - 1) + gain) / n. RSI = 100 - 100 / (1 + avg_gain / avg_loss), which is
    100 when avg_loss is 0 and 50 when both averages are 0 (a flat series).
    Warm after n + 1 values (n changes)."""

    __slots__ = ("_changes", "_gain", "_loss", "_prev", "period", "warmup")

    def __init__(self, period: int) -> None:
        self.period = period
        self.warmup = period + 1
        self._prev: float | None = None
        self._changes = 0
        self._gain = 0.0
        self._loss = 0.0

    def update(self, x: float) -> float | None:
        prev = self._prev
        self._prev = x
        if prev is None:
            return None
        change = x - prev
        gain = change if change > 0.0 else 0.0
        loss = -change if change < 0.0 else 0.0
        n = self.period
        if self._changes >= n:
            self._gain = avg_gain = (self._gain * (n - 1) + gain) / n
            self._loss = avg_loss = (self._loss * (n - 1) + loss) / n
        else:
            self._changes += 1
            self._gain += gain
            self._loss += loss
            if self._changes < n:
                return None
            self._gain = avg_gain = self._gain / n
            self._loss = avg_loss = self._loss / n
        total = avg_gain + avg_loss
        return 50.0 if total == 0.0 else 100.0 * avg_gain / total

    def held(self) -> int:
        return 1


class Macd:
    """Moving average convergence divergence: (line, signal, histogram).

    line = EMA(x, fast) - EMA(x, slow); signal = EMA(line, signal); histogram = line - signal.
    Each EMA is seeded with its SMA (see Ema). The line exists after `slow` values and the
    signal after `signal` lines more: warm after slow + signal - 1 values. fast < slow."""

    __slots__ = ("_fast", "_signal", "_slow", "warmup")

    def __init__(self, fast: int, slow: int, signal: int) -> None:
        if not 0 < fast < slow:
            raise ValueError(f"MACD needs 0 < fast < slow, got fast={fast} slow={slow}")
        self._fast = Ema(fast)
        self._slow = Ema(slow)
        self._signal = Ema(signal)
        self.warmup = slow + signal - 1

    def update(self, x: float) -> tuple[float, float, float] | None:
        fast = self._fast.update(x)
        slow = self._slow.update(x)
        if fast is None or slow is None:
            return None
        line = fast - slow
        signal = self._signal.update(line)
        if signal is None:
            return None
        return line, signal, line - signal

    def held(self) -> int:
        return 0
