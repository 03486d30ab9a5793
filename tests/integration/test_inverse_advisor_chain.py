"""Deribit's BTC-PERPETUAL (1 USD contracts, settled in BTC) from a signal to the books, every
part a real process: the recorded session (fixtures/exchange-captures/other-recorders/DERIBIT_WS)
replayed by `trademesh venue deribit --replay` into ingest, the bar service and the recorder
(its 1s bars), the bridge (its book), the advisor (no LLM: the deterministic synthesis), the
inspector and the ledger, on a Redis and PostgreSQL of the test's own.

The signals are published on the bus as the detector would publish them (`signals`): a
detector needs 30-odd 1s bars of the market to warm its strategies, and the replay's 20 seconds
make 14. The advisor decides a long one on the replay's world (`--history-ms 0`: the latest, the
replay being over): the book's ask to enter at, a stop `stop_atr` ATRs of the replay's bars
below, and the size in contracts of the venue's contract value (1 USD) from its risk budget in
the coin: the equity the stand-in's account holds in BTC, of which `risk_per_trade` is lost at
the stop (trademesh/core/advisor/engine/sizing.py). The test works the count out from the rule's inputs
(the account's BTC, the intent's entry and stop, the synthesis's multiplier, the config's
shares, the instrument's face and lot). The inspector values the order by its face value in
USD (the count x 1 USD) in its ALLOW and its audit, places it, the stand-in fills it at the ask
and the ledger books it coin-margined: the position in USD, its cost, fee and margin in BTC
(docs/ledger-derivatives.md, "Inverse perpetuals", has the run's figures). A flat signal then closes the
whole position (the venue's, in contracts) at the bid, and the ledger realises the coin the face
lost between the two prices.

The advisor's config is the mesh tests' (tests/integration/mesh.py ADVISOR_TEST_CONFIG) with
what a 20-second replay needs: no staleness penalty (the replay is over: its last event is as
old as the test's run), an ATR of 10 bars (14 are closed), a stop and target far enough in ATRs
of 1s bars whose range is a tick to clear the venue's ticks, and a risk budget small enough
that the risk rule, not the notional cap, sizes the order within the inspector's 10,000 USD
order limit."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import ROUND_FLOOR, Decimal
from functools import partial
from pathlib import Path
from typing import IO, Any

import asyncpg
import grpc
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import ADVISOR_TEST_CONFIG, redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.replay import start_replay_venue
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, TEST_TRADE_TOKEN, Venue, stop_venue, until
from tests.integration.test_inverse_chain import (
    ASK,
    AUTH,
    BID,
    EXCHANGES,
    POLICIES,
    SYMBOL,
    TAKER,
    _exists,
    _fills,
    _rows,
    _transfers,
)
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.advisor.v1 import service_pb2 as av
from trademesh.advisor.v1 import service_pb2_grpc as av_grpc
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.inverse import COIN_STEP, coin_pnl, coin_value
from trademesh.core.platform.bus.codec import FIELD, decode
from trademesh.core.platform.bus.names import DECISIONS, SIGNALS
from trademesh.core.platform.config.env import DATABASE_URL, REDIS_URL, TOKEN, TRADE_TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc
from trademesh.signal.v1 import signal_pb2 as sig
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.replay.server import DRAINED

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a replay venue and eight services
__all__ = ["database_url", "redis_url"]  # the fixtures, for pytest

D = Decimal
WAIT_S = 60.0
VENUE = "deribit"
EXECUTIONS = f"exec.{{{VENUE}}}"
BARS_CLOSED = 14  # the replay's 1s bars of BTC-PERPETUAL (seconds with a trade), all closed
RISK_PER_TRADE = D("0.000001")
MAX_NOTIONAL_SHARE = D("0.05")
# The mesh tests' pipeline (fee_rate 0: no fees in the stop's loss), and what a 20-second replay
# needs (the module docstring's).
_LEVELS = 'atr_bars = 10\nstop_atr = "20"\ntarget_atr = "40"\n'
ADVISOR_CONFIG = ADVISOR_TEST_CONFIG.replace("[validation]\n", "[validation]\n" + _LEVELS, 1) + (
    f'[quality]\nstaleness_penalty = 0.0\n[sizing]\nrisk_per_trade = "{RISK_PER_TRADE}"\n'
    f'max_notional_share = "{MAX_NOTIONAL_SHARE}"\n'
)


@dataclass
class Mesh:
    directory: Path
    venue: Venue
    bus: str
    recorder_db: str
    ledger_db: str
    processes: dict[str, ServiceProcess]
    logs: list[IO[str]]

    def channel(self, name: str) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.processes[name].address)

    def start(
        self, name: str, *args: str, venue: bool = True, env: dict[str, str] | None = None
    ) -> ServiceProcess:
        log = (self.directory / f"{name}.log").open("w")
        self.logs.append(log)
        link = ("--venue", f"{VENUE}={self.venue.address}") if venue else ()
        command = [name, "--port", "0", "--metrics-port", "-1", *link, *args]
        started = start_service(
            command, env={TOKEN: TEST_TOKEN, REDIS_URL: self.bus, **(env or {})}, stderr=log, timeout_s=60
        )
        self.processes[name] = started
        return started

    async def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            await asyncio.to_thread(process.terminate)
        for log in self.logs:
            log.close()


async def _at_once(*starts: Callable[[], ServiceProcess]) -> list[ServiceProcess]:
    """Services started together (each start waits for its process to serve)."""
    return list(await asyncio.gather(*(asyncio.to_thread(start) for start in starts)))


async def _drained(path: Path) -> bool | None:
    return True if DRAINED in await asyncio.to_thread(path.read_text) else None


async def _bars(mesh: Mesh) -> int | None:
    """The replay's 1s bars the recorder holds, once it holds them all."""
    connection = await asyncpg.connect(mesh.recorder_db)
    try:
        sql = "SELECT count(*) FROM bars WHERE venue = $1 AND symbol = $2 AND timeframe = '1s'"
        count = int(await connection.fetchval(sql, VENUE, SYMBOL))
    except asyncpg.UndefinedTableError:
        return None
    finally:
        await connection.close()
    return count if count >= BARS_CLOSED else None


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, database_url: str
) -> AsyncIterator[Mesh]:
    """The mesh once the replay has played into the bus, its bars recorded; the advisor, the
    inspector and the ledger serving on it."""
    directory = tmp_path_factory.mktemp("inverse-advisor")
    exchange = EXCHANGES[VENUE]()
    venue, venue_log = start_replay_venue(
        directory, VENUE, exchange.files, env=exchange.env, config=f'symbols = ["{SYMBOL}"]\n'
    )
    async with (
        redis_db(redis_url) as bus_url,
        new_database(database_url, "recorder") as recorder_db,
        new_database(database_url, "ledger") as ledger_db,
    ):
        parts = Mesh(directory, venue, bus_url, recorder_db, ledger_db, {}, [])
        try:
            # Every reader of the market data is there before ingest, whose subscription plays
            # the replay (once, to its first subscriber: the inspector, which subscribes to the
            # venue's book too, comes after it).
            _, _, bridge = await _at_once(
                partial(parts.start, "recorder", venue=False, env={DATABASE_URL: recorder_db}),
                partial(parts.start, "bars"),
                partial(parts.start, "bridge", venue=False),
            )
            parts.start("ingest")
            await until(lambda: _drained(venue.log_path), WAIT_S, what="the replay played")
            await until(lambda: _bars(parts), WAIT_S, what=f"{BARS_CLOSED} recorded 1s bars")
            policies, config = directory / "policies.toml", directory / "advisor.toml"
            policies.write_text(POLICIES)
            config.write_text(ADVISOR_CONFIG)
            await _at_once(
                partial(
                    parts.start, "inspector", "--executions", "bus", "--emulate-stops", "--policies",
                    str(policies), env={TRADE_TOKEN: TEST_TRADE_TOKEN},
                ),
                partial(
                    parts.start, "advisor", "--bridge", bridge.address, "--config", str(config),
                    "--timeframe", "1s", "--history-ms", "0", "--model-dir", str(directory / "models"),
                    env={DATABASE_URL: recorder_db},
                ),
            )  # fmt: skip
            # The inspector's group on exec.{deribit} exists before the first order: the ledger's too.
            await until(lambda: _exists(bus_url, exchange.executions), WAIT_S, what="the executions stream")
            parts.start("ledger", env={DATABASE_URL: ledger_db})
            yield parts
        finally:
            await parts.stop()
            await stop_venue(venue, venue_log)


