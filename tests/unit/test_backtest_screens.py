"""Screen-driven strategies in a backtest (trademesh.core.backtest.screens): the screen evaluated by the
Screener's engine on the run's bars at each multiple of its cadence, the patches of the symbols
entering its set started then (and fed: they signal), those leaving retired after the hold; and
live and backtest alike: the same bars through the live path (the Screener's state and
evaluation, its result as written on screens.<name>, read back by the detector's feed into the
same roster) make the same starts and retirements at the same times."""

from __future__ import annotations

import heapq
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.mesh import ADVISOR_TEST_CONFIG
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.run import Backtest, Tape
from trademesh.core.backtest.session import drive_sync, item_time
from trademesh.core.backtest.synthetic import Walk, bar_walk
from trademesh.core.detector.engine.lifecycle import PatchState
from trademesh.core.detector.screen_feed import ranking_of
from trademesh.core.detector.screens import RosterChange, ScreenRoster
from trademesh.core.detector.strategy_file import ScreenSymbols
from trademesh.core.platform.bus.codec import FIELD, encode_screen_result
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.screener.convert import candle_of, result_to_pb
from trademesh.core.screener.engine.evaluate import evaluate
from trademesh.core.screener.screen_file import load_screen
from trademesh.core.screener.state import MarketState
from trademesh.signal.v1 import signal_pb2 as sig

MINUTE = 60 * 10**9
T0 = 1_767_225_600 * 10**9  # 2026-01-01, a whole minute
BARS = 60
SYMBOLS = ("BTC/USDT", "ETH/USDT", "SOL/USDT")
HOLD_S = 600
SCREEN = """
name = "leaders"
venue = "sim"
cadence_s = 60
top = 2
max_age_s = 3600

[bars]
timeframe = "1m"
momentum = 10
volatility = 2
volume = 10

[score]
weights = { momentum = 1.0 }
"""
# Each member's patch signals on every 1m bar it reads (a close above 0 fires; the close, scaled
# down, grades a second rule so each bar's score differs).
STRATEGY = f"""
id = "leading"
venues = ["sim"]
symbols = {{ screen = "leaders", top = 1, min_hold_s = {HOLD_S} }}
threshold = 1.0
cables = [
    "bars.bar -> ohlcv.bar", "ohlcv.close -> priced.a", "priced.out -> score.rule_1",
    "ohlcv.close -> scaled.a", "scaled.out -> score.level_2", "score.signal -> emit.signal",
]

[[modules]]
id = "bars"
type = "bars"
params = {{ timeframe = "1m" }}

[[modules]]
id = "ohlcv"
type = "bar_fields"

[[modules]]
id = "priced"
type = "compare"
params = {{ op = ">", value = 0.0 }}

[[modules]]
id = "scaled"
type = "divide"
params = {{ value = 1000.0 }}

[[modules]]
id = "score"
type = "weighted_score"
params = {{ direction = "long", weight_1 = 1.0, name_1 = "priced", weight_2 = 0.01, name_2 = "close" }}

[[modules]]
id = "emit"
type = "signal"
params = {{ on = "every" }}
"""


def close(symbol: str, i: int) -> float:
    """BTC climbs for 25 minutes then barely; ETH is flat for 20, then climbs faster; SOL sinks."""
    if symbol == "BTC/USDT":
        return 100 * 1.01 ** min(i, 25) * 1.001 ** max(0, i - 25)
    if symbol == "ETH/USDT":
        return 100 * 1.02 ** max(0, i - 20)
    return 100 - 0.1 * i


def bars(t0: int = T0) -> list[bus.Bar]:
    """Every symbol's 1m bars from `t0`, in time order (each at its close)."""
    out = []
    for i in range(BARS):
        for symbol in SYMBOLS:
            c = f"{close(symbol, i):.6f}"
            out.append(bus.Bar(venue="sim", symbol=symbol, timeframe=common.TIMEFRAME_1_MINUTE,
                               open_time_ns=t0 + i * MINUTE, open=c, high=c, low=c, close=c, volume="1",
                               quote_volume=c, trade_count=1))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("screens")
    (directory / "screens").mkdir()
    (directory / "screens" / "leaders.toml").write_text(SCREEN)
    (directory / "leading.toml").write_text(STRATEGY)
    return directory / "leading.toml", directory / "screens"


