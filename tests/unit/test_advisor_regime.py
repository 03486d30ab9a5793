"""The advisor's regime (trademesh.core.advisor.engine.regime): Overwatch's classifier over the context's
bars, so the advisor reads the regime Overwatch's engine reads of the same bars (synthetic series
with known regimes, trademesh.core.overwatch.synthetic); the window from its anchor; the reader's kept
classifier giving what a fresh read gives; `unknown` and old labels calibrated by the fallback."""

from __future__ import annotations

import dataclasses
import logging
from decimal import Decimal
from pathlib import Path

import pytest

from tests.advisor_support import NOW_NS, context, signal
from trademesh.core.advisor.app import _warn_of_old_regimes
from trademesh.core.advisor.calibrating import CalibrationSample, fit_calibration
from trademesh.core.advisor.config import load_engine_config
from trademesh.core.advisor.defaults import default_calibration
from trademesh.core.advisor.engine.calibration import Calibration, CalibrationMethod, Calibrator, calibrate
from trademesh.core.advisor.engine.config import (
    AdvisorConfig,
    RegimeConfig,
    SynthesisConfig,
    ValidationConfig,
)
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.engine.decision import Decision
from trademesh.core.advisor.engine.regime import (
    KEPT_MARKETS,
    LEGACY_REGIMES,
    REGIMES,
    UNKNOWN,
    RegimeReader,
    anchor,
    read_regime,
)
from trademesh.core.advisor.library import CalibrationFiles, calibration_to_pb, legacy_keys
from trademesh.core.domain.model import Candle
from trademesh.core.domain.regime import Regime
from trademesh.core.overwatch.engine import MarketKey, Overwatch
from trademesh.core.overwatch.synthetic import SeriesSpec, regime_series, segments_bars
from trademesh.core.platform.errors import InvalidArgument

CONFIG = RegimeConfig()
NO_LLM = AdvisorConfig(
    validation=ValidationConfig(cap_target_at_swing=False), synthesis=SynthesisConfig(llm_enabled=False)
)
KEY = MarketKey("sim", "BTC/USDT", "1m")


def decided(made: object) -> Decision:
    assert isinstance(made, Decision)
    return made


def overwatch_regimes(bars: list[Candle]) -> list[str]:
    """Overwatch's engine's regime of the market after each bar, as its shell feeds it."""
    engine, read = Overwatch(), []
    for bar in bars:
        engine.on_bar(KEY.venue, KEY.symbol, bar, bar.open_time_ns + bar.timeframe.ns)
        read.append(engine.regime(KEY).value)
    return read


def test_the_advisors_decisions_read_overwatchs_regime_of_the_same_bars() -> None:
    # 150 bars of a range, then a trend up, a burst, a trend down and thin volume (630 bars: the
    # context holds them all, as Overwatch's engine has read them all).
    spec = SeriesSpec(warmup_bars=150)
    order = [Regime.TREND_UP, Regime.HIGH_VOLATILITY, Regime.TREND_DOWN, Regime.THIN_LIQUIDITY]
    bars = segments_bars(order, [120] * 4, seed=4, spec=spec).bars
    expected = overwatch_regimes(bars)
    core = AdvisorCore(NO_LLM, None, Calibration.identity())
    read = {}
    for t in range(30, len(bars), 3):
        made = core.on_signal(signal(signal_id=f"s{t}"), context(tuple(bars[: t + 1])), NOW_NS + t)
        assert isinstance(made, Decision) and made.regime is not None
        read[t] = made.regime.label
    assert read == {t: expected[t] for t in read}
    assert set(read.values()) >= {UNKNOWN, *(r.value for r in order)}


def test_a_signal_is_decided_alike_by_a_core_that_decided_for_hours_and_by_a_fresh_one() -> None:
    """The regime is a function of the bars: a live advisor that has decided the market's signals
    for hours and a backtest starting at this signal (a fresh core, the same 700 bars and not the
    few more a live context may hold) read the same regime and calibrate alike."""
    bars, end = regime_series(3).bars, 1_151  # a trend down there (seed 3: bars 1,039-1,201)
    seasoned = AdvisorCore(NO_LLM, None, default_calibration("1m"))
    for t in range(150, end - 10, 7):
        seasoned.on_signal(
            signal(signal_id=f"s{t}"), context(tuple(bars[max(0, t - 701) : t + 1])), NOW_NS + t
        )
    fresh = AdvisorCore(NO_LLM, None, default_calibration("1m"))
    live, backtest = (
        decided(core.on_signal(signal(signal_id="x"), context(tuple(bars[end - held : end])), NOW_NS))
        for core, held in ((seasoned, 702), (fresh, 700))
    )
    assert live.regime == backtest.regime and live.regime is not None and live.regime.label == "trend_down"
    assert live.calibration == backtest.calibration and live.calibration is not None
    assert live.calibration.key == live.regime.label  # the regime's own calibrator
    assert (live.conviction, live.synthesis, live.intent) == (
        backtest.conviction,
        backtest.synthesis,
        backtest.intent,
    )


