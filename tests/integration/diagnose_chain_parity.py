"""Issue 18's chain parity, as far as the advisor: the parity test's mesh (sim, ingest,
recorder, bars, detector with a hold) with the bridge, the advisor (LLM off, the mesh's sizing)
and the inspector added; the backtest of the recorded window with the same advisor config. Each
live decision on a signal up to the cutoff is paired with the backtest's on the same signal
(its event time, strategy and symbol): the same outcome, and an intent's side, order type,
entry, stop, target and size equal (docs/backtest.md, "Parity with live").

The live advisor decides on the world as of each signal's time (ts_signal_ns: its bars, its book
top, its account; core.advisor.gather); the backtest's advisor on the replayed world then. The
backtest here gives its advisor the recorded 1s bars (the bar service's, as the live advisor
reads them), as a recorded run does (core.backtest.assemble.run_recorded), not bars of its own
from the recorded trades: with its own, the stops were 1-2 % of an ATR apart.

The backtest runs twice: with the latency model, and with `latency = "recorded"` (each of its
orders sent at its live twin's recorded arrival, core.backtest.twins); the intents of both are
counted, and each order sent at a twin is compared with it (request, and outcome: end status,
filled size, fills per price level).

A diagnostic, not in the suite (its name is not test_*): it fails while the chain differs
(a resting entry's fills and a triggered stop's sweep are the replayed venue's, not the sim's:
docs/backtest.md, "Parity with live"). Run it by name, with -s for the
pairs, each live context's book and the backtest's orders:

    pytest -s tests/integration/diagnose_chain_parity.py

Once every pair is equal it becomes a test (test_chain_parity.py)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from core.backtest.assemble import advisor_bars, build, recorded_history
from core.backtest.book_seed import book_at
from core.backtest.config import BacktestConfig
from core.backtest.recorded_orders import Outcome, outcomes
from core.backtest.session import drive
from core.backtest.source import RecordedSource
from core.backtest.twins import TwinArrivals, load_twin_arrivals
from core.bus.codec import FIELD, decode
from core.bus.names import DECISIONS, RISK, journal_stream
from core.detector.config import example_strategies
from core.model import Execution, OrderRequest
from tests.integration.gateway_support import Processes
from tests.integration.mesh import ADVISOR_TEST_CONFIG, WARM_HISTORY_S, redis_db, venue_link
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from tests.integration.test_backtest_parity import HOLD_MS, LIVE_S, WARM_BARS, S, _bars_recorded, _logged
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.signal.v1 import signal_pb2 as sig

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["database_url", "redis_url"]  # fixtures

MAX_NOTIONAL_SHARE = "0.008"  # as `trademesh up` runs the advisor


@dataclass
class Chain:
    database: str
    sim_config: Path
    advisor_config: Path
    decisions: list[am.Decision]  # the live advisor's, each with its signal
    verdicts: dict[str, list[str]]  # the live inspector's risk events by intent id (action: reason)
    quotes: dict[str, str]  # the quote the live inspector journaled with each intent, by intent id
    warmed_ns: int
    started_ns: int
    cutoff_ns: int
    advisor_log: str


async def _bus_verdicts(bus_url: str) -> dict[str, list[str]]:
    client: Any = aioredis.Redis.from_url(bus_url)
    try:
        entries = await client.xrange(RISK)
    finally:
        await client.aclose()
    found: dict[str, list[str]] = {}
    for _, fields in entries:
        for event in decode(fields).risk.events:
            action = rk.RiskAction.Name(event.action)
            values = ", ".join(f"{v.name}={v.value}" for v in event.values)
            # Intents' verdicts by intent; the rest (a stand-down, a halt) under "" with their values.
            line = f"{action} {event.policy}: {event.reason}" + ("" if event.intent_id else f" ({values})")
            found.setdefault(event.intent_id, []).append(line)
    return found


async def _journaled_quotes(bus_url: str) -> dict[str, str]:
    """The quote (bid / ask, last) the live inspector journaled with each intent, by intent id."""
    client: Any = aioredis.Redis.from_url(bus_url)
    try:
        entries = await client.xrange(journal_stream("inspector"))
    finally:
        await client.aclose()
    found: dict[str, str] = {}
    for _, fields in entries:
        entry = jr.JournalEntry.FromString(fields[FIELD])
        if entry.WhichOneof("input") == "intent":
            journaled = entry.intent
            found[journaled.intent.intent_id] = f"{journaled.bid} / {journaled.ask}, last {journaled.last}"
    return found


async def _executions(database: str) -> list[str]:
    """The venue's order updates and fills as the recorder stored them, in the venue's order."""
    connection = await asyncpg.connect(database)
    try:
        rows = await connection.fetch(
            "SELECT ts_event_ns, client_order_id, symbol, side, order_type, reduce_only, price, size,"
            " filled_size, status, status_reason, fill_size, fill_price FROM executions"
            " ORDER BY epoch, sequence"
        )
    finally:
        await connection.close()
    return [
        f"{r['ts_event_ns']} {r['client_order_id'][:12]} {r['symbol']} {r['side']} {r['order_type']}"
        f"{' ro' if r['reduce_only'] else ''} {r['price']} {r['filled_size']}/{r['size']} {r['status']}"
        f"{' fill ' + str(r['fill_size']) + '@' + str(r['fill_price']) if r['fill_size'] is not None else ''}"
        f" {r['status_reason']}"
        for r in rows
    ]


async def _bus_decisions(bus_url: str) -> list[am.Decision]:
    client: Any = aioredis.Redis.from_url(bus_url)
    try:
        entries = await client.xrange(DECISIONS)
    finally:
        await client.aclose()
    return [d for _, fields in entries for d in decode(fields).decisions.decisions]


@pytest.fixture(scope="module")
async def chain(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> AsyncIterator[Chain]:
    tmp_path = tmp_path_factory.mktemp("chain")
    advisor_config = tmp_path / "advisor.toml"
    advisor_config.write_text(ADVISOR_TEST_CONFIG)
    async with new_database(database_url, "chain") as database, redis_db(redis_url) as bus:
        processes = Processes(tmp_path, database)
        try:
            gateway = processes.gateway()
            sim = processes.sim(gateway, f"history_s = {WARM_HISTORY_S}\n")
            venue = ("--venue", f"sim={sim.address}")
            processes.mesh_service(gateway, "recorder", "--database-url", database, redis_url=bus)
            processes.mesh_service(gateway, "ingest", *venue_link("ingest", sim.address), redis_url=bus)
            processes.mesh_service(gateway, "bars", *venue_link("bars", sim.address), redis_url=bus)
            processes.mesh_service(gateway, "bridge", redis_url=bus)
            processes.mesh_service(
                gateway, "advisor", *venue, "--database-url", database, "--config", str(advisor_config),
                "--timeframe", "1s", "--max-notional-share", MAX_NOTIONAL_SHARE,
                "--model-dir", str(tmp_path / "models"), redis_url=bus,
            )  # fmt: skip
            processes.mesh_service(gateway, "inspector", *venue, "--deadman-ttl-ms", "0", redis_url=bus)

            async def warm() -> int | None:
                recorded = await _bars_recorded(database)
                return recorded if recorded >= WARM_BARS else None

            await until(warm, 120, interval_s=1.0, what=f"{WARM_BARS} recorded 1s bars of each symbol")
            args = ("--venue", f"sim={sim.address}", "--database-url", database, "--hold-ms", str(HOLD_MS))
            detector = processes.mesh_service(gateway, "detector", *args, redis_url=bus)
            await asyncio.sleep(LIVE_S)
            await processes.stop(detector)
            stopped = time.time_ns()
            await asyncio.sleep(3)  # the last signals decided
            log = await asyncio.to_thread(lambda: next(tmp_path.glob("detector-*.log")))
            advisor_log = "".join(
                p.read_text(errors="replace") for p in sorted(tmp_path.glob("advisor-*.log"))
            )
            yield Chain(
                database,
                next(tmp_path.glob("sim-*.toml")),
                advisor_config,
                await _bus_decisions(bus),
                await _bus_verdicts(bus),
                await _journaled_quotes(bus),
                _logged(log, "candles closed by"),
                _logged(log, "market data from"),
                stopped - HOLD_MS * 1_000_000 - 2 * S,
                advisor_log,
            )
        finally:
            await processes.stop_all()


@dataclass
class Backtested:
    decisions: list[am.Decision]
    signals: dict[str, sig.Signal]
    orders: list[Execution]  # every order update the replayed venue reported
    twins: TwinArrivals | None  # the live twins its orders were sent at (latency "recorded")


async def _backtested(chain: Chain, latency: str = "model") -> Backtested:
    config = BacktestConfig(
        strategies=example_strategies(),
        start_ns=chain.started_ns,
        end_ns=chain.cutoff_ns + S,
        database_url=chain.database,
        sim_config=chain.sim_config,
        advisor_config=chain.advisor_config,
        latency=latency,
    )
    backtest = build(config)
    history = await recorded_history(dataclasses.replace(config, start_ns=chain.warmed_ns + 1), backtest)
    backtest.detect.warm_from_history(history, chain.warmed_ns)
    backtest.bars.warm(await advisor_bars(config, backtest))
    twins = None
    if latency == "recorded":  # as run_recorded does
        order_ns = backtest.market.latency.order_ns
        twins = await load_twin_arrivals(
            config.database_url, config.venue, config.start_ns, config.end_ns, order_ns
        )
        backtest.time_orders(twins)
    # The recorded 1s bars too, for the advisor's bars (BarKeeper takes recorded bars over its own
    # from trades), not the detector's (it builds its own, as live).
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
    return Backtested(list(tape.decisions), {s.signal_id: s for s in tape.signals}, list(tape.orders), twins)


def _order_line(e: Execution) -> str:
    o = e.order
    return (
        f"{o.updated_ns} {o.client_order_id[:12]} {o.symbol} {o.side.value} {o.type.value}"
        f"{' ro' if o.reduce_only else ''} {o.status.value} {o.price} {o.filled_size}/{o.size}"
    )


def _request(r: OrderRequest) -> tuple[object, ...]:
    return r.side, r.type, r.price, r.size, r.trigger_price, r.reduce_only


def _went_on(mine: Outcome, live: Outcome) -> bool:
    """An order still working at the backtest's end whose fills so far are the live ones' first:
    the live session went on after the backtest's window (it ends a second after the cutoff)."""
    return mine.status.is_open and mine.fills == live.fills[: len(mine.fills)]


