"""An inverse perpetual through the whole chain, every part a real process: Deribit's
BTC-PERPETUAL (1 USD contracts, settled in BTC) replayed from a recorded session
(fixtures/exchange-captures/other-recorders/DERIBIT_WS) by `trademesh venue deribit --replay`,
and OKX's BTC-USD-SWAP (100 USD contracts, settled in BTC) from a session written from OKX's docs
(fixtures/exchange-captures/OKX_INVERSE.*) by `trademesh venue okx-swap --replay`, the real ccxt
client trading against each stand-in; ingest, the inspector and the ledger on a Redis and
PostgreSQL of the test's own.

An intent of 1,000 USD (1,000 Deribit contracts, 10 OKX ones) goes through the inspector,
which values it by its face value (1,000 USD, under the policies' 10,000 order limit that
size x price, 91 million on Deribit, would break) and places it; the stand-in fills it at the
book's best ask; the fill reaches the bus through
ingest, and the ledger books it: the position in USD, its cost, fee and margin in BTC. The exit
at the best bid realises exactly the coin the face was worth at entry less what it is worth at
exit, and the books verify. (Each stand-in fills a marketable order at once at the best opposite
price of the book at the replay's end, its fee 0.05% of the coin worth to 1e-8:
trademesh/venues/deribit/standin/order_store.py, trademesh/venues/okx/standin/order_store.py.)"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import IO

import grpc
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import redis_db
from tests.integration.other_sessions import session_files
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.replay import capture_files, collect, start_replay_venue
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, TEST_TRADE_TOKEN, Venue, stop_venue, until
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.inverse import coin_pnl, coin_value
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.config.env import DATABASE_URL, REDIS_URL, TOKEN, TRADE_TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a replay venue and four services
__all__ = ["database_url", "redis_url"]  # the fixtures, for pytest

D = Decimal
WAIT_S = 60.0
SYMBOL = "BTC/USD:BTC"
AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
ENV = {"TRADEMESH_DERIBIT_API_KEY": "replay-key", "TRADEMESH_DERIBIT_API_SECRET": "replay-secret-7d2a"}
OKX_ENV = {
    "TRADEMESH_OKX_SWAP_API_KEY": "replay-key",
    "TRADEMESH_OKX_SWAP_API_SECRET": "replay-secret",
    "TRADEMESH_OKX_SWAP_PASSPHRASE": "replay-passphrase",
}
# The Deribit session's last book (its frames, read by hand), where the stand-in fills marketable orders.
BID, ASK = D("91249.5"), D("91250")
TAKER = D("0.0005")  # the stand-ins' (Deribit's, OKX's) taker fee, of the coin value, to 1e-8


@dataclass(frozen=True)
class Exchange:
    """A venue with an inverse perpetual, replayed: its session and its contract's face value."""

    name: str
    files: tuple[Path, ...]
    env: dict[str, str]
    face: D  # USD a contract

    @property
    def executions(self) -> str:
        return f"exec.{{{self.name}}}"


EXCHANGES = {
    "deribit": lambda: Exchange("deribit", tuple(session_files("DERIBIT_WS")), ENV, D(1)),
    "okx-swap": lambda: Exchange("okx-swap", tuple(capture_files("OKX_INVERSE")), OKX_ENV, D(100)),
}
# The shipped policies but the price band (the replay is over: no mid to check a price against).
POLICIES = """
[position]
max_notional = "20000"
[exposure]
max_gross = "60000"
max_net = "40000"
[orders]
max_notional = "10000"
max_open = 50
"""


@dataclass
class Chain:
    directory: Path
    exchange: Exchange
    venue: Venue
    bus: str
    database: str
    processes: dict[str, ServiceProcess]
    logs: list[IO[str]]

    def channel(self, name: str) -> grpc.aio.Channel:
        return grpc.aio.insecure_channel(self.processes[name].address)

    def start(self, name: str, *args: str, env: dict[str, str]) -> None:
        log = (self.directory / f"{name}.log").open("w")
        self.logs.append(log)
        venue = f"{self.exchange.name}={self.venue.address}"
        command = [name, "--port", "0", "--metrics-port", "-1", "--venue", venue, *args]
        self.processes[name] = start_service(command, env={TOKEN: TEST_TOKEN, **env}, stderr=log)