def config(files: tuple[Path, Path], **more: object) -> BacktestConfig:
    strategy, screens = files
    options: dict[str, object] = {"strategies": (strategy,), "start_ns": T0, "end_ns": T0 + BARS * MINUTE + 1,
                                  "screens": screens, **more}  # fmt: skip
    return BacktestConfig(**options)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def run(files: tuple[Path, Path]) -> tuple[Backtest, Tape]:
    backtest = build(config(files))
    return backtest, drive_sync(backtest, bars())


def changes_of(tape: Tape) -> list[tuple[int, tuple[str, ...], tuple[str, ...]]]:
    return [(c.at_ns, c.start, c.retire) for _, c in tape.screens]


def test_the_screens_leader_starts_and_the_one_it_overtook_retires_after_the_hold(
    run: tuple[Backtest, Tape],
) -> None:
    backtest, tape = run
    changes = changes_of(tape)
    swaps = [(start, retire) for _, start, retire in changes]
    assert swaps == [(("BTC/USDT",), ()), (("ETH/USDT",), ("BTC/USDT",))]
    (entered, _, _), (swapped, _, _) = changes
    assert entered % MINUTE == 0 and swapped % MINUTE == 0  # at multiples of the cadence
    assert swapped - entered >= HOLD_S * 10**9
    assert backtest.symbols == sorted(SYMBOLS)  # the universe: every instrument of the replayed venue
    patches = backtest.detect.engine.patches
    assert patches["leading/sim/BTC/USDT"].state is PatchState.ARCHIVED
    assert patches["leading/sim/ETH/USDT"].state is PatchState.ACTIVE
    assert "leading/sim/SOL/USDT" not in patches
    # Each member's patch signals on the bars after its start and until its retirement, no other.
    signalled = {(s.symbol, s.ts_signal_ns) for s in tape.signals}
    closes = [T0 + (i + 1) * MINUTE for i in range(BARS)]
    expected = {("BTC/USDT", at) for at in closes if entered <= at < swapped}
    expected |= {("ETH/USDT", at) for at in closes if at >= swapped}
    assert signalled == expected


def test_the_same_bars_through_the_live_path_start_and_retire_alike(
    run: tuple[Backtest, Tape], files: tuple[Path, Path]
) -> None:
    """The Screener's state fed the bars closed before each evaluation (live, the bar closing at
    T is published just after the Screener's evaluation at T), its result as written on the bus,
    read back as the detector's feed reads it, into the roster of the strategy's screen key."""
    _, tape = run
    screen = load_screen(files[1] / "leaders.toml")
    state = MarketState([screen])
    roster = ScreenRoster("sim", ScreenSymbols(screen="leaders", top=1, min_hold_s=HOLD_S), lambda _: False)
    pending, live = bars(), []
    for at in range(T0, T0 + BARS * MINUTE + 1, screen.cadence_ns):
        while pending and pending[0].open_time_ns + MINUTE < at:
            bar = pending.pop(0)
            state.add_bar("sim", bar.symbol, candle_of(bar))
        message = result_to_pb(evaluate(screen, state.inputs(screen), at))
        change = roster.on_results([ranking_of({FIELD: encode_screen_result("screener", message)})])
        if change:
            live.append(change)
    assert [(c.at_ns, c.start, c.retire) for c in live] == changes_of(tape)
    assert all(isinstance(c, RosterChange) and not c.leaving for c in live)


def test_a_screen_the_run_cannot_follow_is_refused_naming_it(
    files: tuple[Path, Path], tmp_path: Path
) -> None:
    strategy = tmp_path / "other.toml"
    strategy.write_text(STRATEGY.replace('screen = "leaders"', 'screen = "laggards"'))
    with pytest.raises(InvalidArgument, match="no screen 'laggards' \\(screens: leaders\\)") as caught:
        build(config(files, strategies=(strategy,)))
    assert caught.value.violations[0].field == "symbols.screen"
    with pytest.raises(InvalidArgument, match="screen leaders scans 'sim'; the run replays 'binance'"):
        build(config(files, venue="binance"))


# ---- a symbol leaving with a position open

