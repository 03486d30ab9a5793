"""The regime classifier (trademesh/core/domain/regime; docs/overwatch.md): each regime recognised on
its own synthetic segment after warm-up, the hysteresis (bands and confirm bars), bad config and
bad bars refused naming the field, Wilder's ADX and the windows against plain recomputations,
determinism."""

from __future__ import annotations

import contextlib
import itertools
import math
import statistics
from dataclasses import astuple, replace
from decimal import Decimal

import numpy as np
import pytest

from trademesh.core.domain.model import Candle, Timeframe
from trademesh.core.domain.regime import Classifier, ClassifierConfig, ClassifierReading, Regime, bar_inputs
from trademesh.core.domain.regime.indicators import RESUM, Dmi, LongRun, RollingStats
from trademesh.core.overwatch.synthetic import LABELLED, LabelledBars, SeriesSpec, regime_series, segment_bars
from trademesh.core.platform.errors import InvalidArgument

SETTLE = 40  # bars into a segment before its regime must show (the indicators' lag)


def _run(bars: list[Candle], cfg: ClassifierConfig | None = None) -> list[ClassifierReading]:
    classifier = Classifier(cfg)
    return [classifier.update(bar) for bar in bars]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("regime", LABELLED, ids=[r.value for r in LABELLED])
def test_each_regime_is_recognised_on_its_own_segment(regime: Regime, seed: int) -> None:
    series = segment_bars(regime, 200, seed)
    readings = _run(series.bars)
    _, first, count = series.segments[-1]
    settled = [r.regime for r in readings[first + SETTLE : first + count]]
    share = settled.count(regime) / len(settled)
    assert share >= 0.9, (regime, share, {r: settled.count(r) for r in set(settled)})
    assert readings[-1].regime is regime
    # the warm-up range before it reads as a range once warm
    warm = [r.regime for r in readings[150 : series.segments[0][2]]]
    assert warm.count(Regime.RANGE) / len(warm) >= 0.8


def test_unknown_until_warm_then_a_regime_at_once() -> None:
    cfg = ClassifierConfig(warmup_bars=60)
    readings = _run(segment_bars(Regime.RANGE, 10, 4).bars, cfg)
    assert {r.regime for r in readings[:59]} == {Regime.UNKNOWN}
    assert readings[59].regime is not Regime.UNKNOWN and readings[59].changed
    assert readings[59].since_ns == readings[59].bar_open_ns
    assert readings[0].since_ns == readings[0].bar_open_ns  # unknown since the first bar


def _flat(volumes: list[float]) -> list[Candle]:
    """Bars at one price (no trend, no volatility: ADX 0, volatility ratio 1) with these volumes."""
    price = Decimal(100)
    return [
        Candle(
            Timeframe.M1, i * 60 * 10**9, price, price, price, price, Decimal(v), Decimal(v) * price, 1, True
        )
        for i, v in enumerate(volumes)
    ]


# Volume against its own level, bar by bar (window 1), the level barely moving (long memory).
THIN_CFG = ClassifierConfig(volume_window=1, volume_long_bars=10_000, warmup_bars=30, confirm_bars=3)


def test_a_band_holds_a_regime_between_its_enter_and_exit() -> None:
    volumes = [100.0] * 200 + [20.0] * 20 + [45.0] * 20 + [100.0] * 20
    readings = _run(_flat(volumes), THIN_CFG)
    assert readings[199].regime is Regime.RANGE
    thin = readings[200:220]
    assert [r.regime for r in thin[:2]] == [Regime.RANGE, Regime.RANGE]  # confirm_bars = 3
    assert thin[2].regime is Regime.THIN_LIQUIDITY and thin[2].changed
    assert thin[2].since_ns == readings[200].bar_open_ns  # since the first thin bar
    band = readings[220:240]  # volume ratio ~0.5: above thin_enter 0.35, below thin_exit 0.6
    assert all(THIN_CFG.thin_enter < r.features.volume_ratio < THIN_CFG.thin_exit for r in band)
    assert {r.regime for r in band} == {Regime.THIN_LIQUIDITY}
    back = readings[240:]
    assert [r.regime for r in back[:2]] == [Regime.THIN_LIQUIDITY] * 2
    assert back[2].regime is Regime.RANGE and back[2].since_ns == back[0].bar_open_ns


def test_without_the_band_the_same_bars_leave_thin_liquidity_at_once() -> None:
    volumes = [100.0] * 200 + [20.0] * 20 + [45.0] * 20
    cfg = replace(THIN_CFG, thin_exit=THIN_CFG.thin_enter)
    readings = _run(_flat(volumes), cfg)
    assert readings[219].regime is Regime.THIN_LIQUIDITY
    assert readings[222].regime is Regime.RANGE


def test_a_candidate_shorter_than_confirm_bars_changes_nothing() -> None:
    volumes = [100.0] * 200 + [10.0, 10.0] + [100.0] * 10
    readings = _run(_flat(volumes), THIN_CFG)
    assert [r.candidate for r in readings[200:202]] == [Regime.THIN_LIQUIDITY] * 2
    assert {r.regime for r in readings[100:]} == {Regime.RANGE}
    assert not any(r.changed for r in readings[100:])
    one_bar = _run(_flat(volumes), replace(THIN_CFG, confirm_bars=1))
    assert one_bar[200].regime is Regime.THIN_LIQUIDITY  # the same bars flap without it


