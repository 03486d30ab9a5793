"""Live and backtest step the engine alike (issue 18's parity, in-process): the live runner,
handed the venues' events late, out of order and in arbitrary batches, gives exactly the
backtest stage's signals (ids aside: the same times, symbols, directions, convictions and
rules) once its hold covers the delivery delay; events later than the hold are counted late.

The strategies are the shipped examples (trend on trade bars closed by ticks, mean reversion,
order flow on the book); the market a seeded random walk of two symbols, 4 trades a second.

And a strategy that exits by its own request (trademesh/core/detector/strategies/exits/trend_exit.toml):
a whole backtest (the detector, advisor and inspector cores) of a walk, and the live runner
handed the same market data and, at the same times, what the backtest's strategy heard back
from its inspector (its position, the risk state), make the same signals and the same position
requests. Deaf to the inspector, the same runner makes none of the requests (it never hears it
holds a position) and more signals (it enters while holding)."""

from __future__ import annotations

import dataclasses
import heapq
import logging
import random
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from google.protobuf.message import Message

from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.detect import DetectStage, no_timer
from trademesh.core.backtest.run import Tape
from trademesh.core.backtest.session import drive_sync
from trademesh.core.backtest.synthetic import Walk, walk
from trademesh.core.detector.config import example_strategies
from trademesh.core.detector.convert import position_to_pb, signal_to_pb
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine, EngineConfig
from trademesh.core.detector.engine.outputs import EmittedSignal, Evaluation
from trademesh.core.detector.runner import PatchRunner
from trademesh.core.detector.strategy_file import Strategy, build_patches, load_strategy
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.signal.v1 import signal_pb2 as sig

MS = 1_000_000
START = 1_767_225_600 * 1_000_000_000
STEPS = 1_200  # 5 minutes of 250 ms steps


def _strategies() -> list[Strategy]:
    catalog = Catalog.builtin()
    return [load_strategy(path, catalog) for path in example_strategies()]


def _recorded() -> list[md.MarketEvent]:
    """Both symbols' walks in event-time order (the recorder's order)."""
    walks = [
        walk(Walk(symbol=symbol, price=price, seed=seed, steps=STEPS, step_ns=250 * MS, volatility=0.002))
        for symbol, price, seed in (("BTC/USDT", 65_000.0, 1), ("ETH/USDT", 3_400.0, 2))
    ]
    return list(heapq.merge(*walks, key=lambda event: event.ts_event_ns))


def _groups(events: Sequence[md.MarketEvent]) -> Iterator[tuple[int, list[md.MarketEvent]]]:
    group: list[md.MarketEvent] = []
    for event in events:
        if group and event.ts_event_ns != group[0].ts_event_ns:
            yield group[0].ts_event_ns, group
            group = []
        group.append(event)
    if group:
        yield group[0].ts_event_ns, group


def _key(signal: EmittedSignal) -> EmittedSignal:
    return dataclasses.replace(signal, signal_id="")


def _backtested(events: Sequence[md.MarketEvent], end: int) -> list[EmittedSignal]:
    """As trademesh.core.backtest.run steps the detector: ticks due before each timestamp, then it."""
    stage = DetectStage(_strategies(), START)
    signals: list[EmittedSignal] = []
    last = START
    for at, group in _groups(events):
        while (due := stage.next_tick(last)) is not None and due <= at:
            signals += stage.tick().signals
        signals += stage.feed("sim", group, at).signals
        last = at
    while (due := stage.next_tick(last)) is not None and due <= end:
        signals += stage.tick().signals
    return signals


async def _live(
    events: Sequence[md.MarketEvent], end: int, hold_ms: int, delay_ms: int
) -> tuple[PatchRunner, list[EmittedSignal]]:
    """The runner handed the events as a venue stream would: each up to `delay_ms` late, in
    arrival order, in batches of 1 to 20; released as the wall clock would (arrival - hold)."""
    rng = random.Random(3)
    arriving = sorted(
        ((event.ts_event_ns + rng.randrange(delay_ms * MS + 1), n, event) for n, event in enumerate(events)),
        key=lambda item: item[:2],
    )
    signals: list[EmittedSignal] = []

    async def emit(evaluation: Evaluation) -> None:
        signals.extend(evaluation.signals)

    engine = Engine(Catalog.builtin(), no_timer, EngineConfig(tick_hz=10.0))
    wall = [START]  # the wall clock: the last arrival
    runner = PatchRunner(engine, emit, clock=lambda: wall[0], hold_ns=hold_ms * MS)
    for strategy in _strategies():
        runner.warming.update(patch.id for patch in build_patches(engine, strategy, START))
    n = 0
    while n < len(arriving):
        batch = arriving[n : n + rng.randint(1, 20)]
        n += len(batch)
        arrived = wall[0] = batch[-1][0]
        runner.deliver("sim", [event for _, _, event in batch], arrived)
        await runner.release(arrived - hold_ms * MS)
    wall[0] = end
    await runner.release(end)
    return runner, signals


