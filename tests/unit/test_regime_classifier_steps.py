"""`Classifier.update_all` (its indicators' steps, the classification and the hysteresis written
out on local variables) against the reference it was written from: the indicators' own `update`s,
the classifier's `_classify` and `_settle`, bar by bar. Bit for bit: every reading and, after,
every part of the state (hypothesis over bar series and small configs, so that the warm-up, the
long runs past their `bars`, the windows' re-sums and each regime's bands are all reached)."""

from __future__ import annotations

import math
from dataclasses import astuple

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from trademesh.core.domain.regime import (
    BarInputs,
    Classifier,
    ClassifierConfig,
    ClassifierReading,
    Features,
    Regime,
)
from trademesh.core.domain.regime import classifier as classifier_module


def _reference_step(c: Classifier, bar: BarInputs) -> ClassifierReading | None:
    """One bar through the indicators' `update`s, `_classify` and `_settle` (the classifier's
    steps before they were written out); None for a bar not after the last (skipped)."""
    open_ns, high, low, close, volume = bar
    if c._last_open is not None and open_ns <= c._last_open:
        return None
    std = 0.0
    if c._prev_close is not None:
        c._vol.update(math.log(close / c._prev_close))
        std = c._vol.std
        if c._vol.full and std > 0:
            c._vol_long.update(math.log(std))
    c._prev_close, c._last_open = close, open_ns
    c._dmi.update(high, low, close)
    c._volume.update(volume)
    c._volume_long.update(volume)
    c._bars += 1
    long_vol = math.exp(c._vol_long.level) if c._vol_long.count else 0.0
    vol_ratio = std / long_vol if long_vol > 0 else 1.0
    long_volume = c._volume_long.level
    volume_ratio = c._volume.mean / long_volume if long_volume > 0 else 1.0
    dmi = c._dmi
    figures = (dmi.adx or 0.0, dmi.di_plus, dmi.di_minus, vol_ratio, volume_ratio)
    candidate = c._classify(*figures) if c._bars >= c.config.warmup_bars else Regime.UNKNOWN
    c._candidate_now, c._changed = candidate, c._settle(candidate, open_ns)
    return c._reading()


def _state(c: Classifier) -> tuple[object, ...]:
    """Every part of a classifier's state, its windows' values included (floats compared by ==
    and by their bits: -0.0 and 0.0 differ)."""
    dmi, vol, volume = c._dmi, c._vol, c._volume
    parts: list[object] = [
        dmi._prev, dmi._n, dmi._tr, dmi._dm_plus, dmi._dm_minus, dmi._dx_sum, dmi._adx,
        tuple(vol._values), vol._sum, vol._sum_sq, vol._since_resum, c._vol_long.count, c._vol_long.level,
        tuple(volume._values), volume._sum, volume._sum_sq, volume._since_resum,
        c._volume_long.count, c._volume_long.level, c._prev_close, c._last_open, c._bars, c._regime,
        c._since, c._candidate, c._candidate_since, c._run, c._candidate_now, c._changed,
    ]  # fmt: skip
    return tuple(parts) + tuple(repr(p) for p in parts)


def _same(a: ClassifierReading | None, b: ClassifierReading | None) -> bool:
    """Equal, and the features' floats the same bits (repr tells -0.0 from 0.0)."""
    if a is None or b is None:
        return a is b
    return a == b and repr(astuple(a.features)) == repr(astuple(b.features))


_PRICE = st.sampled_from([100.0, 100.5, 99.0, 120.0, 80.0, 100.25, 1e-3, 5e4])


_KINDS = ["up", "down", "walk", "storm", "flat", "again", "thin", "jump"]


