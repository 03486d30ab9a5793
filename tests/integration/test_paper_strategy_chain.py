"""A strategy on paper Binance, the whole chain (issue 41: "a strategy runs on paper Binance from
recorded sessions through the whole chain with its own exits carried out"; docs/paper.md, "A
strategy on paper, end to end"). Every part is a real process: a gateway, `trademesh venue
binance --paper --replay` on the recorded Binance session (fixtures/exchange-captures/BINANCE.*),
ingest, the bridge, the detector running the test's own strategy, the advisor (the tests'
validation, ADVISOR_TEST_CONFIG), the inspector and the ledger, on Redis and PostgreSQL.

The strategy (STRATEGY) trades NKN/USDT: it signals a long once the book's mid has been above
0.30 for 2 s (the recorded market sits near 0.3527 the whole session; the emitter fires on the
rise, once) and closes by its own position request a second after it hears from the inspector
that it holds a position, and again each second while it still does.

Choices the recorded session asks for: it is 30 s with a single NKN trade, so the strategy reads
the book, not bars of trades, and it is replayed at half its pace (REPLAY_SPEED: the services
start while it plays). The advisor's bars (its ATR stop and target) cannot come from the session
(no candle history): the test writes 1s bars of the minute before it into the recorder's table
(BARS: the recorded price, a range of 0.002, so the stop and target sit about 0.003 and 0.005
from the entry, where the recorded market never goes). The advisor's staleness is off
(ADVISOR_CONFIG): the session's events keep their 2021 times. The entry is sized above what the
recorded book shows at its best ask (MAX_NOTIONAL_SHARE): the advisor's limit at the best ask
fills in part and its rest works on until the close cancels it.

The paper venue charges fees as Binance does (docs/ledger.md, "Fees"): a buy's fee comes off the
NKN it brings in, so the entry holds its fills less their fees, off the lot grid.

What must hold: the entry's intent is the advisor's on the strategy's signal (bus) and is the
inspector's entry (its audit); the close cancelled the entry's rest (a NOTICE); the exits are the
strategy's closes (the intent ids its requests make), reduce-only, in whole lots, taking off all
the entry left held but the dust under a lot (docs/inspector.md, "Dust"): what it bought less the
fees paid in NKN; the protective pair was placed and cancelled at the venue, never filled; the
venue holds no order and only that dust of NKN, which the inspector counts as its position and
no strategy's; every fill is at a price the recorded book showed (asks for the buy, bids for the
sells); and the ledger's books equal the venue's balances.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import asyncpg
import grpc
import pytest

from tests.integration.gateway_support import Gateway, Processes, at_once
from tests.integration.mesh import ADVISOR_TEST_CONFIG, bus_signals, redis_db, stream_entries, venue_link
from tests.integration.paper_support import AUTH, Market, ledger_cash, ledger_position, venue_totals
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.replay import capture_files
from tests.integration.support import CALL_TIMEOUT_S, Stubs, Venue, until
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.inspector.requests import request_intent_id
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.names import INTENTS, POSITION_REQUESTS, executions_stream
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.core.recorder.migrate import migrate
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(180)]
__all__ = ["database_url", "redis_url"]  # fixtures

D = Decimal
VENUE = "binance"
SYMBOL = "NKN/USDT"
STRATEGY_ID = "paper_exit"
WAIT_S = 45.0
S = 1_000_000_000
# The 30 s session at half its pace: the services start while it plays (ingest's subscription
# starts it), and on a loaded machine that took 25 s; the test ends once the close is done.
REPLAY_SPEED = "0.5"
# Of 100,000 USDT (the paper account's), 5 % a trade: about 14,000 NKN, more than the recorded
# book ever shows at its best ask (6,611 NKN at most, its bookTicker says), under the
# inspector's 10,000 USDT an order. The advisor's entry is a limit at the best ask (its default
# `limit_cross`, GTC): it fills in part at once and its rest works on.
MAX_NOTIONAL_SHARE = "0.05"
STRATEGY = f"""
id = "{STRATEGY_ID}"
description = "Long NKN while the mid is above 0.30; closes by its own request once it holds it"
venues = ["{VENUE}"]
symbols = ["{SYMBOL}"]
threshold = 1.0
cables = [
    "book.mid -> above.a",
    "above.out -> settled.a",
    "settled.out -> score.rule_1",
    "score.signal -> entry.signal",
    "position.open -> held.a",
    "held.out -> again.a",
    "again.out -> exit.trigger",
]

[[modules]]
id = "book"
type = "book"

[[modules]]
id = "above"
type = "compare"
params = {{ op = ">", value = 0.30 }}

# Two seconds of it: the venue's book whole (its REST snapshot in) and the advisor following.
[[modules]]
id = "settled"
type = "hold_for"
params = {{ duration_s = 2.0 }}