def _signal(signal_id: str, direction: sig.Direction.ValueType) -> sig.Signal:
    """A signal of trend on BTC-PERPETUAL, made now."""
    now = time.time_ns()
    return sig.Signal(
        signal_id=signal_id, venue=VENUE, symbol=SYMBOL, direction=direction, conviction="0.8", score="3",
        threshold="3", strategy_id="trend", patch_version=1, ts_signal_ns=now, ts_event_ns=now,
    )  # fmt: skip


async def _publish_signal(bus_url: str, signal_id: str, direction: sig.Direction.ValueType) -> None:
    """A signal on the bus's `signals`, as the detector publishes one."""
    made = _signal(signal_id, direction)
    envelope = bus.Envelope(source="detector", ts_publish_ns=made.ts_signal_ns)
    envelope.signals.signals.append(made)
    client: Any = aioredis.from_url(bus_url)
    try:
        await client.xadd(SIGNALS, {FIELD: envelope.SerializeToString()})
    finally:
        await client.aclose()


async def _decision(bus_url: str, signal_id: str) -> am.Decision | None:
    client: Any = aioredis.from_url(bus_url)
    try:
        entries = await client.xrange(DECISIONS)
    finally:
        await client.aclose()
    found = [d for _, f in entries for d in decode(f).decisions.decisions if d.signal_id == signal_id]
    return found[0] if found else None


