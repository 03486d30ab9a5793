"""Trade flow: rolling VWAP, trade-flow imbalance, volume spikes."""

from __future__ import annotations

import math

from trademesh.core.detector.indicators._window import RollingSum

__all__ = ["TradeFlowImbalance", "VolumeSpike", "Vwap"]


class Vwap:
    """Rolling volume-weighted average price over the last n trades (a rolling window, not a
    session: a patch has no session boundary, and a window gives the same answer live and in
    a backtest started anywhere): VWAP = Σ(price * size) / Σ(size).

    Warm after n trades; None while the window's volume is 0. A negative size is skipped."""

    __slots__ = ("_notional", "_volume", "period", "warmup")

    def __init__(self, period: int) -> None:
        self.period = period
        self.warmup = period
        self._notional = RollingSum(period)
        self._volume = RollingSum(period)

    def update(self, price: float, size: float) -> float | None:
        if size >= 0.0:
            self._notional.push(price * size)
            self._volume.push(size)
        volume = self._volume
        if not volume.full or volume.total == 0.0:
            return None
        return self._notional.total / volume.total

    def held(self) -> int:
        return len(self._volume.values) + len(self._notional.values)


class TradeFlowImbalance:
    """Trade-flow imbalance over the last n trades, -1..1:
    TFI = (buy volume - sell volume) / (buy volume + sell volume), where a trade is a buy when
    its taker bought. A trade whose side is unknown takes a place in the window but counts on
    neither side; 0.0 when the window has no sided volume. Warm after n trades. A negative
    size is skipped."""

    __slots__ = ("_buys", "_sells", "period", "warmup")

    def __init__(self, period: int) -> None:
        self.period = period
        self.warmup = period
        self._buys = RollingSum(period)
        self._sells = RollingSum(period)

    def update(self, size: float, taker_buy: bool | None) -> float | None:
        if size >= 0.0:
            self._buys.push(size if taker_buy is True else 0.0)
            self._sells.push(size if taker_buy is False else 0.0)
        if not self._buys.full:
            return None
        buys = self._buys.total
        sells = self._sells.total
        total = buys + sells
        return 0.0 if total <= 0.0 else (buys - sells) / total

    def held(self) -> int:
        return len(self._buys.values) + len(self._sells.values)


class VolumeSpike:
    """Volume spike: ratio = v[t] / mean(v[t-n] .. v[t-1]), spike = ratio >= factor.

    The baseline is the n volumes before the current one, so a spike does not dilute its own
    baseline. Returns (ratio, spike); warm after n + 1 volumes. Over a baseline of 0 the ratio
    is inf (a spike) when v > 0 and 0.0 when v = 0. A negative volume is skipped."""

    __slots__ = ("_baseline", "_last", "factor", "period", "warmup")

    def __init__(self, period: int, factor: float) -> None:
        self.period = period
        self.factor = factor
        self.warmup = period + 1
        self._baseline = RollingSum(period)
        self._last: tuple[float, bool] | None = None

    def update(self, volume: float) -> tuple[float, bool] | None:
        if volume < 0.0:
            return self._last
        baseline = self._baseline
        if len(baseline.values) >= self.period:  # full (no property call: a bar's hot path)
            average = baseline.total / self.period
            if volume == 0.0:
                ratio = 0.0
            elif average > 0.0:
                ratio = volume / average
            else:
                ratio = math.inf
            self._last = (ratio, ratio >= self.factor)
        baseline.push(volume)
        return self._last

    def held(self) -> int:
        return len(self._baseline.values)