[[modules]]
id = "score"
type = "weighted_score"
params = {{ direction = "long", name_1 = "mid_above_0_30" }}

[[modules]]
id = "entry"
type = "signal"

[[modules]]
id = "position"
type = "strategy_position"

# Held a second: the inspector's protective pair is placed by then.
[[modules]]
id = "held"
type = "hold_for"
params = {{ duration_s = 1.0 }}

# ... and again each second it still holds some (an entry's fill that overtook the close).
[[modules]]
id = "again"
type = "cooldown"
params = {{ duration_s = 1.0 }}

[[modules]]
id = "exit"
type = "position"
params = {{ action = "close" }}
"""
# The tests' advisor, but for the staleness of its quality gate: a recorded session's events keep
# their recorded times (2021), which it measures against the wall clock (years: "stale").
ADVISOR_CONFIG = ADVISOR_TEST_CONFIG + "[quality]\nstaleness_penalty = 0.0\n"
# The advisor's 1s bars before the session: around the recorded price, 0.002 from low to high.
BARS = 60
BAR_CLOSE = D("0.3527")
BAR_HALF_RANGE = D("0.001")


async def _write_bars(database: str, end_ns: int) -> None:
    """The recorder's tables, and BARS closed 1s bars of the symbol up to `end_ns`."""
    start = (end_ns // S - BARS) * S
    rows = [
        (VENUE, SYMBOL, "1s", start + i * S, str(BAR_CLOSE), str(BAR_CLOSE + BAR_HALF_RANGE),
         str(BAR_CLOSE - BAR_HALF_RANGE), str(BAR_CLOSE), "1000", None, 10, None, False, end_ns)
        for i in range(BARS)
    ]  # fmt: skip
    connection = await asyncpg.connect(database)
    try:
        await migrate(connection)
        await connection.copy_records_to_table(
            "bars", records=rows, columns=[
                "venue", "symbol", "timeframe", "open_time_ns", "open", "high", "low", "close", "volume",
                "quote_volume", "trade_count", "vwap", "repaired", "ts_publish_ns",
            ],
        )  # fmt: skip
    finally:
        await connection.close()


async def _intents(bus: str) -> list[am.Intent]:
    return [i for fields in await stream_entries(bus, INTENTS) for i in decode(fields).intents.intents]


async def _requests(bus: str) -> list[sig.PositionRequest]:
    entries = await stream_entries(bus, POSITION_REQUESTS)
    return [r for fields in entries for r in decode(fields).position_requests.requests]


async def _fills(bus: str) -> dict[str, list[tf.Fill]]:
    """The venue's fills as ingest wrote them to the bus, by client order id."""
    fills: dict[str, list[tf.Fill]] = {}
    for fields in await stream_entries(bus, executions_stream(VENUE)):
        for execution in decode(fields).executions.executions:
            if execution.HasField("fill"):
                fills.setdefault(execution.order.client_order_id, []).append(execution.fill)
    return fills


async def _audit(inspector: ServiceProcess) -> dict[str, list[rk.OrderAudit]]:
    """The inspector's orders of the strategy, by role, oldest first."""
    async with grpc.aio.insecure_channel(inspector.address) as channel:
        answer = await rk_grpc.InspectorStub(channel).GetAudit(
            rk.GetAuditRequest(strategy_id=STRATEGY_ID), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    by_role: dict[str, list[rk.OrderAudit]] = {}
    for order in sorted(answer.orders, key=lambda o: o.placed_ns):
        by_role.setdefault(order.role, []).append(order)
    return by_role


async def _events(inspector: ServiceProcess, policy: str) -> list[rk.RiskEvent]:
    async with grpc.aio.insecure_channel(inspector.address) as channel:
        answer = await rk_grpc.InspectorStub(channel).ListRiskEvents(
            rk.ListRiskEventsRequest(strategy_id=STRATEGY_ID, policy=policy, page_size=100),
            metadata=AUTH,
            timeout=CALL_TIMEOUT_S,
        )
    return list(answer.events)


async def _lot(stubs: Stubs) -> Decimal:
    """The symbol's lot size at the venue (its recorded exchange info)."""
    answer = await stubs.md.ListInstruments(
        md.ListInstrumentsRequest(symbols=[SYMBOL]), timeout=CALL_TIMEOUT_S
    )
    (instrument,) = answer.instruments
    return D(instrument.lot_size)


async def _positions(inspector: ServiceProcess) -> list[rk.PositionView]:
    async with grpc.aio.insecure_channel(inspector.address) as channel:
        answer = await rk_grpc.InspectorStub(channel).ListPositions(
            rk.ListPositionsRequest(venue=VENUE), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    return [p for p in answer.positions if p.symbol == SYMBOL and not p.legacy]


async def _closed(
    inspector: ServiceProcess, stubs: Stubs, lot: Decimal, seen: list[object]
) -> dict[str, list[rk.OrderAudit]] | None:
    """The strategy's exits done (filled, their fills heard), less than a lot of NKN held at the
    venue (the dust a fee paid in NKN leaves) and no order of the symbol open there: its orders
    by role. What it saw last goes into `seen` (for a failure's message)."""
    by_role = await _audit(inspector)
    held = (await venue_totals(stubs)).get("NKN", D(0))
    request = tf.ListOpenOrdersRequest(symbol=SYMBOL)
    open_orders = (await stubs.tf.ListOpenOrders(request, timeout=CALL_TIMEOUT_S)).orders
    seen[:] = [
        {
            r: [(tf.OrderStatus.Name(o.status), o.filled_size, o.size) for o in os]
            for r, os in by_role.items()
        },
        f"NKN held {held}",
        [(o.client_order_id, tf.OrderStatus.Name(o.status), o.filled_size, o.size) for o in open_orders],
    ]
    exits = by_role.get("exit", [])
    # FILLED is the venue's answer; the audit's filled size is the fills heard, which come after
    # it on the execution stream (a whole run read an exit FILLED with 0 of it heard).
    done = exits and all(o.status == tf.ORDER_STATUS_FILLED and D(o.filled_size) == D(o.size) for o in exits)
    return by_role if done and held < lot and not open_orders else None


async def _check_the_chain(
    bus: str, stubs: Stubs, market: Market, inspector: ServiceProcess, ledger: ServiceProcess
) -> None:
    seen: list[object] = []
    lot = await _lot(stubs)
    try:
        by_role = await until(
            lambda: _closed(inspector, stubs, lot, seen), WAIT_S, 0.2, "the close carried out"
        )
    except pytest.fail.Exception:
        pytest.fail(f"the strategy's close not carried out within {WAIT_S} s: {seen}")

    # The entry is the advisor's intent on the strategy's one signal.
    (signal,) = [s for s in await bus_signals(bus) if s.strategy_id == STRATEGY_ID]
    assert signal.venue == VENUE and signal.symbol == SYMBOL
    (intent,) = [i for i in await _intents(bus) if i.signal_id == signal.signal_id]
    assert intent.strategy_id == STRATEGY_ID and not intent.reduce_only
    (entry,) = by_role["entry"]
    assert entry.intent_id == intent.intent_id and entry.side == common.SIDE_BUY
    assert 0 < D(entry.filled_size) < D(intent.size)  # in part: its rest was working
    # The close cancelled the entry's rest (a NOTICE says so): filling later, it would undo it.
    assert entry.status == tf.ORDER_STATUS_CANCELED
    (notice,) = await _events(inspector, "exit.working_entry")
    assert notice.action == rk.RISK_ACTION_NOTICE and notice.intent_id == intent.intent_id

    # The exits are the strategy's own closes (the intents its requests make), reduce-only, in
    # whole lots: one, or a second when the entry's rest filled in part before the first close's
    # cancel reached the venue (the strategy closes again while it holds a lot or more).
    requests = {r.request_id: r for r in await _requests(bus) if r.strategy_id == STRATEGY_ID}
    assert {r.action for r in requests.values()} == {sig.POSITION_ACTION_CLOSE}
    exits = by_role["exit"]
    assert {o.intent_id for o in exits} <= {request_intent_id(r, "exit") for r in requests}
    assert all(o.side == common.SIDE_SELL and D(o.size) % lot == 0 for o in exits)
    for exit_ in exits:
        placed = await stubs.tf.GetOrder(
            tf.GetOrderRequest(client_order_id=exit_.client_order_id), timeout=CALL_TIMEOUT_S
        )
        assert placed.order.reduce_only

    # The protective pair was placed at the paper venue and cancelled there, never filled.
    pair = by_role["stop_loss"] + by_role["take_profit"]
    assert len(by_role["stop_loss"]) == len(by_role["take_profit"]) >= 1
    for order in pair:
        at_venue = await stubs.tf.GetOrder(
            tf.GetOrderRequest(client_order_id=order.client_order_id), timeout=CALL_TIMEOUT_S
        )
        assert at_venue.order.reduce_only and at_venue.order.status == tf.ORDER_STATUS_CANCELED, order
        assert D(at_venue.order.filled_size) == 0, order

    # Every fill at a price the recorded book showed: the buy's among its asks, the sells' among
    # its bids (this subscriber may hear of the book after the fill: it waits for it).
    traded = [entry, *exits]
    fills = await until(lambda: _all_filled(bus, traded), WAIT_S, 0.2, "the fills on the bus")

    async def shown() -> bool | None:
        bought = {D(f.price) for f in fills[entry.client_order_id]}
        sold = {D(f.price) for o in exits for f in fills[o.client_order_id]}
        return True if bought <= market.asks_shown and sold <= market.bids_shown else None

    await until(shown, CALL_TIMEOUT_S, what=f"the fills {fills} among the recorded book's prices")

    # Binance's rule: the entry's fees came off the NKN it bought. The exits sold all it left
    # held but the dust under a lot, which the venue holds and the inspector counts, as no
    # strategy's (its close would be refused: nothing a venue takes sells it).
    bought = fills[entry.client_order_id]
    assert {f.fee_asset for f in bought} == {"NKN"} and all(D(f.fee) > 0 for f in bought)
    held = D(entry.filled_size) - sum((D(f.fee) for f in bought), D(0))
    dust = held - sum((D(o.filled_size) for o in exits), D(0))
    assert 0 <= dust < lot
    assert (await venue_totals(stubs)).get("NKN", D(0)) == dust
    positions = await _positions(inspector)
    assert [(D(p.size), list(p.strategies)) for p in positions] == ([(dust, [])] if dust else [])

    # The ledger's books equal the venue's balances, the round trip's fees and PnL included.
    async def agree() -> dict[str, Decimal] | None:
        books, totals = await ledger_cash(ledger, VENUE), await venue_totals(stubs)
        moved = {asset: totals.get(asset, D(0)) for asset in ("NKN", "USDT")}
        return moved if all(books.get(asset, D(0)) == moved[asset] for asset in moved) else None

    agreed = await until(agree, WAIT_S, 0.2, "the ledger agreeing with the venue")
    assert agreed["NKN"] == dust and agreed["USDT"] != D(100_000)  # the round trip paid fees
    # Its holding too: the fees paid in NKN came out of the strategy's spot quantity.
    assert (await ledger_position(ledger, VENUE, SYMBOL))[0] == dust


async def _all_filled(bus: str, orders: list[rk.OrderAudit]) -> dict[str, list[tf.Fill]] | None:
    """Every fill of `orders` on the bus: their client order ids' fills, once complete."""
    fills = await _fills(bus)
    done = all(
        sum((D(f.size) for f in fills.get(o.client_order_id, [])), D(0)) == D(o.filled_size) for o in orders
    )
    return fills if done else None


def _mesh(
    processes: Processes, gateway: Gateway, address: str, bus: str, database: str, directory: Path
) -> list[Callable[[], ServiceProcess]]:
    """The starts of the chain's services on the paper venue at `address`, but the detector's:
    ingest, the bridge, the inspector, the ledger, the advisor (on 1s bars, as the tests' meshes)."""
    link = ("--venue", f"{VENUE}={address}")
    advisor_config = directory / "advisor.toml"
    advisor_config.write_text(ADVISOR_CONFIG)
    advisor = (
        *link, "--database-url", database, "--config", str(advisor_config), "--timeframe", "1s",
        "--max-notional-share", MAX_NOTIONAL_SHARE, "--model-dir", str(directory / "models"),
    )  # fmt: skip

    def start(name: str, *args: str) -> Callable[[], ServiceProcess]:
        return lambda: processes.mesh_service(gateway, name, *args, redis_url=bus)

    return [
        start("ingest", *venue_link("ingest", address, VENUE)),
        start("bridge"),
        start("inspector", *link, "--deadman-ttl-ms", "0"),
        start("ledger", *link, "--database-url", database),
        start("advisor", *advisor),
    ]


async def test_a_strategy_on_paper_binance_enters_through_the_chain_and_closes_by_its_own_request(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    async with new_database(database_url, "paperchain") as database, redis_db(redis_url) as bus:
        await _write_bars(database, time.time_ns())
        processes = Processes(tmp_path, database)
        try:
            gateway = processes.gateway()
            process = processes.paper(
                gateway, VENUE, capture_files("BINANCE"), "--replay-speed", REPLAY_SPEED
            )  # fmt: skip
            venue = Venue(process, processes.log_path(process))
            stubs = venue.stubs()
            market = Market(stubs, SYMBOL)  # its subscription starts the replay
            try:
                starts = _mesh(processes, gateway, process.address, bus, database, tmp_path)
                _, _, inspector, ledger, _ = await at_once(*starts)
                strategy = tmp_path / "strategy.toml"
                strategy.write_text(textwrap.dedent(STRATEGY))
                processes.mesh_service(
                    gateway, "detector", "--venue", f"{VENUE}={process.address}", "--database-url", database,
                    "--no-examples", "--strategy", str(strategy), "--feedback-every-ms", "200", redis_url=bus,
                )  # fmt: skip
                await _check_the_chain(bus, stubs, market, inspector, ledger)
            finally:
                await market.close()
                await venue.close_channels()
        finally:
            await processes.stop_all()