def test_over_a_long_series_the_advisor_reads_overwatchs_regime_but_near_its_changes() -> None:
    """Past 700 bars the advisor reads 600 to 700 of them and Overwatch all: their long-run
    levels differ a little, and so, now and then, the bar a change is confirmed on."""
    bars = regime_series(100).bars  # 3,875 bars, 20 segments
    expected, reader = overwatch_regimes(bars), RegimeReader(CONFIG)
    changes = [t for t in range(1, len(bars)) if expected[t] != expected[t - 1]]
    read = {
        t: reader.read(("sim", "BTC/USDT"), bars[t + 1 - CONFIG.window_bars : t + 1]).label
        for t in range(CONFIG.window_bars, len(bars))
    }
    apart = [t for t, label in read.items() if label != expected[t]]
    assert len(apart) <= len(read) // 100  # 9 of 3,175 bars
    assert all(min(abs(t - c) for c in changes) <= 10 for t in apart)


def test_a_window_one_bar_on_is_one_update_and_reads_what_a_fresh_read_does() -> None:
    bars = regime_series(7).bars[:1_200]
    reader = RegimeReader(CONFIG)
    for t in (150, 151, 640, 699, 700, 701, 760, 799, 800, 801, 1_100):
        window = tuple(bars[max(0, t + 1 - CONFIG.window_bars) : t + 1])
        assert reader.read(("sim", "X"), window) == read_regime(window, CONFIG), t
    # A bar among those read changed (a gap repaired): read from the anchor again.
    changed = list(bars[401:1_101])
    changed[690] = dataclasses.replace(changed[690], high=changed[690].high * 2)
    fresh = read_regime(changed, CONFIG)
    assert reader.read(("sim", "X"), changed) == fresh != read_regime(bars[401:1_101], CONFIG)


def test_the_reader_moving_bar_by_bar_across_anchors_reads_what_fresh_reads_do() -> None:
    """Each bar's step is made once and handed to the run of every anchor reading it (a run at a
    new anchor takes the steps its predecessor made, but for its first bar, read after none): the
    same AdvisorRegimeView, every float of it, as a read from scratch of each window, refused bars and a bar
    not after the last among them."""
    bars = list(regime_series(11).bars[:1_500])
    bars[420] = dataclasses.replace(bars[420], low=bars[420].high + Decimal(1))  # refused
    bars[903] = dataclasses.replace(bars[903], open_time_ns=bars[902].open_time_ns)  # not after the last
    reader = RegimeReader(CONFIG)
    for t in [*range(90, 1_500, 7), *range(1_390, 1_500)]:
        window = tuple(bars[max(0, t + 1 - CONFIG.window_bars) : t + 1])
        assert repr(reader.read(("sim", "X"), window)) == repr(read_regime(window, CONFIG)), t


def test_the_reader_keeps_the_classifiers_of_the_markets_read_last_only() -> None:
    bars = regime_series(7).bars[:150]
    reader = RegimeReader(CONFIG)
    for n in range(KEPT_MARKETS + 10):
        reader.read(("sim", f"S{n}/USDT"), bars)
    assert len(reader) == KEPT_MARKETS
    # A market dropped reads from its anchor again: the same answer.
    assert reader.read(("sim", "S0/USDT"), bars) == read_regime(bars, CONFIG)


def test_the_regime_is_read_from_the_first_bar_at_a_multiple_of_restart_bars() -> None:
    bars = regime_series(7).bars
    step = bars[0].timeframe.ns
    for end in (700, 701, 777, 800, 1_000):
        window = bars[end - CONFIG.window_bars : end]
        first = window[anchor(window, CONFIG)]
        assert first.open_time_ns % (CONFIG.restart_bars * step) == 0
        assert 600 < read_regime(window, CONFIG).bars <= 700
    assert anchor(bars[:699], CONFIG) == 0  # a short history: every bar from the first