@contextlib.asynccontextmanager
async def chain(
    directory: Path, redis_url: str, database_url: str, exchange: Exchange
) -> AsyncIterator[tuple[Chain, D, D]]:
    """The chain, and the best bid and ask the replay's book stands at."""
    venue, venue_log = start_replay_venue(
        directory, exchange.name, exchange.files, env=exchange.env, config=f'symbols = ["{SYMBOL}"]\n'
    )
    async with redis_db(redis_url) as bus, new_database(database_url, "ledger") as database:
        parts = Chain(directory, exchange, venue, bus, database, {}, [venue_log])
        try:
            # The replay plays once, to its first subscriber: played whole, its book stands at
            # the session's end for the orders to come.
            played = await collect(venue.stubs(), [SYMBOL], [md.CHANNEL_BOOK], played=venue.log_path)
            bids, asks = played.book(SYMBOL)
            bid, ask = max(bids), min(asks)
            if exchange.name == "deribit":
                assert (bid, ask) == (BID, ASK)
            policies = directory / "policies.toml"
            policies.write_text(POLICIES)
            parts.start("ingest", env={REDIS_URL: bus})
            parts.start(
                "inspector", "--executions", "bus", "--emulate-stops", "--policies", str(policies),
                env={REDIS_URL: bus, TRADE_TOKEN: TEST_TRADE_TOKEN},
            )  # fmt: skip
            # The inspector's group on exec.{deribit} exists before the first order: the ledger's too.
            await until(lambda: _exists(bus, exchange.executions), WAIT_S, what="the executions stream")
            parts.start("ledger", env={REDIS_URL: bus, DATABASE_URL: database})
            yield parts, bid, ask
        finally:
            for process in reversed(list(parts.processes.values())):
                await asyncio.to_thread(process.terminate)
            for log in parts.logs[1:]:
                log.close()
            await stop_venue(venue, venue_log)


async def _exists(bus: str, key: str) -> bool | None:
    client = aioredis.from_url(bus)
    try:
        return True if await client.exists(key) else None
    finally:
        await client.aclose()


async def _fills(bus: str, stream: str, client_order_id: str) -> list[tf.Fill] | None:
    client = aioredis.from_url(bus)
    try:
        entries: list[tuple[bytes, dict[bytes, bytes]]] = await client.xrange(stream)  # type: ignore[assignment]
    finally:
        await client.aclose()
    found = [
        execution.fill
        for _, fields in entries
        for execution in decode(fields).executions.executions
        if execution.HasField("fill") and execution.fill.client_order_id == client_order_id
    ]
    return found or None


def intent(
    venue: str, side: common.Side.ValueType, size: str, price: D, intent_id: str, **fields: object
) -> am.Intent:
    message = am.Intent(
        intent_id=intent_id, venue=venue, symbol=SYMBOL, side=side, size=size, strategy_id="trend",
        entry_type=tf.ORDER_TYPE_LIMIT, entry_price=str(price), time_in_force=tf.TIME_IN_FORCE_GTC,
    )  # fmt: skip
    for name, value in fields.items():
        setattr(message, name, value)
    return message