async def test_the_live_runner_gives_the_backtests_signals_when_its_hold_covers_the_delay() -> None:
    events = _recorded()
    end = events[-1].ts_event_ns + 5_000 * MS
    expected = _backtested(events, end)
    runner, live = await _live(events, end, hold_ms=200, delay_ms=150)

    assert {s.strategy_id for s in expected} >= {"trend", "mean_reversion"}, "a market the examples signal on"
    assert len(expected) >= 10
    assert [_key(s) for s in live] == [_key(s) for s in expected]
    assert runner.sequencer.late == 0


async def test_events_later_than_the_hold_are_counted_late_and_said(caplog: pytest.LogCaptureFixture) -> None:
    events = _recorded()[:4_000]
    with caplog.at_level(logging.WARNING, "trademesh.core.detector.runner"):
        runner, _ = await _live(events, events[-1].ts_event_ns, hold_ms=50, delay_ms=150)

    assert runner.sequencer.late > 0
    said = [r.getMessage() for r in caplog.records if "later than the hold" in r.getMessage()]
    assert len(said) == 1 and "(50 ms; the latest from sim)" in said[0]  # once a minute at most


def test_a_signal_names_the_bar_it_came_from_even_when_a_tick_closed_it() -> None:
    """Trend's 1s bars close by the clock (a tick past the bar's end and the lateness) more
    often than by a trade: the signal's event time is that bar's close, not the last bar a
    trade happened to close, which can be many seconds old."""
    events = _recorded()
    signals = [s for s in _backtested(events, events[-1].ts_event_ns) if s.strategy_id == "trend"]
    assert len(signals) >= 3
    lags = [s.signal_time_ns - s.ts_event_ns for s in signals]
    assert all(0 <= lag <= 1_100 * MS for lag in lags), lags  # lateness (1 s) and a tick at most


# ---- a strategy that exits by its own request, hearing back from the inspector

EXITS = Path("trademesh/core/detector/strategies/exits/trend_exit.toml")


async def _live_hearing(events: Sequence[md.MarketEvent], tape: Tape, hold_ms: int) -> Evaluation:
    """The live runner handed the events in time order and, at each time the backtest's
    strategies heard the inspector, what they heard: released as the wall clock would."""
    out = Evaluation()

    async def emit(evaluation: Evaluation) -> None:
        out.extend(evaluation)

    engine = Engine(Catalog.builtin(), no_timer, EngineConfig(tick_hz=10.0))
    wall = [START]
    runner = PatchRunner(engine, emit, clock=lambda: wall[0], hold_ns=hold_ms * MS)
    runner.warming.update(p.id for p in build_patches(engine, load_strategy(EXITS, Catalog.builtin()), START))
    heard = dict(tape.heard)
    times = sorted({at for at, _ in _groups(events)} | set(heard))
    groups = dict(_groups(events))
    for at in times:
        if at in groups:
            runner.deliver("sim", groups[at], at + hold_ms * MS)
        if at in heard:
            runner.hear(heard[at])
        wall[0] = at + hold_ms * MS
        await runner.release(at)
    return out


async def test_a_strategy_exiting_by_its_own_request_makes_the_backtests_requests_live() -> None:
    spec = Walk(steps=1800, volatility=0.001)
    settings = BacktestConfig(
        strategies=(EXITS,), start_ns=spec.start_ns, end_ns=spec.start_ns + spec.steps * spec.step_ns,
        symbols=("BTC/USDT",), sample_s=60,
    )  # fmt: skip
    tape = drive_sync(build(settings), walk(spec))
    assert len(tape.requests) >= 2 and tape.heard, "the walk makes the strategy enter and exit"
    events = list(walk(spec))  # a step's book, then its trades, a nanosecond apart

    live = await _live_hearing(events, tape, hold_ms=200)

    assert [_unnamed(signal_to_pb(s)) for s in live.signals] == [_unnamed(s) for s in tape.signals]
    assert [_unnamed(position_to_pb(r)) for r in live.positions] == [_unnamed(r) for r in tape.requests]


def _unnamed(message: Message) -> bytes:
    """A signal or a request as bytes, its id aside."""
    copy = type(message)()
    copy.CopyFrom(message)
    copy.ClearField("signal_id" if isinstance(copy, sig.Signal) else "request_id")
    return copy.SerializeToString(deterministic=True)