@st.composite
def _series(draw: st.DrawFn) -> list[BarInputs]:
    """Runs of bars that trend up or down, walk, storm (volatility bursts), stay flat (no move:
    a zero std, a zero true range), jump, trade thin, or come again at the last bar's time
    (skipped): every regime, entered and left through its band."""
    bars: list[BarInputs] = []
    open_ns, price = 0, 100.0
    while len(bars) < draw(st.integers(0, 160)):
        kind = draw(st.sampled_from(_KINDS))
        scale = {"up": 0.004, "down": 0.004, "storm": 0.05}.get(kind, 0.004)
        drift = {"up": 0.003, "down": -0.003}.get(kind, 0.0)
        for _ in range(draw(st.integers(1, 12))):
            if kind == "jump":
                price = draw(_PRICE)
            elif kind != "flat":
                price *= math.exp(drift + draw(st.floats(-1.0, 1.0)) * scale)
            open_ns += 0 if kind == "again" else draw(st.sampled_from([60, 60, 60, 120]))
            spread = 0.0 if kind == "flat" else price * draw(st.floats(0.0, 0.01))
            close = price + draw(st.floats(-1.0, 1.0)) * spread / 2
            volume = draw(st.floats(0.0, 9.0) if kind == "thin" else st.sampled_from([9.0, 10.0]))
            bars.append((open_ns, price + spread, max(price - spread, 1e-9), max(close, 1e-9), volume))
    return bars


_CONFIGS = st.builds(
    ClassifierConfig,
    adx_period=st.integers(2, 5),
    adx_enter=st.sampled_from([20.0, 40.0]),
    adx_exit=st.sampled_from([5.0, 15.0]),
    vol_window=st.integers(2, 5),
    vol_long_bars=st.integers(10, 14),
    vol_enter=st.sampled_from([1.4, 1.8]),
    vol_exit=st.sampled_from([1.0, 1.2]),
    volume_window=st.integers(1, 5),
    volume_long_bars=st.integers(10, 14),
    thin_enter=st.sampled_from([0.2, 0.35]),
    thin_exit=st.sampled_from([0.6, 0.9]),
    confirm_bars=st.integers(1, 3),
    warmup_bars=st.integers(11, 20),
)


@settings(max_examples=300, deadline=None)
@given(bars=_series(), cfg=_CONFIGS, cuts=st.lists(st.integers(0, 160), max_size=4))
def test_update_all_is_the_reference_steps_bit_for_bit(
    bars: list[BarInputs], cfg: ClassifierConfig, cuts: list[int]
) -> None:
    with pytest.MonkeyPatch.context() as patch:  # re-sums within a short series
        patch.setattr(classifier_module, "RESUM", 7)
        patch.setattr("trademesh.core.domain.regime.indicators.RESUM", 7)
        reference, fast = Classifier(cfg), Classifier(cfg)
        start = 0
        for stop in [*sorted(c for c in cuts if c <= len(bars)), len(bars)]:
            readings = [_reference_step(reference, bar) for bar in bars[start:stop]]
            last = next((r for r in reversed(readings) if r is not None), None)
            assert _same(fast.update_all(bars[start:stop]), last)  # None: no bar taken
            assert _state(fast) == _state(reference)
            start = stop


def test_each_regime_and_band_is_reached_by_the_examples_kind_of_series() -> None:
    """The reference comparison above means something only if its series reach the regimes: a
    fixed series of the same kinds, classified, shows each of them (and both trend sides)."""
    cfg = ClassifierConfig(
        adx_period=3, adx_enter=10.0, adx_exit=5.0, vol_window=3, vol_long_bars=10, vol_enter=1.1,
        vol_exit=1.0, volume_window=2, volume_long_bars=10, thin_enter=0.35, thin_exit=0.9,
        confirm_bars=1, warmup_bars=11,
    )  # fmt: skip
    bars: list[BarInputs] = []
    price, volume = 100.0, 10.0
    moves = [0.0] * 20 + [0.01] * 20 + [-0.01] * 20 + [0.0] * 20 + [0.08, -0.08] * 5 + [0.0] * 20
    for i, move in enumerate(moves):
        price *= math.exp(move)
        volume = 0.0 if 100 <= i < 110 else 10.0
        bars.append((i * 60, price * 1.001, price * 0.999, price, volume))
    bars += [(len(moves) * 60 + i * 60, price, price, price, 0.0) for i in range(10)]
    c = Classifier(cfg)
    seen = {r.regime for bar in bars if (r := c.update_all([bar])) is not None}
    assert seen == set(Regime)
    assert isinstance(c._reading().features, Features)
