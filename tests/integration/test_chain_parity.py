"""Issue 18's parity tests: the live chain on the sim and a backtest of its recording agree.

One live recording serves every test here (tests/integration/chain_mesh.py: the sim, ingest,
recorder, bars, the bridge, the advisor, the inspector and the detector with a hold, then
orders placed by hand): a mesh costs minutes, so its tests share it (one module: the suite's
workers take a module at a time).

- **Signals**: the backtest of the recorded window, started where the live detector did (from
  its log: its patches warmed from the bars closed by the time it warmed, "candles closed by";
  its market data from the first event time it fed, "market data from"), gives the live
  signals, ids aside (the same times, symbols, directions, convictions, scores and rules).
- **Orders sent again**: the orders placed by hand (marketable and resting, both sides), sent
  to the backtest's replayed venue at the times the live venue received them, fill as they
  filled live (the same prices, sizes, fees and liquidity, the same end states).
- **The chain**: the backtest with the live advisor's config and `latency = "recorded"` (each of
  its orders sent at its live twin's recorded arrival, core.backtest.twins) makes the live
  chain's intents on the same signals (the same sides, order types, prices, sizes and risk
  amounts: the same equity), every live intent's order has its backtest twin, and its orders
  at a twin are the twin's requests and end as the twin did (status, filled size, fills per
  price level); one still working at the backtest's end (a second after the cutoff) has the
  live fills so far (live went on).

docs/backtest.md, "Parity with live"."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest

from core.backtest.assemble import advisor_bars, build, recorded_history
from core.backtest.config import BacktestConfig
from core.backtest.detect import no_timer
from core.backtest.market import ReplayedMarket, queue_rule
from core.backtest.recorded_orders import Outcome, load_recorded_orders, outcomes, refill
from core.backtest.session import drive
from core.backtest.source import RecordedSource
from core.backtest.twins import TwinArrivals, live_hearing, load_twin_arrivals
from core.detector.config import example_strategies
from core.detector.convert import signal_to_pb
from core.detector.engine.catalog import Catalog
from core.detector.engine.engine import Engine, EngineConfig
from core.detector.engine.outputs import EmittedSignal, Evaluation
from core.detector.history import patch_history
from core.detector.runner import Runner
from core.detector.strategy_file import build_patches, load_strategy
from core.errors import FailedPrecondition
from core.model import Execution, Liquidity, OrderRequest, OrderStatus, OrderType
from tests.integration.chain_mesh import (
    FROM,
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
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.signal.v1 import signal_pb2 as sig
from venues.sim.config import load_config as load_sim_config
from venues.sim.order_manager import FeeSchedule
from venues.sim.symbols import instruments as sim_instruments

# The recording's set-up (about 3 minutes, more on a loaded machine) runs within the first test.
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
    runner = Runner(engine, emit, clock=lambda: wall[0], hold_ns=HOLD_MS * 1_000_000)
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


async def _backtested_signals(chain: Chain) -> tuple[list[sig.Signal], list[tuple[str, Any]]]:
    config = BacktestConfig(
        strategies=example_strategies(),
        start_ns=chain.started_ns,
        end_ns=chain.cutoff_ns + S,
        database_url=chain.database,
    )
    backtest = build(config)
    history = await recorded_history(dataclasses.replace(config, start_ns=chain.warmed_ns + 1), backtest)
    backtest.detect.warm_from_history(history, chain.warmed_ns)  # the live detector's cut
    assert set(backtest.detect.warming) == chain.warmed_live, "the same patches start warm"
    symbols = backtest.symbols
    source = RecordedSource(config.database_url, config.venue, symbols, config.start_ns, config.end_ns)

    async def events() -> AsyncIterator[Any]:
        async for recorded in source:
            yield recorded.message

    tape = await drive(backtest, events())
    return list(tape.signals), history


def _compared(signals: list[sig.Signal], cutoff_ns: int) -> list[sig.Signal]:
    kept = []
    for signal in signals:
        if signal.ts_signal_ns <= cutoff_ns:
            copy = sig.Signal()
            copy.CopyFrom(signal)
            copy.signal_id = ""
            kept.append(copy)
    return sorted(kept, key=lambda s: (s.ts_signal_ns, s.strategy_id, s.symbol))


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
    live = _compared(chain.signals, chain.cutoff_ns)
    backtested, history = await _backtested_signals(chain)
    replayed = _compared(backtested, chain.cutoff_ns)
    stepped = _compared(await _runner_on_recorded(chain, history), chain.cutoff_ns)
    assert [_line(s) for s in stepped] == [_line(s) for s in replayed], "the runner steps as the backtest"

    assert len(live) >= MIN_SIGNALS, f"the demo strategies signal within {LIVE_MAX_S} s: {len(live)}"
    assert chain.warmed_ns < chain.started_ns < chain.cutoff_ns
    assert [_line(s) for s in replayed] == [_line(s) for s in live]
    assert replayed == live


def _line(signal: sig.Signal) -> str:
    rules = ",".join(f"{r.name}={r.value}{'*' if r.fired else ''}" for r in signal.rules)
    return (
        f"{signal.ts_signal_ns} {signal.ts_event_ns} {signal.strategy_id} {signal.symbol} "
        f"{sig.Direction.Name(signal.direction)} {signal.conviction} {signal.score} "
        f"v{signal.patch_version} {rules}"
    )


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


def _sides(outcome: Outcome) -> set[Liquidity]:
    return {f.liquidity for f in outcome.fills}


# ---- the chain: intents, orders and their outcomes


@dataclasses.dataclass
class Backtested:
    signals: list[sig.Signal]
    decisions: list[am.Decision]
    orders: list[Execution]  # every order update the replayed venue reported
    twins: TwinArrivals  # the live twins its orders were sent at


async def _backtested_chain(chain: Chain) -> Backtested:
    """The backtest of the window with the live advisor's config and `latency = "recorded"`, as
    run_recorded runs it; its advisor reads the recorded 1s bars (the bar service's, as the live
    advisor reads them: core.backtest.assemble.run_recorded), its detector builds its own."""
    config = BacktestConfig(
        strategies=example_strategies(),
        start_ns=chain.started_ns,
        end_ns=chain.cutoff_ns + S,
        database_url=chain.database,
        sim_config=chain.sim_config,
        advisor_config=chain.advisor_config,
        timeframe="1s",  # the live advisor's (chain_mesh: its --timeframe)
        latency="recorded",
    )
    backtest = build(config)
    history = await recorded_history(dataclasses.replace(config, start_ns=chain.warmed_ns + 1), backtest)
    backtest.detect.warm_from_history(history, chain.warmed_ns)
    backtest.bars.warm(await advisor_bars(config, backtest))
    order_ns = backtest.market.latency.order_ns
    twins = await load_twin_arrivals(
        config.database_url, config.venue, config.start_ns, config.end_ns, order_ns
    )
    backtest.time_orders(twins)
    # Our inspector hears each execution when the live one heard its twin's: the journal as the
    # recorder kept it is the one on the bus (a recording kept before it was recorded: the bus's).
    on_bus = live_hearing(jr.JournalEntry.FromString(entry) for entry in chain.journal)
    if twins.hearing is None:
        assert os.environ.get(FROM), "the recorder kept no journal"
        twins.hearing = on_bus
    assert twins.hearing == on_bus
    backtest.market.hear(twins.heard_at)
    source = RecordedSource(
        config.database_url, config.venue, backtest.symbols, config.start_ns, config.end_ns,
        kinds=("book", "trade", "bar"), timeframes=("1s",),
    )  # fmt: skip
    detect = backtest.detect.feed
    backtest.detect.feed = lambda venue, events, now_ns, bars=(): detect(venue, events, now_ns)  # type: ignore[method-assign]

    async def events() -> AsyncIterator[Any]:
        async for recorded in source:
            yield recorded.message

    tape = await drive(backtest, events())
    return Backtested(list(tape.signals), list(tape.decisions), list(tape.orders), twins)


Key = tuple[int, str, str]  # a signal's event time, strategy, symbol


def _key(signal: sig.Signal) -> Key:
    return signal.ts_event_ns, signal.strategy_id, signal.symbol


def _intent(decision: am.Decision) -> tuple[str, ...]:
    """What is compared of a decision: its outcome; an intent's side, order type, entry, stop,
    target, size and risk amount."""
    if not decision.HasField("intent"):
        return (am.Outcome.Name(decision.outcome), decision.block_reason)
    i = decision.intent
    return (
        "intent", str(i.side), str(i.entry_type), i.entry_price, i.stop_loss, i.take_profit, i.size,
        i.risk_amount,
    )  # fmt: skip


def _request(r: OrderRequest) -> tuple[object, ...]:
    return r.side, r.type, r.price, r.size, r.trigger_price, r.reduce_only, r.time_in_force, r.post_only


def _went_on(mine: Outcome, live: Outcome) -> bool:
    """An order still working at the backtest's end whose fills so far are the live ones' first:
    the live session went on after the backtest's window (it ends a second after the cutoff).
    The live fills are merged per price level over the whole session, so the last of those the
    backtest's cover may be covered in part: its price, liquidity and fee asset are compared,
    and its size up to what the backtest filled."""
    if not mine.status.is_open or mine.filled_size > live.filled_size:
        return False
    left = mine.filled_size
    for index, fill in enumerate(mine.fills):
        if index >= len(live.fills):
            return False
        theirs = live.fills[index]
        if fill == theirs:
            left -= fill.size
            continue
        same_level = (fill.price, fill.liquidity, fill.fee_asset) == (
            theirs.price,
            theirs.liquidity,
            theirs.fee_asset,
        )
        return same_level and index == len(mine.fills) - 1 and fill.size == left < theirs.size
    return left == 0


def _orders_at_twins(run: Backtested) -> list[tuple[int, bool, bool, str]]:
    """Each backtest order sent at a live twin's arrival: (the twin's arrival, the same request,
    the same outcome or working at the end as live so far, a line showing both)."""
    firsts: dict[str, Execution] = {}
    for execution in run.orders:
        firsts.setdefault(execution.order.client_order_id, execution)
    found = outcomes(run.orders)
    out = []
    for cid, first in firsts.items():
        twin = run.twins.twin_of(cid)
        if twin is None:
            continue
        o = first.order
        mine = OrderRequest(o.symbol, o.side, o.type, o.size, o.price, o.time_in_force, o.post_only,
                            o.reduce_only, cid, o.trigger_price)  # fmt: skip
        same_request = _request(mine) == _request(twin.request)
        same_outcome = found[cid] == twin.outcome or _went_on(found[cid], twin.outcome)
        line = (
            f"{o.symbol} {cid[:12]} at {twin.arrival_ns}\n   backtest {_request(mine)} {found[cid]}"
            f"\n   live     {_request(twin.request)} {twin.outcome}"
        )
        out.append((twin.arrival_ns, same_request, same_outcome, line))
    return out


async def test_the_backtest_makes_the_live_chains_intents_orders_and_fills(chain: Chain) -> None:
    """Every live decision's intent (or block) is the backtest's, and every order the live
    inspector placed in the window has its backtest twin, sent at its arrival with the same
    request and ending as it did (or working at the backtest's end with the live fills so far)."""
    run = await _backtested_chain(chain)
    assert _compared(run.signals, chain.cutoff_ns) == _compared(chain.signals, chain.cutoff_ns)
    live = {_key(d.signal): d for d in chain.decisions if d.signal.ts_signal_ns <= chain.cutoff_ns}
    signals = {s.signal_id: s for s in run.signals}
    replayed = {_key(signals[d.signal_id]): d for d in run.decisions if d.signal_id in signals}
    assert len(live) >= MIN_SIGNALS, f"the demo strategies signal within {LIVE_MAX_S} s: {len(live)}"
    assert set(live) <= set(replayed), "every live decision up to the cutoff has its backtest twin"
    order = sorted(live, key=lambda k: live[k].ts_decision_ns)
    apart = [f"{k}: live {_intent(live[k])} backtest {_intent(replayed[k])}" for k in order
             if _intent(live[k]) != _intent(replayed[k])]  # fmt: skip
    # The orders first: an order's fills apart part the equity, and the sizes after it.
    # Every live intent's order that reached the venue by the backtest's end has its backtest
    # twin (the backtest's inspector allowed the same intents) ...
    end_ns = chain.cutoff_ns + S
    entries = {k for k, o in run.twins.twins.items() if k[1] == "intent" and o.arrival_ns < end_ns}
    assert entries, "the live inspector placed some intent's order in the window"
    assert entries <= run.twins.taken, "every live intent's order has its backtest twin"
    # ... and each order sent at a twin's arrival is its request and ends as it did.
    compared = [c for c in _orders_at_twins(run) if c[0] < end_ns]
    report = "\n".join(f"{'=' if r and o else '!'} {line}" for _, r, o, line in compared)
    print(f"\nchain: {len(live) - len(apart)} of {len(live)} intents equal, {len(compared)} orders at a twin")
    assert all(same_request for _, same_request, _, _ in compared), report
    assert all(same_outcome for _, _, same_outcome, _ in compared), report
    assert not apart, "\n".join(apart)