def test_fewer_bars_than_the_warm_up_read_unknown_and_calibrate_with_the_fallback() -> None:
    bars = regime_series(7).bars
    assert read_regime(bars[:99], CONFIG).label == UNKNOWN
    assert read_regime(bars[:100], CONFIG).label in REGIMES
    assert read_regime((), CONFIG).label == UNKNOWN
    platt = Calibrator(CalibrationMethod.PLATT, 1.0, 1.0)
    calibration = Calibration("c", {UNKNOWN: platt, "range": platt}, Calibrator(CalibrationMethod.IDENTITY))
    assert (calibrate(calibration, UNKNOWN, 0.6).key, calibrate(calibration, "range", 0.6).key) == (
        "fallback", "range",
    )  # fmt: skip
    samples = [CalibrationSample(UNKNOWN, 0.3 + i % 5 / 10, i % 2) for i in range(400)]
    fitted, report = fit_calibration(samples, version="v")
    assert fitted.by_regime == {} and [r.key for r in report.regimes] == ["fallback"]


def test_a_bar_the_classifier_refuses_is_skipped_as_overwatchs_shell_skips_it() -> None:
    bars = list(segments_bars([Regime.THIN_LIQUIDITY], [80], seed=2).bars)
    bars[200] = dataclasses.replace(bars[200], low=bars[200].high + Decimal(1))  # high below low
    bars[250] = dataclasses.replace(bars[250], open_time_ns=bars[249].open_time_ns)  # not after the last
    engine = Overwatch()
    for bar in bars:
        try:
            engine.on_bar(KEY.venue, KEY.symbol, bar, 0)
        except InvalidArgument:
            continue  # the shell counts and skips it
    regime = read_regime(bars, CONFIG)
    assert regime.label == engine.regime(KEY).value == "thin_liquidity"
    assert regime.bars == len(bars) - 2


def test_an_artifact_keyed_by_the_old_labels_loads_and_calibrates_with_its_fallback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    old = Calibration(
        "default-1m-cal.3eae88b1f6bc",
        {label: Calibrator(CalibrationMethod.PLATT, 0.5, 0.1) for label in LEGACY_REGIMES},
        Calibrator(CalibrationMethod.PLATT, 0.2, 0.1),
    )
    loaded = Calibration.from_json(old.to_json())
    assert legacy_keys(loaded) == sorted(LEGACY_REGIMES)
    for regime in (*REGIMES, UNKNOWN):
        result = calibrate(loaded, regime, 0.7)
        assert (result.key, result.calibrated) == ("fallback", calibrate(loaded, "fallback", 0.7).calibrated)
    # An old decision's regime is still asked of GetCalibration: the fallback's method answers.
    files = CalibrationFiles(loaded, None, 0, "")
    assert calibration_to_pb(files, "up.calm").regimes[0].regime == "up.calm"
    with pytest.raises(InvalidArgument, match="regime: 'sideways' is not a regime; regimes: trend_up"):
        calibration_to_pb(files, "sideways")
    # The advisor says so at its start, once; not of a calibration per the regimes read now.
    with caplog.at_level(logging.WARNING, logger="trademesh.core.advisor.app"):
        _warn_of_old_regimes(files)
        _warn_of_old_regimes(CalibrationFiles(default_calibration("1m"), None, 0, ""))
    assert [r.getMessage() for r in caplog.records] == [
        "advisor: calibration default-1m-cal.3eae88b1f6bc is keyed by regimes no decision reads now "
        f"({', '.join(sorted(LEGACY_REGIMES))}): every decision uses its fallback calibrator; fit one per "
        "regime (`trademesh advisor calibrate`)"
    ]


def test_the_regime_section_names_a_window_the_classifier_can_warm_up_in(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument) as bad:
        RegimeConfig(window_bars=300, restart_bars=250)
    assert [v.field for v in bad.value.violations] == ["regime.restart_bars"]
    old = tmp_path / "advisor.toml"
    old.write_text("[regime]\nhigh_volatility = 0.002\n")
    known = r"regime\.high_volatility: unknown key; known: window_bars, restart_bars"
    with pytest.raises(InvalidArgument, match=known):
        load_engine_config(old)
