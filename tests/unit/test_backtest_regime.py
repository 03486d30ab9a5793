"""Regime-gated strategies in a backtest (trademesh.core.backtest.regimes): the run's 1m bars go through
Overwatch's engine as live, and a strategy gated on `trend_up` signals only while the regime
read from those bars is trend_up. The bars are synthetic with a known regime change
(trademesh.core.overwatch.synthetic, seed 3: a calm range, thin volume, a trend up, a trend down). And live
and backtest alike: the live runner hearing the regimes the backtest heard, at the same times,
makes the backtest's signals (the example, trademesh/core/detector/strategies/regime/trend_regime.toml)."""

from __future__ import annotations

from pathlib import Path

import pytest

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.detect import no_timer
from trademesh.core.backtest.regimes import RegimeStage
from trademesh.core.backtest.run import Tape
from trademesh.core.backtest.session import drive_sync
from trademesh.core.backtest.synthetic import Walk, bar_walk
from trademesh.core.detector.convert import signal_to_pb
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine, EngineConfig
from trademesh.core.detector.engine.io import RegimeValue
from trademesh.core.detector.engine.outputs import Evaluation
from trademesh.core.detector.regime_feed import regime_values
from trademesh.core.detector.runner import PatchRunner
from trademesh.core.detector.strategy_file import build_patches, load_strategy
from trademesh.core.domain.convert import TIMEFRAME_TO_PB
from trademesh.core.domain.model import Candle, Timeframe
from trademesh.core.domain.regime import Classifier, Regime
from trademesh.core.overwatch.classify import classify
from trademesh.core.overwatch.convert import change_to_pb
from trademesh.core.overwatch.engine import Overwatch
from trademesh.core.overwatch.feed import Read
from trademesh.core.overwatch.synthetic import LabelledBars, regime_series
from trademesh.core.platform.bus.codec import FIELD, encode_regimes
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.signal.v1 import signal_pb2 as sig

SEED = 3  # segments: range 300 bars (the warm-up), thin_liquidity 135, trend_up 127, trend_down 220
MINUTE = 60_000_000_000
# Every closed 1m bar makes a new signal (a close above 0 always fires; the close, scaled down,
# grades a second rule so each bar's score differs), emitted through a gate: the regime is trend_up.
GATED = """
id = "gated"
venues = ["sim"]
symbols = ["BTC/USDT"]
threshold = 1.0
cables = [
    "bars.bar -> ohlcv.bar", "ohlcv.close -> priced.a", "priced.out -> score.rule_1",
    "ohlcv.close -> scaled.a", "scaled.out -> score.level_2",
    "score.signal -> emit.signal", "regime.allowed -> emit.gate",
]

[[modules]]
id = "bars"
type = "bars"
params = { timeframe = "1m" }

[[modules]]
id = "regime"
type = "regime"
params = { regimes = "trend_up" }

[[modules]]
id = "ohlcv"
type = "bar_fields"

[[modules]]
id = "priced"
type = "compare"
params = { op = ">", value = 0.0 }

[[modules]]
id = "scaled"
type = "divide"
params = { value = 1000.0 }

[[modules]]
id = "score"
type = "weighted_score"
params = { direction = "long", weight_1 = 1.0, name_1 = "priced", weight_2 = 0.01, name_2 = "close" }

[[modules]]
id = "emit"
type = "signal"
params = { on = "every" }
"""


def bus_bar(candle: Candle) -> bus.Bar:
    return bus.Bar(
        venue="sim", symbol="BTC/USDT", timeframe=TIMEFRAME_TO_PB[candle.timeframe],
        open_time_ns=candle.open_time_ns, open=str(candle.open), high=str(candle.high), low=str(candle.low),
        close=str(candle.close), volume=str(candle.volume), quote_volume=str(candle.quote_volume),
        trade_count=candle.trade_count,
    )  # fmt: skip


def close_of(candle: Candle) -> int:
    return candle.open_time_ns + candle.timeframe.ns


@pytest.fixture(scope="module")
def series() -> LabelledBars:
    return regime_series(SEED, segments=3)


@pytest.fixture(scope="module")
def tape(series: LabelledBars, tmp_path_factory: pytest.TempPathFactory) -> Tape:
    path = tmp_path_factory.mktemp("regime") / "gated.toml"
    path.write_text(GATED)
    first = series.bars[0].open_time_ns
    config = BacktestConfig(
        strategies=(path,), start_ns=first, end_ns=close_of(series.bars[-1]) + 1, symbols=("BTC/USDT",),
    )  # fmt: skip
    return drive_sync(build(config), [bus_bar(candle) for candle in series.bars])


def test_a_strategy_gated_on_trend_up_signals_only_in_the_trend_up_stretch(
    series: LabelledBars, tape: Tape
) -> None:
    # The regime in force after each bar, read by the pure classifier alone over the same bars.
    classifier = Classifier()
    after = [classifier.update(candle).regime for candle in series.bars]
    # A bar's evaluation sees the regime the bars before it made (the change a bar makes is
    # heard after the detector's step with it, as live).
    expected = [close_of(c) for k, c in enumerate(series.bars) if k > 0 and after[k - 1] is Regime.TREND_UP]
    signalled = [s.ts_signal_ns for s in tape.signals]
    assert signalled == expected
    assert len(signalled) > 50
    regime, first, count = series.segments[2]
    assert regime is Regime.TREND_UP
    stretch = (close_of(series.bars[first]), close_of(series.bars[first + count - 1]))
    # The known change: every signal falls inside the true trend-up segment, none in the range,
    # the thin stretch or the trend down.
    assert all(stretch[0] <= at <= stretch[1] for at in signalled), (stretch, signalled[0], signalled[-1])
    assert {s.strategy_id for s in tape.signals} == {"gated"}


