"""Seeded synthetic bars with known regimes, to measure the classifier (docs/overwatch.md).

A series opens with a calm range (the warm-up, `warmup_bars` long) and then runs segments
of random lengths, each one regime, in a seeded random order with no regime twice in a row:

- trend_up / trend_down: log price drifts `drift` per bar (with noise of `sigma` per bar);
- range: log price mean-reverts (an AR(1) pull of `reversion` per bar) to where it entered;
- high_volatility: a range with `burst` x the noise;
- thin_liquidity: a range with `thin` x the volume.

Bars: open at the last close; high and low widen the body by a half-normal share of the
bar's noise; volume lognormal around `volume`. numpy's PCG64 (numpy pinned): the same seed
gives the same bars on every machine. Every bar is labelled with its segment's regime.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from trademesh.core.domain.model import Candle, Timeframe
from trademesh.core.domain.regime import Regime

__all__ = ["LABELLED", "LabelledBars", "SeriesSpec", "regime_series", "segment_bars", "segments_bars"]

LABELLED = (Regime.TREND_UP, Regime.TREND_DOWN, Regime.RANGE, Regime.HIGH_VOLATILITY, Regime.THIN_LIQUIDITY)


@dataclass(frozen=True)
class SeriesSpec:
    sigma: float = 0.002  # per-bar std of log returns in a calm market
    drift: float = 0.001  # per-bar log drift of a trend (half of sigma)
    reversion: float = 0.1  # per-bar pull of a range back to its level
    burst: float = 4.0  # noise multiple in high volatility
    thin: float = 0.15  # volume multiple in thin liquidity
    volume: float = 100.0  # mean volume per bar
    volume_spread: float = 0.3  # lognormal sigma of the volume
    min_bars: int = 100  # segment lengths, uniform in [min_bars, max_bars]
    max_bars: int = 250
    warmup_bars: int = 300
    price: float = 100.0
    timeframe: Timeframe = Timeframe.M1
    start_ns: int = 1_767_225_600_000_000_000  # 2026-01-01T00:00:00Z


@dataclass(frozen=True)
class LabelledBars:
    bars: list[Candle]
    labels: list[Regime]  # the true regime of each bar
    segments: list[tuple[Regime, int, int]]  # (regime, first bar index, bar count)


class _Path:
    """The running state of one series: its log price, the level a range reverts to, the time."""

    def __init__(self, spec: SeriesSpec, rng: np.random.Generator) -> None:
        self.spec, self.rng = spec, rng
        self.log_price = self.level = math.log(spec.price)
        self.open_ns = spec.start_ns

    def bar(self, regime: Regime) -> Candle:
        spec, rng = self.spec, self.rng
        sigma = spec.sigma * (spec.burst if regime is Regime.HIGH_VOLATILITY else 1.0)
        if regime is Regime.TREND_UP or regime is Regime.TREND_DOWN:
            step = spec.drift if regime is Regime.TREND_UP else -spec.drift
        else:
            step = -spec.reversion * (self.log_price - self.level)
        opened = self.log_price
        self.log_price += step + sigma * float(rng.standard_normal())
        top = max(opened, self.log_price) + abs(float(rng.standard_normal())) * sigma * 0.5
        bottom = min(opened, self.log_price) - abs(float(rng.standard_normal())) * sigma * 0.5
        volume = spec.volume * float(rng.lognormal(-(spec.volume_spread**2) / 2, spec.volume_spread))
        volume *= spec.thin if regime is Regime.THIN_LIQUIDITY else 1.0
        candle = Candle(
            spec.timeframe, self.open_ns, _dec(math.exp(opened)), _dec(math.exp(top)),
            _dec(math.exp(bottom)), _dec(math.exp(self.log_price)), _dec(volume),
            _dec(volume * math.exp(self.log_price)), max(1, round(volume)), True,
        )  # fmt: skip
        self.open_ns += spec.timeframe.ns
        return candle

    def enter(self) -> None:
        """A new segment: a range reverts to where the price is now."""
        self.level = self.log_price


def _dec(value: float) -> Decimal:
    return Decimal(f"{value:.8f}")


def segment_bars(regime: Regime, count: int, seed: int, spec: SeriesSpec | None = None) -> LabelledBars:
    """A warm-up range, then one segment of `regime`: the unit tests' series."""
    return segments_bars([regime], [count], seed, spec)


def regime_series(seed: int, segments: int = 20, spec: SeriesSpec | None = None) -> LabelledBars:
    """A warm-up range, then `segments` segments of random regimes and lengths."""
    spec = spec or SeriesSpec()
    rng = np.random.Generator(np.random.PCG64(seed))
    order: list[Regime] = []
    for _ in range(segments):
        choices = [r for r in LABELLED if not order or r is not order[-1]]
        order.append(choices[int(rng.integers(len(choices)))])
    lengths = [int(rng.integers(spec.min_bars, spec.max_bars + 1)) for _ in order]
    return segments_bars(order, lengths, int(rng.integers(2**63)), spec)


def segments_bars(
    order: list[Regime], lengths: list[int], seed: int, spec: SeriesSpec | None = None
) -> LabelledBars:
    """A warm-up range, then each regime of `order` for its length of `lengths`."""
    spec = spec or SeriesSpec()
    path = _Path(spec, np.random.Generator(np.random.PCG64(seed)))
    bars: list[Candle] = []
    labels: list[Regime] = []
    segments: list[tuple[Regime, int, int]] = []
    for regime, count in [(Regime.RANGE, spec.warmup_bars), *zip(order, lengths, strict=True)]:
        path.enter()
        segments.append((regime, len(bars), count))
        for _ in range(count):
            bars.append(path.bar(regime))
            labels.append(regime)
    return LabelledBars(bars, labels, segments)
