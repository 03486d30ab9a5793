"""Issue 18's parity tests: the live chain on the sim and a backtest of its recording agree.

Each test runs on every live session shipped in fixtures/chain-parity* (tests/integration/
chain_mesh.py: the sim, ingest, recorder, bars, the bridge, the advisor, the inspector and the
detector with a hold, then orders placed by hand), restored into a scratch database once for
the tests (one module: the suite's workers take a module at a time): the first session, and
those that caught a race (tests/integration/chain_races.py).

- **Signals**: the backtest of the recorded window, started where the live detector did (from
  its log: its patches warmed from the bars closed by the time it warmed, "candles closed by";
  its market data from the first event time it fed, "market data from"), gives the live
  signals, ids aside (the same times, symbols, directions, convictions, scores and rules).
- **Orders sent again**: the orders placed by hand (marketable and resting, both sides), sent
  to the backtest's replayed venue at the times the live venue received them, fill as they
  filled live (the same prices, sizes, fees and liquidity, the same end states).
- **The chain**: the backtest with the live advisor's config and `latency = "recorded"` (each of
  its orders sent at its live twin's recorded arrival, trademesh.core.backtest.twins) makes the live
  chain's intents on the same signals (the same sides, order types, prices, sizes and risk
  amounts: the same equity), every live intent's order has its backtest twin, and its orders
  at a twin are the twin's requests and end as the twin did (status, filled size, fills per
  price level); one still working at the backtest's end (a second after the cutoff) has the
  live fills so far (live went on).
- **The races**: each race a session caught (a protective order that filled while its cancel or
  resize was on its way, an answer on an order that does not hold a fill made before it came, a
  pair placed on an entry's answer that filled before the entry's fills were heard) is the one
  its README names, and the backtest decides it as live did: the racing orders are among those
  compared at their twins, and equal.

- **A strategy that exits by its own request** (trademesh/core/detector/strategies/exits/trend_exit.toml,
  not run live in the shipped sessions): the backtest of the recorded window with it, and the
  live runner handed the recorded events and what the backtest's strategy heard back from its
  inspector at the same times, make the same signals and position requests.

docs/backtest-parity.md, "Parity with live"."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from google.protobuf.message import Message

from tests.integration.chain_compare import ChainReport, backtested_signals, chain_report, compared, line
from tests.integration.chain_mesh import (
    HOLD_MS,
    LIVE_MAX_S,
    MIN_SIGNALS,
    ORDER_PLAN,
    ORDERS,
    SYMBOLS,
    TRADED,
    WARM_WINDOW_S,
    Bar,
    Chain,
    S,
    chain,
    fetchval,
)
from tests.integration.chain_races import answer_races, cancel_races, word_races
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.core.backtest.assemble import advisor_bars, build, recorded_history
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.detect import no_timer
from trademesh.core.backtest.market import ReplayedMarket, queue_rule
from trademesh.core.backtest.recorded_orders import OrderOutcome, load_recorded_orders, refill
from trademesh.core.backtest.run import Tape
from trademesh.core.backtest.session import drive
from trademesh.core.backtest.source import RecordedSource
from trademesh.core.detector.config import example_strategies
from trademesh.core.detector.convert import position_to_pb, signal_to_pb
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine, EngineConfig
from trademesh.core.detector.engine.outputs import EmittedSignal, Evaluation
from trademesh.core.detector.needs import patch_history
from trademesh.core.detector.runner import PatchRunner
from trademesh.core.detector.strategy_file import build_patches, load_strategy
from trademesh.core.domain.matching.order_manager import FeeSchedule
from trademesh.core.domain.model import Liquidity, OrderStatus, OrderType
from trademesh.core.platform.errors import FailedPrecondition
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.venues.sim.config import load_config as load_sim_config
from trademesh.venues.sim.symbols import instruments as sim_instruments

# The shipped session's restore runs within the first test (a live one's set-up, about 3 minutes).
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
__all__ = ["chain", "database_url", "redis_url"]  # fixtures

Count = tuple[int, Decimal]  # trades in a second, and their volume


# ---- signals


def _row(row: asyncpg.Record) -> Bar:
    return (row[0], row[1], row[2], row[3], row[4], row[5], row[6])


async def _recorded_bars(database: str, warmed_ns: int) -> dict[str, list[Bar]]:
    sql = (
        "SELECT open_time_ns, open, high, low, close, volume, trade_count FROM bars WHERE symbol = $1 "
        "AND timeframe = '1s' AND open_time_ns >= $2 AND open_time_ns + $3 <= $4 ORDER BY open_time_ns"
    )
    connection = await asyncpg.connect(database)
    try:
        return {
            symbol: [
                _row(row)
                for row in await connection.fetch(sql, symbol, warmed_ns - WARM_WINDOW_S * S, S, warmed_ns)
            ]
            for symbol in SYMBOLS
        }
    finally:
        await connection.close()


async def _recorded_trades(database: str, after_ns: int, end_ns: int) -> dict[str, dict[int, Count]]:
    """The recorded trades per symbol and second: (count, volume)."""
    sql = (
        "SELECT ts_event_ns / $3 * $3 AS at, count(*), sum(size) FROM trades WHERE symbol = $1 "
        "AND ts_event_ns >= $2 AND ts_event_ns < $4 GROUP BY at"
    )
    connection = await asyncpg.connect(database)
    try:
        found: dict[str, dict[int, Count]] = {}
        for symbol in SYMBOLS:
            rows = await connection.fetch(sql, symbol, after_ns, S, end_ns)
            found[symbol] = {row[0]: (row[1], row[2]) for row in rows}
        return found
    finally:
        await connection.close()


def _trade_differences(venue: dict[str, list[Bar]], recorded: dict[str, dict[int, Count]]) -> list[str]:
    lines = []
    for symbol in SYMBOLS:
        theirs: dict[int, Count] = {b[0]: (b[6], b[5]) for b in venue[symbol]}
        for at in sorted(set(theirs) | set(recorded[symbol])):
            if theirs.get(at) != recorded[symbol].get(at):
                lines.append(f"{symbol} {at}: venue {theirs.get(at)} recorded {recorded[symbol].get(at)}")
    return lines


def _bar_differences(venue: dict[str, list[Bar]], recorded: dict[str, list[Bar]]) -> list[str]:
    lines = []
    for symbol in SYMBOLS:
        theirs, ours = {b[0]: b for b in venue[symbol]}, {b[0]: b for b in recorded[symbol]}
        for at in sorted(set(theirs) | set(ours)):
            if theirs.get(at) != ours.get(at):
                lines.append(f"{symbol} {at}: venue {theirs.get(at)} recorded {ours.get(at)}")
    return lines


async def _runner_on_recorded(chain: Chain, history: list[tuple[str, Any]]) -> list[sig.Signal]:
    """The live detector's runner (its hold, its stepping) handed the recorded events in time
    order, warmed as the detector warmed: equal to the backtest's signals unless the two step
    differently. Beside the live signals it tells where a difference comes from: the stepping,
    or the data live saw."""
    engine = Engine(Catalog.builtin(), no_timer, EngineConfig(tick_hz=10.0))
    emitted: list[EmittedSignal] = []

    async def emit(evaluation: Evaluation) -> None:
        emitted.extend(evaluation.signals)

    wall = [chain.started_ns]
    runner = PatchRunner(engine, emit, clock=lambda: wall[0], hold_ns=HOLD_MS * 1_000_000)
    for path in example_strategies():
        for patch in build_patches(engine, load_strategy(path, Catalog.builtin()), chain.warmed_ns):
            engine.warm(patch.id, patch_history(engine, patch.id, history, chain.warmed_ns))
            try:
                patch.activate(chain.warmed_ns)
            except FailedPrecondition:
                runner.warming.add(patch.id)
    end = chain.cutoff_ns + S
    source = RecordedSource(chain.database, "sim", list(SYMBOLS), chain.started_ns, end)
    async for recorded in source:
        if isinstance(recorded.message, md.MarketEvent):
            wall[0] = max(wall[0], recorded.message.ts_event_ns)
            runner.deliver("sim", [recorded.message], wall[0])
            await runner.release(wall[0] - HOLD_MS * 1_000_000)
    wall[0] = end
    await runner.release(end)
    return [signal_to_pb(s) for s in emitted]


async def test_a_backtest_of_the_recorded_window_gives_the_live_signals(chain: Chain) -> None:
    assert "later than the hold" not in chain.log, "no event came later than the hold"
    warm_candles = {s: [b for b in bars if b[0] + S <= chain.warmed_ns] for s, bars in chain.candles.items()}
    differences = _bar_differences(warm_candles, await _recorded_bars(chain.database, chain.warmed_ns))
    assert not differences, "the recorded warm-up bars are the venue's candles:\n" + "\n".join(differences)
    # The trades of the live window, as the venue counted them and as they were recorded.
    first = chain.started_ns - chain.started_ns % S + S  # the first whole second of live data
    last = chain.cutoff_ns - chain.cutoff_ns % S
    live_candles = {s: [b for b in bars if first <= b[0] < last] for s, bars in chain.candles.items()}
    trades = _trade_differences(live_candles, await _recorded_trades(chain.database, first, last))
    assert not trades, "the recorded trades are the venue's:\n" + "\n".join(trades)
    live = compared(chain.signals, chain.cutoff_ns)
    backtested, history = await backtested_signals(chain)
    replayed = compared(backtested, chain.cutoff_ns)
    stepped = compared(await _runner_on_recorded(chain, history), chain.cutoff_ns)
    assert [line(s) for s in stepped] == [line(s) for s in replayed], "the runner steps as the backtest"

    assert len(live) >= MIN_SIGNALS, f"the demo strategies signal within {LIVE_MAX_S} s: {len(live)}"
    assert chain.warmed_ns < chain.started_ns < chain.cutoff_ns
    assert [line(s) for s in replayed] == [line(s) for s in live]
    assert replayed == live


async def _ended(database: str, placed: list[str]) -> int | None:
    """How many of the placed orders the recorder holds ended (filled, cancelled, ...), once it
    holds them all."""
    sql = (
        "SELECT count(DISTINCT client_order_id) FROM executions WHERE client_order_id = ANY($1) "
        "AND status IN ('filled', 'canceled', 'rejected', 'expired')"
    )
    ended = int(await fetchval(database, sql, placed))
    return ended if ended == len(placed) else None


async def test_the_live_orders_sent_at_their_recorded_arrivals_fill_as_they_did_live(
    chain: Chain,
) -> None:
    """The recorded latency model: each order of the live window reaches the backtest's replayed
    venue at the time the live venue took it (and its cancel at the cancel's), so it meets the
    recorded book as it met the venue's: the same fills, ids and times aside."""
    assert len(chain.placed) == ORDERS, "every order was placed"
    await until(lambda: _ended(chain.database, chain.placed), 30, what="every order recorded, ended")
    start, end = chain.orders_start_ns, chain.orders_end_ns
    orders = await load_recorded_orders(chain.database, "sim", start, end)
    assert sorted(o.request.client_order_id for o in orders) == sorted(chain.placed)
    sim = load_sim_config(chain.sim_config)
    market = ReplayedMarket(
        "sim",
        sim_instruments(sim),
        FeeSchedule(maker=sim.maker_fee_rate, taker=sim.taker_fee_rate),
        dict(sim.balances),
        start_ns=start,
        queue=queue_rule("sim"),
    )
    replayed = await refill(chain.database, market, [TRADED], start, end, orders)
    live = {o.request.client_order_id: o.outcome for o in orders}
    differences = [
        f"{cid}: live {live[cid]}\n  replayed {replayed.get(cid)}"
        for cid in sorted(live)
        if replayed.get(cid) != live[cid]
    ]
    assert not differences, "the replayed fills are the live ones:\n" + "\n".join(differences)
    # What the comparison covered: market orders filled, some order across price levels, a
    # resting order that filled as a maker or was cancelled, stops sent whole (none triggered).
    requests = {o.request.client_order_id: o.request for o in orders}
    kinds = {cid: requests[cid].type for cid in live}
    assert all(
        live[cid].status is OrderStatus.FILLED for cid, kind in kinds.items() if kind is OrderType.MARKET
    )
    assert any(len(o.fills) > 1 for o in live.values()), "an order filled at more than one price"
    rested = [o for o in live.values() if o.status is OrderStatus.CANCELED or Liquidity.MAKER in _sides(o)]
    assert rested, "an order rested"
    stops = [cid for cid, kind in kinds.items() if kind is OrderType.STOP_MARKET]
    assert len(stops) == ORDERS // len(ORDER_PLAN) and all(requests[cid].trigger_price for cid in stops)


def _sides(outcome: OrderOutcome) -> set[Liquidity]:
    return {f.liquidity for f in outcome.fills}


# ---- the chain: intents, orders and their outcomes


@pytest.fixture(scope="module")
async def report(chain: Chain) -> ChainReport:
    """The backtest of the session's window beside its live chain, once per session."""
    return await chain_report(chain)


async def test_the_backtest_makes_the_live_chains_intents_orders_and_fills(
    chain: Chain, report: ChainReport
) -> None:
    """Every live decision's intent (or block) is the backtest's, and every order the live
    inspector placed in the window has its backtest twin, sent at its arrival with the same
    request and ending as it did (or working at the backtest's end with the live fills so far)."""
    assert report.signals_equal
    assert report.decisions >= MIN_SIGNALS, (
        f"the demo strategies signal within {LIVE_MAX_S} s: {report.decisions}"
    )
    assert not report.untwinned, "every live decision up to the cutoff has its backtest twin"
    # The orders first: an order's fills apart part the equity, and the sizes after it.
    # Every live intent's order that reached the venue by the backtest's end has its backtest
    # twin (the backtest's inspector allowed the same intents) ...
    assert report.entries, "the live inspector placed some intent's order in the window"
    assert not report.entries_untwinned, "every live intent's order has its backtest twin"
    # ... and each order sent at a twin's arrival is its request and ends as it did.
    shown = "\n".join(f"{'=' if o.same_request and o.same_outcome else '!'} {o.line}" for o in report.orders)
    equal = report.decisions - len(report.apart)
    print(f"\nchain: {equal} of {report.decisions} intents equal, {len(report.orders)} orders at a twin")
    assert all(o.same_request for o in report.orders), shown
    assert all(o.same_outcome for o in report.orders), shown
    assert not report.apart, "\n".join(text for _, text in report.apart)


# ---- the races the shipped sessions caught (tests/integration/chain_races.py)

# Per shipped session, the races decided within its backtest's window (the inspector had heard
# the racing fill by then; tests/integration/chain_races.py): the live protective orders that
# filled while the core was cancelling or resizing them, the live orders an answer on which did
# not hold a fill made before it came, and the live entries whose pair, placed on their answer,
# filled before the fills the answer held were heard (client order ids, in the detector's
# order). Each session's README says where.
Races = tuple[list[str], list[str], list[str]]
RACES: dict[str, Races] = {
    "chain-parity": ([], [], []),
    "chain-parity-answer": ([], ["18b937ba38ef56dbab5fec879d2d8bf6"], []),
    "chain-parity-word": ([], [], ["0ac302a280e15a2694d1e79d6414b92d"]),
}


def _races(chain: Chain) -> tuple[Races, list[str]]:
    """The session's races decided within its backtest's window, and the live orders that raced."""
    end_ns = chain.cutoff_ns + S  # the backtest's
    cancels = [r for r in cancel_races(chain.journal) if r.heard_ns < end_ns]
    answers = [r for r in answer_races(chain.journal) if r.heard_ns < end_ns]
    words = [r for r in word_races(chain.journal) if r.last_heard_ns < end_ns]
    found = (
        [r.client_order_id for r in cancels],
        [r.client_order_id for r in answers],
        [r.entry for r in words],
    )
    racing = [*found[0], *found[1], *(id_ for r in words for id_ in (r.entry, r.protective))]
    return found, list(dict.fromkeys(racing))


async def test_the_backtest_decides_each_race_of_the_session_as_live_did(
    chain: Chain, report: ChainReport
) -> None:
    """Each race the session caught is the one its README names, and every order in it is among
    those the backtest sent at their twins' recorded arrivals (cancels included), ending as it
    did live: a protective order that filled while its cancel was on its way fills, with the same
    fills; a pair placed on an entry's answer catches the market it caught live."""
    found, racing = _races(chain)
    if chain.source:
        assert found == RACES[chain.source]
    compared = {o.live_id: o for o in report.orders}
    for live_id in racing:
        assert live_id in compared, f"{live_id} was sent at its live twin in the backtest's window"
        assert compared[live_id].same_request and compared[live_id].same_outcome, compared[live_id].line


# ---- a strategy that exits by its own request, on the recorded session


EXITS = Path("trademesh/core/detector/strategies/exits/trend_exit.toml")


async def _backtested_exits(chain: Chain) -> tuple[Tape, list[tuple[str, Any]]]:
    """The backtest of the recorded window with the exit strategy and the live advisor's config
    (its 1s bars), warmed as the live detector warmed."""
    config = BacktestConfig(
        strategies=(EXITS,), start_ns=chain.started_ns, end_ns=chain.cutoff_ns + S,
        database_url=chain.database, sim_config=chain.sim_config, advisor_config=chain.advisor_config,
        timeframe="1s",
    )  # fmt: skip
    backtest = build(config)
    history = await recorded_history(dataclasses.replace(config, start_ns=chain.warmed_ns + 1), backtest)
    backtest.detect.warm_from_history(history, chain.warmed_ns)
    backtest.bars.warm(await advisor_bars(config, backtest))
    source = RecordedSource(
        config.database_url, config.venue, backtest.symbols, config.start_ns, config.end_ns
    )

    async def events() -> AsyncIterator[Any]:
        async for recorded in source:
            yield recorded.message

    return await drive(backtest, events()), history


async def _runner_hearing(chain: Chain, history: list[tuple[str, Any]], tape: Tape) -> Evaluation:
    """The live runner (its hold, its stepping) handed the recorded events and, at each time the
    backtest's strategy heard its inspector, what it heard."""
    engine = Engine(Catalog.builtin(), no_timer, EngineConfig(tick_hz=10.0))
    out = Evaluation()

    async def emit(evaluation: Evaluation) -> None:
        out.extend(evaluation)

    hold = HOLD_MS * 1_000_000
    wall = [chain.started_ns]
    runner = PatchRunner(engine, emit, clock=lambda: wall[0], hold_ns=hold)
    for patch in build_patches(engine, load_strategy(EXITS, Catalog.builtin()), chain.warmed_ns):
        engine.warm(patch.id, patch_history(engine, patch.id, history, chain.warmed_ns))
        try:
            patch.activate(chain.warmed_ns)
        except FailedPrecondition:
            runner.warming.add(patch.id)
    heard = list(tape.heard)
    end = chain.cutoff_ns + S

    async def until_time(at: int) -> None:
        """What was heard before `at`, each after the steps and ticks of its own time."""
        while heard and heard[0][0] < at:
            when, events = heard.pop(0)
            runner.hear(events)
            wall[0] = max(wall[0], when + hold)
            await runner.release(when)

    source = RecordedSource(chain.database, "sim", list(SYMBOLS), chain.started_ns, end)
    async for recorded in source:
        if isinstance(recorded.message, md.MarketEvent):
            at = recorded.message.ts_event_ns
            await until_time(at)
            wall[0] = max(wall[0], at + hold)
            runner.deliver("sim", [recorded.message], wall[0])
            await runner.release(at - 1)  # the events of `at` may not all be in yet
    await until_time(end + 1)
    wall[0] = end + hold
    await runner.release(end)
    return out


def _unnamed(message: Message) -> bytes:
    copy = type(message)()
    copy.CopyFrom(message)
    copy.ClearField("signal_id" if isinstance(copy, sig.Signal) else "request_id")
    return copy.SerializeToString(deterministic=True)


async def test_a_strategy_exiting_by_its_own_request_makes_the_backtests_requests_live(chain: Chain) -> None:
    """The recorded session backtested with a strategy that exits by its own request (its
    entries through the live advisor's config, checked by the inspector core, its exits by
    close requests), and the live runner handed the same recorded events and, at the same
    times, what the backtest's strategy heard back from its inspector: the same signals and
    the same position requests. (Of the shipped sessions, one has the strategy enter and exit
    by its own close request within the window; in the others it enters and holds.)"""
    tape, history = await _backtested_exits(chain)
    assert tape.heard, "the strategy hears its inspector"
    live = await _runner_hearing(chain, history, tape)

    assert [_unnamed(signal_to_pb(s)) for s in live.signals] == [_unnamed(s) for s in tape.signals]
    assert [_unnamed(position_to_pb(r)) for r in live.positions] == [_unnamed(r) for r in tape.requests]
    closed = [v for v in tape.verdicts if v.allowed and v.orders[0].reduce_only]
    assert len(closed) == len(tape.requests) - len(tape.refusals)