def _changes(series: list[LabelledBars], cfg: ClassifierConfig) -> tuple[int, int]:
    """Regime changes over the series, and how many ended a regime younger than 10 bars."""
    changes = short = 0
    for one in series:
        last = None
        for index, reading in enumerate(_run(one.bars, cfg)):
            if reading.changed:
                changes += 1
                short += last is not None and index - last < 10
                last = index
    return changes, short


def test_hysteresis_cuts_the_changes_on_mixed_series() -> None:
    series = [regime_series(seed, segments=12) for seed in (10, 11, 12)]
    cfg = ClassifierConfig()
    plain = replace(
        cfg, adx_exit=cfg.adx_enter, vol_exit=cfg.vol_enter, thin_exit=cfg.thin_enter, confirm_bars=1
    )
    (changes, short), (plain_changes, plain_short) = _changes(series, cfg), _changes(series, plain)
    assert changes * 1.25 < plain_changes, (changes, plain_changes)
    assert short * 2 < plain_short, (short, plain_short)
    assert changes >= sum(len(one.segments) - 1 for one in series) * 0.9  # it still follows them


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"adx_enter": 150.0}, "regime.adx_enter"),
        ({"adx_exit": 28.0, "adx_enter": 26.0}, "regime.adx_exit"),
        ({"vol_enter": 1.5, "vol_exit": 1.6}, "regime.vol_exit"),
        ({"thin_enter": 0.5, "thin_exit": 0.4}, "regime.thin_exit"),
        ({"vol_enter": math.nan}, "regime.vol_enter"),
        ({"adx_period": 14.5}, "regime.adx_period"),
        ({"confirm_bars": 0}, "regime.confirm_bars"),
        ({"warmup_bars": 20}, "regime.warmup_bars"),
        ({"vol_long_bars": 10, "vol_window": 50, "warmup_bars": 100}, "regime.vol_long_bars"),
    ],
)
def test_bad_config_is_refused_naming_the_field(changes: dict[str, float], field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        ClassifierConfig(**changes)  # type: ignore[arg-type]
    assert [v.field for v in caught.value.violations] == [field]
    assert field in str(caught.value)


def test_bad_bars_are_refused_naming_the_field() -> None:
    classifier = Classifier()
    bar = _flat([100.0])[0]
    with pytest.raises(InvalidArgument, match="closed"):
        classifier.update(replace(bar, closed=False))
    classifier.update(bar)
    with pytest.raises(InvalidArgument, match="open_time_ns"):
        classifier.update(bar)  # not after the last
    later = replace(bar, open_time_ns=bar.open_time_ns + 60 * 10**9)
    with pytest.raises(InvalidArgument, match="close"):
        classifier.update(replace(later, close=Decimal(0)))
    with pytest.raises(InvalidArgument, match="high"):
        classifier.update(replace(later, high=Decimal(99), low=Decimal(100)))
    with pytest.raises(InvalidArgument, match="volume"):
        classifier.update(replace(later, volume=Decimal(-1)))
    assert classifier.update(later).bars == 2  # refused bars were not counted


def _reference_adx(rows: list[tuple[float, float, float]], n: int) -> list[tuple[float, float, float]]:
    """Wilder's ADX computed in batch, as his book lays it out: (adx, +DI, -DI) per bar from 2n."""
    trs, pdm, mdm = [], [], []
    for (h0, l0, c0), (h, low, _) in itertools.pairwise(rows):
        trs.append(max(h - low, abs(h - c0), abs(low - c0)))
        up, down = h - h0, l0 - low
        pdm.append(up if up > down and up > 0 else 0.0)
        mdm.append(down if down > up and down > 0 else 0.0)

    def smooth(xs: list[float]) -> list[float]:
        out = [sum(xs[:n])]
        for x in xs[n:]:
            out.append(out[-1] - out[-1] / n + x)
        return out

    s_tr, s_p, s_m = smooth(trs), smooth(pdm), smooth(mdm)
    dip = [100 * p / t for p, t in zip(s_p, s_tr, strict=True)]
    dim = [100 * m / t for m, t in zip(s_m, s_tr, strict=True)]
    dx = [100 * abs(p - m) / (p + m) for p, m in zip(dip, dim, strict=True)]
    adx = [sum(dx[:n]) / n]
    for x in dx[n:]:
        adx.append((adx[-1] * (n - 1) + x) / n)
    return [(a, dip[i + n - 1], dim[i + n - 1]) for i, a in enumerate(adx)]


def test_dmi_matches_wilders_batch_computation() -> None:
    rng = np.random.Generator(np.random.PCG64(11))
    closes = 100 * np.exp(np.cumsum(rng.normal(0.0003, 0.01, 300)))
    rows = [
        (c * (1 + abs(x)), c * (1 - abs(y)), c)
        for c, x, y in zip(closes, *rng.normal(0, 0.005, (2, 300)), strict=True)
    ]
    dmi, got = Dmi(14), []
    for index, row in enumerate(rows):
        dmi.update(*row)
        assert (dmi.adx is None) == (index < 2 * 14 - 1)
        if dmi.adx is not None:
            got.append((dmi.adx, dmi.di_plus, dmi.di_minus))
    want = _reference_adx([(float(h), float(lo), float(c)) for h, lo, c in rows], 14)
    assert len(got) == len(want) == 300 - 27
    assert np.allclose(got, want, rtol=1e-9)


def test_window_matches_a_plain_recomputation_past_its_resum() -> None:
    rng = np.random.Generator(np.random.PCG64(5))
    values = list(rng.normal(1e-3, 2e-3, RESUM + 500))
    window = RollingStats(20)
    for index, value in enumerate(values):
        window.update(float(value))
        if index % 97 == 0 or index == len(values) - 1:
            last = values[max(0, index - 19) : index + 1]
            assert window.mean == pytest.approx(statistics.fmean(last), rel=1e-9, abs=1e-15)
            assert window.std == pytest.approx(statistics.pstdev(last), rel=1e-6, abs=1e-12)


def test_the_same_bars_give_the_same_readings_and_the_same_seed_the_same_bars() -> None:
    first, again, other = (
        regime_series(3, segments=6),
        regime_series(3, segments=6),
        regime_series(4, segments=6),
    )
    assert first.bars == again.bars and first.labels == again.labels
    assert first.bars != other.bars
    assert _run(first.bars) == _run(again.bars)


def test_the_generator_labels_each_bar_with_its_segment() -> None:
    series = regime_series(9, segments=8, spec=SeriesSpec(min_bars=50, max_bars=60))
    assert len(series.bars) == len(series.labels) == sum(count for _, _, count in series.segments)
    for regime, first, count in series.segments:
        assert set(series.labels[first : first + count]) == {regime}
    kinds = [regime for regime, _, _ in series.segments[1:]]
    assert all(a is not b for a, b in itertools.pairwise(kinds))
    opens = [bar.open_time_ns for bar in series.bars]
    assert all(b - a == Timeframe.M1.ns for a, b in itertools.pairwise(opens))


def _stepped_features(bars: list[Candle], cfg: ClassifierConfig) -> list[tuple[float, ...]]:
    """Each bar's features as the indicators' own `update`s step them (the classifier's steps as
    they were before it wrote them out in `update_all`)."""
    dmi, vol, vol_long = Dmi(cfg.adx_period), RollingStats(cfg.vol_window), LongRun(cfg.vol_long_bars)
    volume_w, volume_long = RollingStats(cfg.volume_window), LongRun(cfg.volume_long_bars)
    prev_close: float | None = None
    out: list[tuple[float, ...]] = []
    for bar in bars:
        high, low, close, volume = float(bar.high), float(bar.low), float(bar.close), float(bar.volume)
        std = 0.0
        if prev_close is not None:
            vol.update(math.log(close / prev_close))
            std = vol.std
            if vol.full and std > 0:
                vol_long.update(math.log(std))
        prev_close = close
        dmi.update(high, low, close)
        volume_w.update(volume)
        volume_long.update(volume)
        long_vol = math.exp(vol_long.level) if vol_long.count else 0.0
        vol_ratio = std / long_vol if long_vol > 0 else 1.0
        volume_ratio = volume_w.mean / volume_long.level if volume_long.level > 0 else 1.0
        out.append((dmi.adx or 0.0, dmi.di_plus, dmi.di_minus, vol_ratio, volume_ratio))
    return out


def test_the_classifiers_steps_are_the_indicators_bit_for_bit() -> None:
    series = regime_series(21, segments=10)
    cfg = ClassifierConfig(vol_long_bars=50, volume_long_bars=60)  # past the long runs' means
    got = [astuple(r.features) for r in _run(series.bars, cfg)]
    assert got == _stepped_features(series.bars, cfg)  # ==: the same floats, not approximately


def test_update_all_is_update_one_by_one_with_the_refused_skipped() -> None:
    bars = regime_series(5, segments=5).bars
    bad = {50: replace(bars[50], low=Decimal(0)), 120: replace(bars[120], closed=False)}
    given = [bad.get(i, bar) for i, bar in enumerate(bars)]
    given.insert(300, given[299])  # not after the last bar: skipped too
    one = Classifier()
    readings = []
    for bar in given:
        with contextlib.suppress(InvalidArgument):
            readings.append(one.update(bar))
    inputs = []
    for bar in given:
        with contextlib.suppress(InvalidArgument):
            inputs.append(bar_inputs(bar))
    many = Classifier()
    last = many.update_all(inputs[:200])
    assert last == readings[199]  # the first 200 bars taken (none of them out of order)
    assert many.update_all(inputs[200:]) == readings[-1]
    assert many.update_all([]) is None
    nxt = replace(bars[-1], open_time_ns=bars[-1].open_time_ns + 60 * 10**9)
    assert many.update(nxt) == one.update(nxt)  # the same state after