def _compare_orders(run: Backtested) -> tuple[int, int, int, int, list[str]]:
    """The backtest's orders sent at a live twin's arrival against the twin: (paired, requests
    equal, outcomes equal: status, filled size and fills; still working at the backtest's end
    as live so far), and a line for each."""
    assert run.twins is not None
    firsts: dict[str, Execution] = {}
    for execution in run.orders:
        firsts.setdefault(execution.order.client_order_id, execution)
    found = outcomes(run.orders)
    paired = requests = fills = working = 0
    lines: list[str] = []
    for cid, first in firsts.items():
        twin = run.twins.twin_of(cid)
        if twin is None:
            continue
        o = first.order
        mine = OrderRequest(o.symbol, o.side, o.type, o.size, o.price, o.time_in_force, o.post_only,
                            o.reduce_only, cid, o.trigger_price)  # fmt: skip
        paired += 1
        same_request = _request(mine) == _request(twin.request)
        same_outcome = found[cid] == twin.outcome
        went_on = not same_outcome and _went_on(found[cid], twin.outcome)
        requests += same_request
        fills += same_outcome
        working += went_on
        mark = "=" if same_request and same_outcome else "~" if same_request and went_on else "!"
        lines.append(
            f"{mark} {o.symbol} {cid[:12]} at {twin.arrival_ns}"
            f"\n   back {_request(mine)} {found[cid]}\n   live {_request(twin.request)} {twin.outcome}"
        )
    return paired, requests, fills, working, lines