def test_the_backtest_hears_the_regimes_overwatchs_engine_reads_from_the_bars(
    series: LabelledBars, tape: Tape
) -> None:
    heard = [(v.regime, v.ts_event_ns) for v in tape.regimes]
    assert heard[0] == (Regime.RANGE, close_of(series.bars[99]))  # warm after 100 bars, taken at once
    assert Regime.TREND_UP in [regime for regime, _ in heard]
    assert all(v.venue == "sim" and v.symbol == "BTC/USDT" for v in tape.regimes)
    # The same bars through a stage of its own: the same changes (nothing depends on the run).
    again = RegimeStage().on_bars([bus_bar(candle) for candle in series.bars])
    assert again == tape.regimes


def test_a_stage_warmed_before_the_start_tells_each_markets_regime_then() -> None:
    series = regime_series(SEED, segments=3)
    stage = RegimeStage()
    bars = [bus_bar(candle) for candle in series.bars[:500]]
    other = [_with(bar, symbol="ETH/USDT") for bar in bars[:200]]
    told = stage.warm(sorted([*bars, *other], key=lambda bar: (bar.open_time_ns, bar.symbol)))
    assert [(v.symbol, v.regime) for v in told] == [("BTC/USDT", Regime.TREND_UP), ("ETH/USDT", Regime.RANGE)]
    assert all(isinstance(v, RegimeValue) for v in told)
    # A bar of another timeframe, and a bar Overwatch refuses, are skipped.
    hourly = _with(bars[0], timeframe=TIMEFRAME_TO_PB[Timeframe.H1])
    broken = _with(bars[0], open_time_ns=bars[-1].open_time_ns + MINUTE, close="x")
    assert stage.on_bars([hourly, broken]) == [] and stage.refused == 1


def _with(bar: bus.Bar, **changed: object) -> bus.Bar:
    copy = bus.Bar()
    copy.CopyFrom(bar)
    for name, value in changed.items():
        setattr(copy, name, value)
    return copy


def test_the_backtest_hears_what_the_live_detector_hears_from_overwatch(series: LabelledBars) -> None:
    """Live: Overwatch's shell classifies the bars read from the bus, writes each change to
    regimes.1m, and the detector's feed reads the entry back. The backtest: its stage alone."""
    bars = [bus_bar(candle) for candle in series.bars]
    classified = classify(Overwatch(), Timeframe.M1, [Read("bars.{sim}.1m", "1-0", tuple(bars), False)])
    entry = {FIELD: encode_regimes("overwatch/test", [change_to_pb(c) for c in classified.live])}
    assert len(classified.live) >= 4
    assert regime_values(entry) == RegimeStage().on_bars(bars)


# ---- live and backtest alike: the example on a walk

EXAMPLE = Path("trademesh/core/detector/strategies/regime/trend_regime.toml")
WALK = Walk(step_ns=MINUTE, steps=600, volatility=0.002, drift=0.0004, seed=5)


async def _live(tape: Tape, hear_regimes: bool, hold_ms: int = 200) -> Evaluation:
    """The live runner handed the walk's market events in time order and, at each time the
    backtest's strategy heard a regime change, that change (as its regime feed would)."""
    out = Evaluation()

    async def emit(evaluation: Evaluation) -> None:
        out.extend(evaluation)

    engine = Engine(Catalog.builtin(), no_timer, EngineConfig(tick_hz=10.0))
    wall = [WALK.start_ns]
    runner = PatchRunner(engine, emit, clock=lambda: wall[0], hold_ns=hold_ms * 1_000_000)
    strategy = load_strategy(EXAMPLE, Catalog.builtin())
    runner.warming.update(patch.id for patch in build_patches(engine, strategy, WALK.start_ns))
    heard: dict[int, list[RegimeValue]] = {}
    for value in tape.regimes if hear_regimes else ():
        heard.setdefault(value.ts_event_ns, []).append(value)
    groups: dict[int, list[md.MarketEvent]] = {}
    for item in bar_walk(WALK):
        if isinstance(item, md.MarketEvent):
            groups.setdefault(item.ts_event_ns, []).append(item)
    for at in sorted(set(groups) | set(heard)):
        if at in groups:
            runner.deliver("sim", groups[at], at + hold_ms * 1_000_000)
        if at in heard:
            runner.hear(heard[at])
        wall[0] = at + hold_ms * 1_000_000
        await runner.release(at)
    return out


async def test_the_live_runner_hearing_the_regimes_the_backtest_heard_makes_its_signals() -> None:
    config = BacktestConfig(
        strategies=(EXAMPLE,), start_ns=WALK.start_ns, end_ns=WALK.start_ns + (WALK.steps + 1) * MINUTE,
        symbols=("BTC/USDT",),
    )  # fmt: skip
    tape = drive_sync(build(config), bar_walk(WALK))
    assert len(tape.signals) >= 3 and len(tape.regimes) >= 5
    # Every signal while the regime last heard was trend_up.
    for signal in tape.signals:
        last = [v for v in tape.regimes if v.ts_event_ns <= signal.ts_signal_ns][-1]
        assert last.regime is Regime.TREND_UP, signal

    live = await _live(tape, hear_regimes=True)
    assert [_unnamed(signal_to_pb(s)) for s in live.signals] == [_unnamed(s) for s in tape.signals]
    deaf = await _live(tape, hear_regimes=False)
    assert deaf.signals == []  # no regime heard: the gate stays shut


def _unnamed(signal: sig.Signal) -> bytes:
    copy = sig.Signal()
    copy.CopyFrom(signal)
    copy.ClearField("signal_id")
    return copy.SerializeToString(deterministic=True)