# Two random walks of 1s bars ranked by their 20-second momentum every 5 s: the lead swaps often.
UP = """
name = "up"
venue = "sim"
cadence_s = 5
top = 1
max_age_s = 3600

[bars]
timeframe = "1s"
momentum = 20
volatility = 2
volume = 20

[score]
weights = { momentum = 1.0 }
"""
STEPS = 900


def exits_on_a_screen() -> str:
    """The exits example (trademesh/core/detector/strategies/exits/trend_exit.toml) on the screen's leader,
    entering whether flat or not (so a leaving patch has entries to mute), exiting by its own
    close request as it does."""
    text = Path("trademesh/core/detector/strategies/exits/trend_exit.toml").read_text()
    text = text.replace('symbols = ["BTC/USDT"]', 'symbols = { screen = "up", top = 1, min_hold_s = 15 }')
    return text.replace('"entry_gate.out -> entry.gate"', '"may_trade.out -> entry.gate"')


@pytest.fixture(scope="module")
def leaving(tmp_path_factory: pytest.TempPathFactory) -> Tape:
    directory = tmp_path_factory.mktemp("leaving")
    (directory / "screens").mkdir()
    (directory / "screens" / "up.toml").write_text(UP)
    (directory / "exits.toml").write_text(exits_on_a_screen())
    (directory / "advisor.toml").write_text(ADVISOR_TEST_CONFIG)  # the sim's small moves get through
    btc = Walk(symbol="BTC/USDT", steps=STEPS, seed=1, volatility=0.001)
    eth = Walk(symbol="ETH/USDT", steps=STEPS, seed=2, price=3000.0, volatility=0.001)
    settings = BacktestConfig(
        strategies=(directory / "exits.toml",), start_ns=btc.start_ns,
        end_ns=btc.start_ns + STEPS * btc.step_ns, symbols=("BTC/USDT", "ETH/USDT"),
        screens=directory / "screens", advisor_config=directory / "advisor.toml", timeframe="1s",
    )  # fmt: skip
    return drive_sync(build(settings), heapq.merge(bar_walk(btc), bar_walk(eth), key=item_time))


def held(tape: Tape, symbol: str, at_ns: int) -> Decimal:
    """The account's position in `symbol` after the fills by `at_ns` (only this strategy trades)."""
    fills = [f for f in tape.fills if f.symbol == symbol and f.ts_ns <= at_ns]
    return sum((f.size if f.side == "buy" else -f.size for f in fills), Decimal(0))


def test_a_symbol_leaving_with_a_position_keeps_its_patch_and_exits_until_flat_entries_muted(
    leaving: Tape,
) -> None:
    changes = [c for _, c in leaving.screens]
    left = [(c.at_ns, symbol) for c in changes for symbol in c.leaving]
    assert left, "some symbol left the set with its position open"
    assert all(held(leaving, symbol, at) != 0 for at, symbol in left)
    # Every retirement happens flat: a patch is never retired with its position open.
    retired = [(c.at_ns, symbol) for c in changes for symbol in c.retire]
    assert retired and all(held(leaving, symbol, at) == 0 for at, symbol in retired)
    # Between leaving and retiring, the patch's exits go through and none of its entries does.
    checked = 0
    for at, symbol in left:
        until = min((r for r, s in retired if s == symbol and r > at), default=None)
        back = min((c.at_ns for c in changes if c.at_ns > at and symbol in c.start), default=None)
        if until is None or (back is not None and back < until):
            continue  # it came back (a member again), or the run ended first
        # Flat in between: by its own close request or by the inspector's protective pair.
        exits = [f for f in leaving.fills if f.symbol == symbol and at < f.ts_ns <= until]
        assert exits and held(leaving, symbol, until) == 0, (symbol, at, until)
        assert not [s for s in leaving.signals if s.symbol == symbol and at <= s.ts_signal_ns < until]
        checked += 1
    assert checked, "a leaving symbol's patch retired once flat"
    assert leaving.signals_muted > 0
    closed = {r.symbol for r in leaving.requests if r.action == sig.POSITION_ACTION_CLOSE}
    assert closed == {"BTC/USDT", "ETH/USDT"}  # its own exits, requested by both symbols' patches