Key = tuple[int, str, str]


async def _replayed_tops(chain: Chain, wanted: list[tuple[int, str]]) -> dict[tuple[int, str], str]:
    """A fresh replayed venue (no order of ours) stepped over the recorded events: its best bid
    / ask after the events up to each wanted time (the signal's, ts_signal_ns: the backtest
    decides then, after that time's events)."""
    config = BacktestConfig(
        strategies=example_strategies(), start_ns=chain.started_ns, end_ns=chain.cutoff_ns + S,
        database_url=chain.database, sim_config=chain.sim_config,
    )  # fmt: skip
    backtest = build(config)
    market, ticks = backtest.market, {s: i.tick_size for s, i in backtest.instruments.items()}
    found: dict[tuple[int, str], str] = {}
    pending = sorted(wanted)
    source = RecordedSource(
        config.database_url, config.venue, backtest.symbols, config.start_ns, config.end_ns
    )
    async for recorded in source:
        message = recorded.message
        if not isinstance(message, md.MarketEvent):
            continue
        while pending and message.ts_event_ns > pending[0][0]:
            key = pending.pop(0)
            bid, ask = market.best(key[1])
            tick = ticks[key[1]]
            found[key] = f"{None if bid is None else bid * tick} / {None if ask is None else ask * tick}"
        market.on_market(message)
    return found


