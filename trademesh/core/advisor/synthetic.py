"""Deterministic synthetic bars for the default model, its calibration and the tests.

Two processes, both seeded (numpy's PCG64 with pinned numpy: the same seed gives the same
bars on every machine):

- `random_walk_bars`: what the sim venue's market is: the mid follows a driftless geometric
  random walk with `vol_per_sqrt_s` (trademesh/venues/sim's volatility_per_sqrt_s, 0.0001 by default).
  Its future is unpredictable by construction; a model scored on it shows what it does on sim.
- `regime_bars`: the same volatility scale, but in segments (geometric lengths, ~300 bars)
  each with its own volatility (x0.5, x1, x2), drift and autocorrelation of bar returns
  (momentum phi = 0.25, none, or mean reversion phi = -0.2). It has structure a model can learn,
  as real markets sometimes do; how much is what the training report measures.

High and low come from the open and close widened by a half-normal share of the bar's
volatility; volume is lognormal, larger on larger moves.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np
import numpy.typing as npt

from trademesh.core.domain.model import Candle, Timeframe

__all__ = ["SyntheticBars", "random_walk_bars", "regime_bars"]

FloatArray = npt.NDArray[np.float64]
START_NS = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z
_VOL_LEVELS = (0.5, 1.0, 2.0)
_PHIS = (0.4, 0.2, 0.0)


@dataclass(frozen=True)
class SyntheticBars:
    timeframe: Timeframe
    open_time_ns: npt.NDArray[np.int64]
    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray

    def __len__(self) -> int:
        return len(self.close)

    def candles(self, start: int, stop: int, tick: Decimal = Decimal("0.01")) -> tuple[Candle, ...]:
        """Bars [start, stop) as Candles, prices on the tick (what the core receives)."""

        def price(x: float) -> Decimal:
            return (Decimal(repr(float(x))) / tick).to_integral_value() * tick

        return tuple(
            Candle(
                self.timeframe, int(self.open_time_ns[i]), price(self.open[i]), price(self.high[i]),
                price(self.low[i]), price(self.close[i]), Decimal(repr(round(float(self.volume[i]), 6))),
                Decimal(0), 0, True,
            )
            for i in range(start, stop)
        )  # fmt: skip


def _assemble(
    returns: FloatArray, sigma: FloatArray, start_price: float, timeframe: Timeframe, rng: np.random.Generator
) -> SyntheticBars:
    n = len(returns)
    close = start_price * np.exp(np.cumsum(returns))
    open_ = np.concatenate(([start_price], close[:-1]))
    wick_up = np.abs(rng.standard_normal(n)) * sigma * 0.5
    wick_down = np.abs(rng.standard_normal(n)) * sigma * 0.5
    high = np.maximum(open_, close) * np.exp(wick_up)
    low = np.minimum(open_, close) * np.exp(-wick_down)
    size = np.abs(returns) / np.maximum(sigma, 1e-12)
    volume = np.exp(rng.standard_normal(n) * 0.4) * (1.0 + size)
    times = START_NS + np.arange(n, dtype=np.int64) * timeframe.ns
    return SyntheticBars(timeframe, times, open_, high, low, close, volume)


def random_walk_bars(
    n: int, seed: int, *, start_price: float = 65_000.0, timeframe: Timeframe = Timeframe.M1,
    vol_per_sqrt_s: float = 0.0001,
) -> SyntheticBars:  # fmt: skip
    rng = np.random.Generator(np.random.PCG64(seed))
    sigma_bar = vol_per_sqrt_s * math.sqrt(timeframe.value)
    sigma = np.full(n, sigma_bar)
    # The driftless walk of the mid: E[exp(r)] = 1 keeps the price a martingale.
    returns = rng.standard_normal(n) * sigma - 0.5 * sigma**2
    return _assemble(returns, sigma, start_price, timeframe, rng)


def regime_bars(
    n: int, seed: int, *, start_price: float = 65_000.0, timeframe: Timeframe = Timeframe.M1,
    vol_per_sqrt_s: float = 0.0001, mean_segment_bars: int = 300,
) -> SyntheticBars:  # fmt: skip
    rng = np.random.Generator(np.random.PCG64(seed))
    base = vol_per_sqrt_s * math.sqrt(timeframe.value)
    returns = np.empty(n)
    sigma = np.empty(n)
    previous, i = 0.0, 0
    while i < n:
        length = int(rng.geometric(1.0 / mean_segment_bars))
        vol = base * _VOL_LEVELS[int(rng.integers(len(_VOL_LEVELS)))]
        phi = _PHIS[int(rng.integers(len(_PHIS)))]
        drift = float(rng.normal(0.0, 0.02)) * vol
        shocks = rng.standard_normal(length)
        for k in range(min(length, n - i)):
            previous = phi * previous + drift + vol * float(shocks[k])
            returns[i], sigma[i] = previous, vol
            i += 1
    return _assemble(returns, sigma, start_price, timeframe, rng)