async def _transfers(ledger: lg_grpc.LedgerAsyncStub, fill_id: str) -> list[lg.Transfer] | None:
    page = await ledger.ListTransfers(
        lg.ListTransfersRequest(page_size=1000), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    found = [t for t in page.transfers if t.links.fill_id == fill_id]
    return found or None


def _rows(transfers: list[lg.Transfer]) -> set[tuple[str, str, str, D]]:
    """(asset, debit, credit, amount) of each transfer, accounts by code name and strategy."""
    return {
        (t.asset, f"{t.debit_account.code_name}[{t.debit_account.strategy_id}]",
         f"{t.credit_account.code_name}[{t.credit_account.strategy_id}]", D(t.amount))
        for t in transfers
    }  # fmt: skip


@pytest.mark.parametrize("venue", list(EXCHANGES))
async def test_an_inverse_perpetuals_intent_is_placed_filled_and_booked_in_the_coin(
    tmp_path: Path, redis_url: str, database_url: str, venue: str
) -> None:
    exchange = EXCHANGES[venue]()
    async with chain(tmp_path, redis_url, database_url, exchange) as (parts, bid, ask):
        stubs = parts.venue.stubs()
        book = await stubs.md.ListInstruments(
            md.ListInstrumentsRequest(symbols=[SYMBOL]), timeout=CALL_TIMEOUT_S
        )
        (listed,) = book.instruments
        face = (listed.contract_size, D(listed.contract_value), listed.contract_value_asset)
        assert face == ("0", exchange.face, "USD")
        inspector = rk_grpc.InspectorStub(parts.channel("inspector"))
        ledger = lg_grpc.LedgerStub(parts.channel("ledger"))
        contracts = D(1000) / exchange.face  # 1,000 USD
        size = str(contracts)

        async def submit(message: am.Intent) -> rk.SubmitIntentResponse:
            request = rk.SubmitIntentRequest(intent=message)
            answer: rk.SubmitIntentResponse = await inspector.SubmitIntent(
                request, metadata=AUTH, timeout=CALL_TIMEOUT_S
            )
            return answer

        # Entry: 1,000 USD at the ask, a target far above (its stop emulated by the inspector).
        entry = await submit(intent(venue, common.SIDE_BUY, size, ask, "inverse-in", take_profit="120000"))
        assert entry.action == rk.RISK_ACTION_ALLOW, entry.reasons
        events = await inspector.ListRiskEvents(
            rk.ListRiskEventsRequest(page_size=100), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
        allow = next(
            e for e in events.events if e.intent_id == "inverse-in" and e.action == rk.RISK_ACTION_ALLOW
        )
        values = {v.name: v.value for v in allow.values}
        coin = format_decimal(coin_value(D(1000), ask))  # as the API shows decimals
        assert (values["notional"], values["notional_coin"]) == ("1000", coin)

        (bought,) = await until(
            lambda: _fills(parts.bus, exchange.executions, entry.client_order_id),
            WAIT_S,
            what="the entry's fill",
        )
        fee = (D(1000) / ask * TAKER).quantize(D("1e-8"))
        assert (D(bought.price), D(bought.size), D(bought.fee), bought.fee_asset) == (
            ask,
            contracts,
            fee,
            "BTC",
        )
        opened = await until(lambda: _transfers(ledger, bought.fill_id), WAIT_S, what="the entry booked")
        cost = coin_value(D(1000), ask)  # on Deribit 1000 / 91250 = 0.010958904110 BTC
        if venue == "deribit":
            assert cost == D("0.01095890411")
        assert {
            ("USD", "perp_quantity[trend]", "position_control[]", D(1000)),
            ("BTC", "position_cost[trend]", "position_control[]", cost),
            ("BTC", "cash_fees[]", "venue_cash[]", fee),
            ("BTC", "fees_paid[trend]", "fees_control[]", fee),
            ("BTC", "cash_margin[]", "venue_cash[]", cost),  # leverage 1: the margin is the cost
        } <= _rows(opened)

        # The position's protection: its take-profit rests at the venue, reduce-only, all of it.
        async def protected() -> bool | None:
            answer = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
            wanted = [(o.side, D(o.price), D(o.size), o.reduce_only) for o in answer.orders]
            return True if (common.SIDE_SELL, D(120000), contracts, True) in wanted else None

        await until(protected, WAIT_S, what="the take-profit at the venue")

        # Exit: the whole position at the bid.
        async def held() -> bool | None:
            positions = await inspector.ListPositions(
                rk.ListPositionsRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
            )
            return (
                True
                if any(p.symbol == SYMBOL and D(p.size) == contracts for p in positions.positions)
                else None
            )

        await until(held, WAIT_S, what="the inspector holding the entry")
        exit_ = await submit(intent(venue, common.SIDE_SELL, size, bid, "inverse-out", reduce_only=True))
        assert exit_.action == rk.RISK_ACTION_ALLOW, exit_.reasons
        (sold,) = await until(
            lambda: _fills(parts.bus, exchange.executions, exit_.client_order_id),
            WAIT_S,
            what="the exit's fill",
        )
        assert (D(sold.price), D(sold.size)) == (bid, contracts)
        closed = await until(lambda: _transfers(ledger, sold.fill_id), WAIT_S, what="the exit booked")
        realised = cost - coin_value(D(1000), bid)  # what the face was worth at entry less at exit
        assert realised == coin_pnl(D(1000), ask, bid)
        if venue == "deribit":
            assert realised == D("-0.000000060049")  # docs/ledger.md
        # a loss: the realised PnL account is debited, the cash pays it to the market
        assert {
            ("USD", "position_control[]", "perp_quantity[trend]", D(1000)),
            ("BTC", "position_control[]", "position_cost[trend]", cost),
            ("BTC", "realised_pnl[trend]", "realised_control[]", -realised),
            ("BTC", "market[]", "venue_cash[]", -realised),
        } <= _rows(closed)

        async def unprotected() -> bool | None:  # flat: nothing left to protect
            answer = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
            return True if not answer.orders else None

        await until(unprotected, WAIT_S, what="the take-profit cancelled")
        pnl = await ledger.GetPnl(
            lg.GetPnlRequest(strategy_id="trend"), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
        (line,) = [s for s in pnl.strategies if s.asset == "BTC"]
        sold_fee = D(sold.fee)
        assert (D(line.realised), D(line.fees), line.fills) == (realised, -(fee + sold_fee), 2)
        verified = await ledger.Verify(lg.VerifyRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
        assert verified.ok, verified