async def _revised_bars(database: str, decision: am.Decision, at_ns: int) -> str:
    """How many of the 15 bars before `at_ns` (those the stop's ATR(14) reads) the store holds
    in a version written after the live decision (a revision the live context could not see)."""
    sql = (
        "SELECT count(*) FROM bars WHERE venue = 'sim' AND symbol = $1 AND timeframe = '1s' "
        "AND open_time_ns >= $2 AND open_time_ns < $3 AND ts_publish_ns > $4"
    )
    connection = await asyncpg.connect(database)
    try:
        found = await connection.fetchval(
            sql, decision.symbol, at_ns - 16 * S, at_ns - S, decision.ts_decision_ns
        )
    finally:
        await connection.close()
    return f"{found} of the last 15 bars written after the live decision"


async def _recorded_top(database: str, symbol: str, at_ns: int) -> str:
    """The recorder's book of the symbol before `at_ns` (its events up to then): best bid / ask."""
    connection = await asyncpg.connect(database)
    try:
        async with connection.transaction():  # book_at reads with a cursor
            found = await book_at(connection, "sim", symbol, at_ns)
    finally:
        await connection.close()
    if found is None:
        return "none"
    book = found.book_snapshot
    bid = max((Decimal(level.price) for level in book.bids), default=None)
    ask = min((Decimal(level.price) for level in book.asks), default=None)
    return f"{bid} / {ask}"


def _book(decision: am.Decision, at_ns: int) -> str:
    """The live context's book top: bid, ask, its event time's distance before the signal's."""
    for stage in decision.stages:
        if stage.stage == am.STAGE_CONTEXT and stage.output_json:
            output = json.loads(stage.output_json)
            book = output.get("book") or {}
            ts = int(book.get("ts_event_ns") or 0)
            bar = output.get("last_bar") or {}
            opened = int(bar.get("open_time_ns") or 0)
            return (
                f"{book.get('bid')} / {book.get('ask')}, {(at_ns - ts) / 1e6:.1f} ms before; "
                f"{output.get('bars')} bars, the last opened {(at_ns - opened) / 1e9:.0f} s before"
            )
    return "none"


def _key(signal: sig.Signal) -> Key:
    return signal.ts_event_ns, signal.strategy_id, signal.symbol


def _intent(decision: am.Decision) -> tuple[str, ...]:
    """What is compared: the outcome; an intent's side, order type, entry, stop, target and size
    (its risk amount, the equity's share, is shown beside: the equity moves with each side's own
    fills until the orders are the same)."""
    if not decision.HasField("intent"):
        return (am.Outcome.Name(decision.outcome), decision.block_reason)
    i = decision.intent
    return ("intent", str(i.side), str(i.entry_type), i.entry_price, i.stop_loss, i.take_profit, i.size)