def risk_rule(equity: D, entry: D, stop: D, multiplier: D, face: D) -> tuple[D, D]:
    """trademesh/core/advisor/engine/sizing.py's rule for an inverse contract of face value `face` (USD),
    no fees in the stop's loss (fee_rate 0): the size by risk and the cap, in contracts before
    the lot rounding. A contract loses face x |entry - stop| / (entry x stop) BTC at the stop and
    is worth face / entry BTC at the entry; each is one division here (exact for these inputs)."""
    by_risk = equity * RISK_PER_TRADE * entry * stop * multiplier / (face * abs(entry - stop))
    cap = equity * MAX_NOTIONAL_SHARE * entry / face
    return by_risk, cap


async def _audit(inspector: rk_grpc.InspectorAsyncStub, intent_id: str) -> rk.GetAuditResponse | None:
    answer: rk.GetAuditResponse = await inspector.GetAudit(
        rk.GetAuditRequest(venue=VENUE), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    filled = [o for o in answer.orders if o.intent_id == intent_id and o.fills]
    return answer if filled else None


@dataclass(frozen=True)
class Facts:
    """The rule's inputs the venue gives: the contract's face value and lot, the account's BTC."""

    face: D  # USD a contract
    lot: D
    equity: D  # BTC


async def _facts(mesh: Mesh) -> Facts:
    stubs = mesh.venue.stubs()
    listed = await stubs.md.ListInstruments(
        md.ListInstrumentsRequest(symbols=[SYMBOL]), timeout=CALL_TIMEOUT_S
    )
    (instrument,) = listed.instruments
    face = D(instrument.contract_value)
    assert (instrument.contract_size, face, instrument.contract_value_asset) == ("0", D(1), "USD")
    balances = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    equity = sum((D(b.total) for b in balances.balances if b.asset == "BTC"), D(0))
    return Facts(face, D(instrument.lot_size), equity)


async def _sized(mesh: Mesh, facts: Facts) -> tuple[am.Intent, D]:
    """A long signal decided: its intent, and the contracts the rule gives."""
    await _publish_signal(mesh.bus, "inverse-signal-1", sig.DIRECTION_LONG)
    decision = await until(lambda: _decision(mesh.bus, "inverse-signal-1"), WAIT_S, what="the decision")
    assert decision.outcome == am.OUTCOME_INTENT, [(s.stage, s.reasons) for s in decision.stages]
    # Stage 2 values the book's best levels in the instrument's units: contracts of 1 USD (the
    # replay's last book holds a few hundred at each), not size x price (tens of millions).
    outputs = {s.stage: json.loads(s.output_json) for s in decision.stages}
    top = outputs[am.STAGE_CONTEXT]["book"]
    thinnest = min(D(top["bid_size"]), D(top["ask_size"])) * facts.face
    assert (D(top["bid"]), D(top["ask"])) == (BID, ASK) and thinnest < 1000
    quality = outputs[am.STAGE_MARKET_QUALITY]
    thin = [p["reason"] for p in quality["penalties"] if p["check"] == "thin"]
    assert thin == [f"thin book: best level worth {thinnest} < 1000"], quality
    intent = decision.intent
    entry, stop = D(intent.entry_price), D(intent.stop_loss)
    assert (intent.side, entry) == (common.SIDE_BUY, ASK)  # limit_cross: the book's ask
    multiplier = D(decision.synthesis.size_multiplier)
    by_risk, cap = risk_rule(facts.equity, entry, stop, multiplier, facts.face)
    contracts = (min(by_risk, cap) / facts.lot).to_integral_value(ROUND_FLOOR) * facts.lot
    assert by_risk < cap, "the risk rule sizes it, not the cap"
    assert D(intent.size) == contracts
    # in BTC, the coin the equity is in
    assert D(intent.risk_amount) == facts.equity * RISK_PER_TRADE
    return intent, contracts


async def _placed(mesh: Mesh, intent: am.Intent, notional: D) -> tf.Fill:
    """The inspector's ALLOW and audit of the entry, valued at its face; its fill."""
    # The order's face, the count x 1 USD (91,250 x the count would break the 10,000 order
    # limit), and what that is worth in the coin at the entry.
    inspector = rk_grpc.InspectorStub(mesh.channel("inspector"))
    audit = await until(lambda: _audit(inspector, intent.intent_id), WAIT_S, what="the entry filled")
    (order,) = [o for o in audit.orders if o.intent_id == intent.intent_id and o.role == "entry"]
    events = await inspector.ListRiskEvents(
        rk.ListRiskEventsRequest(page_size=100), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    (allow,) = [
        e for e in events.events if e.intent_id == intent.intent_id and e.action == rk.RISK_ACTION_ALLOW
    ]
    values = {v.name: v.value for v in allow.values}
    assert (D(values["price"]), D(values["size"]), D(values["notional"])) == (ASK, D(intent.size), notional)
    coin = str(coin_value(notional, ASK))
    assert (values["notional_coin"], values["order"]) == (coin, order.client_order_id)
    # The stand-in fills it at the ask; its fee is in BTC, 0.05% of the face's worth to 1e-8.
    (bought,) = await until(
        lambda: _fills(mesh.bus, EXECUTIONS, order.client_order_id), WAIT_S, what="the fill"
    )
    fee = (notional / ASK * TAKER).quantize(D("1e-8"))
    assert (D(bought.price), D(bought.size), D(bought.fee), bought.fee_asset) == (
        ASK,
        D(intent.size),
        fee,
        "BTC",
    )
    # The audit: the face filled (USD), at the ask, no slippage, the fee in the coin.
    (venue_summary,) = [s for s in audit.summaries if s.scope == f"venue/{VENUE}"]
    filled = (D(order.filled_size), D(order.average_fill_price), D(order.slippage_bps), D(order.fees))
    assert filled == (D(intent.size), ASK, D(0), fee)
    assert D(venue_summary.filled_notional) == notional
    return bought


async def _booked(mesh: Mesh, bought: tf.Fill, notional: D) -> None:
    """The ledger books the entry coin-margined (docs/ledger-derivatives.md, "Inverse perpetuals"): the
    position in USD, its cost (what the face is worth at the ask), the margin (leverage 1) and
    the fee in BTC."""
    ledger = lg_grpc.LedgerStub(mesh.channel("ledger"))
    opened = await until(lambda: _transfers(ledger, bought.fill_id), WAIT_S, what="the fill booked")
    cost, fee = coin_value(notional, ASK), D(bought.fee)
    assert {
        ("USD", "perp_quantity[trend]", "position_control[]", notional),
        ("BTC", "position_cost[trend]", "position_control[]", cost),
        ("BTC", "cash_fees[]", "venue_cash[]", fee),
        ("BTC", "fees_paid[trend]", "fees_control[]", fee),
        ("BTC", "cash_margin[]", "venue_cash[]", cost),
    } <= _rows(opened)
    verified = await ledger.Verify(lg.VerifyRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    assert verified.ok, verified


async def _open_orders(mesh: Mesh) -> list[tuple[common.Side.ValueType, D, D, bool]]:
    """The venue's open orders: side, price, size, reduce-only."""
    answer = await mesh.venue.stubs().tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    return [(o.side, D(o.price), D(o.size), o.reduce_only) for o in answer.orders]


async def _closed(mesh: Mesh, contracts: D, bought: tf.Fill) -> None:
    """A flat signal of trend closes the position: the whole of it in contracts, as the venue
    holds it (not a base amount), reduce-only at the market; filled at the bid, the ledger
    realises what the face was worth in BTC at the entry less what it is worth at the exit."""
    # The advisor reads the venue's positions every second: a dry run (Decide, not published)
    # says once it holds this one.
    advisor = av_grpc.AdvisorStub(mesh.channel("advisor"))

    async def seen() -> bool | None:
        request = av.DecideRequest(signal=_signal("", sig.DIRECTION_FLAT))
        answer = await advisor.Decide(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)
        return True if answer.decision.outcome == am.OUTCOME_INTENT else None

    await until(seen, WAIT_S, what="the advisor holding the position")
    await _publish_signal(mesh.bus, "inverse-signal-2", sig.DIRECTION_FLAT)
    closing = await until(lambda: _decision(mesh.bus, "inverse-signal-2"), WAIT_S, what="the exit decided")
    assert closing.outcome == am.OUTCOME_INTENT, [(s.stage, s.reasons) for s in closing.stages]
    out = closing.intent
    wanted = (common.SIDE_SELL, contracts, True, tf.ORDER_TYPE_MARKET)
    assert (out.side, D(out.size), out.reduce_only, out.entry_type) == wanted
    inspector = rk_grpc.InspectorStub(mesh.channel("inspector"))
    exited = await until(lambda: _audit(inspector, out.intent_id), WAIT_S, what="the exit filled")
    (exit_order,) = [o for o in exited.orders if o.intent_id == out.intent_id]
    (sold,) = await until(
        lambda: _fills(mesh.bus, EXECUTIONS, exit_order.client_order_id), WAIT_S, what="the exit's fill"
    )
    assert (D(sold.price), D(sold.size), sold.fee_asset) == (BID, contracts, "BTC")
    ledger = lg_grpc.LedgerStub(mesh.channel("ledger"))
    closed = await until(lambda: _transfers(ledger, sold.fill_id), WAIT_S, what="the exit booked")
    # Each worth rounded to 1e-12 where it is made (docs/ledger.md): a loss, within a step of
    # face x (1/entry - 1/exit) rounded once.
    notional = D(bought.size)  # 1 USD contracts
    cost = coin_value(notional, ASK)
    realised = cost - coin_value(notional, BID)
    assert realised < 0 and abs(realised - coin_pnl(notional, ASK, BID)) <= COIN_STEP
    assert {
        ("USD", "position_control[]", "perp_quantity[trend]", notional),
        ("BTC", "position_control[]", "position_cost[trend]", cost),
        ("BTC", "realised_pnl[trend]", "realised_control[]", -realised),
        ("BTC", "market[]", "venue_cash[]", -realised),
    } <= _rows(closed)
    await until(lambda: _none_open(mesh), WAIT_S, what="the take-profit cancelled")  # flat
    pnl = await ledger.GetPnl(lg.GetPnlRequest(strategy_id="trend"), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    (line,) = [s for s in pnl.strategies if s.asset == "BTC"]
    assert (D(line.realised), D(line.fees), line.fills) == (realised, -(D(bought.fee) + D(sold.fee)), 2)
    verified = await ledger.Verify(lg.VerifyRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    assert verified.ok, verified


async def _none_open(mesh: Mesh) -> bool | None:
    return True if not await _open_orders(mesh) else None


async def test_a_signal_on_deribit_is_sized_in_contracts_checked_placed_booked_in_btc_and_closed(
    mesh: Mesh,
) -> None:
    facts = await _facts(mesh)
    intent, contracts = await _sized(mesh, facts)
    assert facts.face == 1  # so the face value of the position in USD is its contracts
    bought = await _placed(mesh, intent, contracts * facts.face)
    await _booked(mesh, bought, contracts * facts.face)

    # The position's protection, from the advisor's plan: its take-profit rests at the venue,
    # reduce-only, every contract (its stop is the inspector's to trigger: --emulate-stops).
    async def protected() -> bool | None:
        target = (common.SIDE_SELL, D(intent.take_profit), contracts, True)
        return True if target in await _open_orders(mesh) else None

    await until(protected, WAIT_S, what="the take-profit at the venue")
    await _closed(mesh, contracts, bought)