def _pair_line(key: Key, live: am.Decision, replayed: am.Decision) -> tuple[bool, str]:
    """Whether a pair's intents are equal, and its line: both intents and their risk amounts."""
    a, b = _intent(live), _intent(replayed)
    risks = f"risk {live.intent.risk_amount} live, {replayed.intent.risk_amount} backtested"
    mark = "=" if a == b else "!"
    return a == b, f"{mark} {key[0]} {key[1]} {key[2]}\n   live {a}\n   back {b}\n   {risks}"


def _intents_equal(chain: Chain, run: Backtested) -> tuple[int, int, list[str]]:
    """The live decisions up to the cutoff paired with the run's: (paired, equal, lines)."""
    live = {_key(d.signal): d for d in chain.decisions if d.signal.ts_signal_ns <= chain.cutoff_ns}
    replayed = {_key(run.signals[d.signal_id]): d for d in run.decisions if d.signal_id in run.signals}
    paired = sorted(set(live) & set(replayed))
    lines, equal = [], 0
    for key in paired:
        same, line = _pair_line(key, live[key], replayed[key])
        equal += same
        lines.append(line)
    return len(paired), equal, lines


async def test_the_live_advisors_intents_are_the_backtests(chain: Chain) -> None:
    live = {_key(d.signal): d for d in chain.decisions if d.signal.ts_signal_ns <= chain.cutoff_ns}
    model = await _backtested(chain, "model")
    run = await _backtested(chain, "recorded")
    replayed = {_key(run.signals[d.signal_id]): d for d in run.decisions if d.signal_id in run.signals}
    paired = sorted(set(live) & set(replayed))
    at = {key: live[key].signal.ts_signal_ns for key in paired}
    alone = await _replayed_tops(chain, sorted((at[key], key[2]) for key in paired))
    lines, equal = [], 0
    for key in paired:
        same, line = _pair_line(key, live[key], replayed[key])
        equal += same
        lines.append(line)
        lines.append(
            f"   live book {_book(live[key], at[key])} (signal at +{(at[key] - key[0]) / 1e6:.1f} ms)"
        )
        lines.append(f"   recorded book {await _recorded_top(chain.database, key[2], at[key] + 1)}")
        lines.append(f"   replayed book, no orders of ours {alone.get((at[key], key[2]))}")
        lines.append(f"   {await _revised_bars(chain.database, live[key], at[key])}")
        lines.append(f"   live inspector: {chain.verdicts.get(live[key].intent.intent_id, 'no verdict')}")
        lines.append(f"   live inspector's quote {chain.quotes.get(live[key].intent.intent_id, 'none')}")
    report = "\n".join(lines)
    counts = f"live {len(live)}, backtest {len(replayed)}"
    before_paired, before_equal, before_lines = _intents_equal(chain, model)
    orders, requests, fills, working, order_lines = _compare_orders(run)
    assert run.twins is not None
    print(f"\nlatency model: {before_equal} of {before_paired} intents equal\n" + "\n".join(before_lines))
    print(f"\nlatency recorded: {equal} of {len(paired)} decisions equal ({counts})\n{report}")
    print(
        f"\norders sent at a live twin's arrival: {run.twins.paired} (unpaired {run.twins.unpaired}); "
        f"of {orders} reported: requests equal {requests}, outcomes (status, filled, fills) equal {fills}, "
        f"working at the backtest's end as live so far {working} (~)\n" + "\n".join(order_lines)
    )
    print("the live inspector's other risk events:\n" + "\n".join(chain.verdicts.get("", [])))
    print("the backtest's orders:\n" + "\n".join(_order_line(e) for e in run.orders))
    print("the live venue's executions (the recorder's):\n" + "\n".join(await _executions(chain.database)))
    print("\n".join(line for line in chain.advisor_log.splitlines() if "WARNING" in line))
    assert len(paired) >= 3, f"the demo strategies signal within {LIVE_S} s: {len(paired)}"
    assert set(live) <= set(replayed), "every live decision up to the cutoff has its backtest twin"
    assert equal == len(paired), report
    assert requests == fills + working == orders, "\n".join(order_lines)
