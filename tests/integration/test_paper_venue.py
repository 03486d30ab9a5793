"""Paper venues on recorded sessions (docs/paper.md): `trademesh venue NAME --paper --replay
<capture>` beside a real gateway, ingest, inspector and ledger (Redis, PostgreSQL). The chain
trades through the paper venue (the inspector places the entry and its protective pair), its
fills are at prices the recorded market showed, reduce-only and post-only hold, the ledger's
books agree with the venue's balances, and the registry and Admin mark the venue as paper.
Paper Binance (a recorded session) and paper OKX swaps (contracts of 0.01 BTC)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from tests.integration.gateway_support import Gateway, Processes, list_instances
from tests.integration.mesh import redis_db, venue_link
from tests.integration.paper_support import Market, ledger_cash, ledger_position, venue_totals
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.replay import capture_files, start_replay_venue
from tests.integration.support import (
    CALL_TIMEOUT_S,
    TEST_TOKEN,
    Executions,
    Stubs,
    Venue,
    limit_order,
    stop_venue,
    stream_status,
    until,
)
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.config.env import venue_variable
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.replay.server import DRAINED

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a whole mesh
__all__ = ["database_url", "redis_url"]  # fixtures

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
WAIT_S = 60.0
D = Decimal
FAKE_KEY = "paper-test-key-never-used"


@dataclass(frozen=True)
class Case:
    venue: str
    capture: str
    symbol: str
    size: str  # the entry's size, in the instrument's unit
    tick: Decimal
    assets: tuple[str, ...]  # the assets whose balances the trades move
    held: str  # what the entry leaves held: Binance takes a buy's fee off the base bought


CASES = [
    Case("binance", "BINANCE", "NKN/USDT", "1000", D("0.0001"), ("NKN", "USDT"), "999"),
    # 0.1 contract: 0.001 BTC. (The inspector's notional checks count a contract as one BTC: 0.1
    # stays under its shipped per-order limit either way.)
    Case("okx-swap", "OKX_SWAP", "BTC/USDT:USDT", "0.1", D("0.1"), ("USDT",), "0.1"),
]


def _on_tick(price: Decimal, tick: Decimal) -> str:
    return str((price // tick) * tick)


async def _paper_instance(gateway: Gateway, name: str) -> bool | None:
    instance = (await list_instances(gateway)).get(name)
    return None if instance is None else instance.paper


async def _submit(inspector: ServiceProcess, intent: am.Intent) -> rk.SubmitIntentResponse:
    async with grpc.aio.insecure_channel(inspector.address) as channel:
        answer: rk.SubmitIntentResponse = await rk_grpc.InspectorStub(channel).SubmitIntent(
            rk.SubmitIntentRequest(intent=intent), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    return answer


async def _protective_pair(stubs: Stubs, symbol: str) -> list[tf.Order] | None:
    answer = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(symbol=symbol), timeout=CALL_TIMEOUT_S)
    pair = [o for o in answer.orders if o.reduce_only]
    return pair if len(pair) == 2 else None


@pytest.mark.parametrize("case", CASES, ids=[case.venue for case in CASES])
async def test_the_chain_trades_through_a_paper_venue_on_a_recorded_session(
    tmp_path: Path, database_url: str, redis_url: str, case: Case
) -> None:
    async with new_database(database_url, "paper") as database, redis_db(redis_url) as bus:
        processes = Processes(tmp_path, database)
        try:
            gateway = processes.gateway()
            credentials = {venue_variable(case.venue, "API_KEY"): FAKE_KEY}
            process = processes.paper(
                gateway, case.venue, capture_files(case.capture), "--replay-speed", "1", env=credentials
            )
            venue = Venue(process, processes.log_path(process))
            stubs = venue.stubs()
            market = Market(stubs, case.symbol)  # its subscription starts the replay
            try:
                await _trade_through_the_chain(processes, gateway, venue, stubs, market, case, bus, database)
            finally:
                await market.close()
                await venue.close_channels()
            log = venue.log()
            assert "ignores its credentials" in log and FAKE_KEY not in log
        finally:
            await processes.stop_all()


async def _trade_through_the_chain(
    processes: Processes,
    gateway: Gateway,
    venue: Venue,
    stubs: Stubs,
    market: Market,
    case: Case,
    bus: str,
    database: str,
) -> None:
    assert (await stream_status(stubs)).paper
    assert await until(lambda: _paper_instance(gateway, case.venue), WAIT_S, what="the registry's entry")
    link = venue_link("ingest", venue.address, case.venue)
    processes.mesh_service(gateway, "ingest", *link, redis_url=bus)
    inspector = processes.mesh_service(
        gateway, "inspector", *venue_link("inspector", venue.address, case.venue), "--deadman-ttl-ms", "0",
        redis_url=bus,
    )  # fmt: skip
    ledger = processes.mesh_service(
        gateway, "ledger", *venue_link("ledger", venue.address, case.venue), "--database-url", database,
        redis_url=bus,
    )  # fmt: skip
    opening = await until(lambda: _opened(ledger, case), WAIT_S, what="the ledger's books opened")
    bid, ask = await until(market.quoted, WAIT_S, what="a two-sided recorded book")

    # Post-only holds: one that would take the book is refused (the test stands in for the inspector).
    # 1 % over the ask this subscriber last heard: it crosses however the book moved since.
    over = _on_tick(ask * D("1.01"), case.tick)
    crossing = limit_order(case.symbol, common.SIDE_BUY, case.size, over, post_only=True)
    refused = await stubs.tf.PlaceOrder(crossing, timeout=CALL_TIMEOUT_S)
    assert refused.order.status == tf.ORDER_STATUS_REJECTED and "post-only" in refused.order.status_reason

    executions = Executions(stubs, [case.symbol])
    try:
        mark = (bid + ask) / 2
        intent = am.Intent(
            venue=case.venue, symbol=case.symbol, side=common.SIDE_BUY, size=case.size,
            entry_type=tf.ORDER_TYPE_MARKET, stop_loss=_on_tick(mark * D("0.9"), case.tick),
            take_profit=_on_tick(mark * D("1.1"), case.tick),
        )  # fmt: skip
        answer = await _submit(inspector, intent)
        assert answer.action == rk.RISK_ACTION_ALLOW, answer
        entry = answer.order
        seen = await executions.wait_for(entry.order_id, tf.ORDER_STATUS_FILLED, WAIT_S)
    finally:
        await executions.close()
    fills = [D(e.fill.price) for e in seen if e.HasField("fill")]

    # A market buy takes the recorded asks: every fill at a price the venue's book showed (this
    # subscriber may hear of the book after the fill's execution: it waits for it).
    async def shown() -> bool | None:
        return True if fills and set(fills) <= market.asks_shown else None

    await until(shown, CALL_TIMEOUT_S, what=f"fills at {fills} among the recorded asks")
    assert sum((D(e.fill.size) for e in seen if e.HasField("fill")), D(0)) == D(case.size)

    # The protective pair rests at the paper venue, reduce-only, the position's size: what the
    # entry left held (on Binance 999 NKN of the 1000 bought: its 0.1 % fee came off them).
    pair = await until(lambda: _protective_pair(stubs, case.symbol), WAIT_S, what="the protective pair")
    assert {D(o.size) for o in pair} == {D(case.held)} and all(o.side == common.SIDE_SELL for o in pair)
    # Reduce-only holds: one that would add to the long is refused.
    adding = limit_order(case.symbol, common.SIDE_BUY, case.size, _on_tick(bid * D("0.95"), case.tick))
    adding.reduce_only = True
    with pytest.raises(grpc.aio.AioRpcError) as refusal:
        await stubs.tf.PlaceOrder(adding, timeout=CALL_TIMEOUT_S)
    assert refusal.value.code() == grpc.StatusCode.FAILED_PRECONDITION

    # The ledger's books follow the paper fills to the venue's balances.
    async def agree() -> dict[str, Decimal] | None:
        books, totals = await ledger_cash(ledger, case.venue), await venue_totals(stubs)
        moved = {asset: totals[asset] for asset in case.assets}
        return moved if all(books.get(asset, D(0)) == moved[asset] for asset in case.assets) else None

    agreed = await until(agree, WAIT_S, 0.2, "the ledger agreeing with the venue")
    assert agreed != {asset: opening.get(asset, D(0)) for asset in case.assets}  # the fills moved them
    if ":" not in case.symbol:
        await _spot_held_agrees(
            ledger, inspector, stubs, case, opening, [e.fill for e in seen if e.HasField("fill")]
        )


async def _spot_held_agrees(
    ledger: ServiceProcess,
    inspector: ServiceProcess,
    stubs: Stubs,
    case: Case,
    opening: dict[str, Decimal],
    fills: list[tf.Fill],
) -> None:
    """A spot entry's holding in the ledger (`spot_quantity`, every strategy's) is what the venue's
    base balance gained and the inspector's position: on Binance the fills less their fees, paid
    in the base (999 NKN of 1000), at a cost of the fills' (size - fee) x price."""
    base = case.symbol.split("/")[0]
    assert fills and all(f.fee_asset == base for f in fills)  # Binance's rule: off the base bought

    async def held() -> tuple[Decimal, Decimal] | None:
        quantity, cost = await ledger_position(ledger, case.venue, case.symbol)
        gained = (await venue_totals(stubs)).get(base, D(0)) - opening.get(base, D(0))
        return (quantity, cost) if quantity == gained else None

    quantity, cost = await until(held, WAIT_S, 0.2, "the ledger's spot quantity agreeing with the venue")
    assert quantity == D(case.held)
    assert cost == sum(((D(f.size) - D(f.fee)) * D(f.price) for f in fills), D(0))
    async with grpc.aio.insecure_channel(inspector.address) as channel:
        answer = await rk_grpc.InspectorStub(channel).ListPositions(
            rk.ListPositionsRequest(venue=case.venue), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    assert [D(p.size) for p in answer.positions if p.symbol == case.symbol and not p.legacy] == [quantity]


async def _opened(ledger: ServiceProcess, case: Case) -> dict[str, Decimal] | None:
    try:
        books = await ledger_cash(ledger, case.venue)
    except grpc.aio.AioRpcError:
        return None
    return books if books else None


async def test_a_paper_venue_takes_no_order_before_the_venues_book_has_come(tmp_path: Path) -> None:
    """Nothing to match against until the venue's book comes (a replay starts with its first
    subscriber): PlaceOrder is FAILED_PRECONDITION naming the symbol, then the book comes and the
    same order trades."""
    venue, log = start_replay_venue(tmp_path, "okx-swap", capture_files("OKX_SWAP"), extra=["--paper"])
    try:
        stubs = venue.stubs()
        order = tf.PlaceOrderRequest(
            symbol="BTC/USDT:USDT", side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size="0.01"
        )
        with pytest.raises(grpc.aio.AioRpcError) as early:
            await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
        assert early.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "no BTC/USDT:USDT book yet" in (early.value.details() or "")
        market = Market(stubs, "BTC/USDT:USDT")
        try:
            await until(market.quoted, WAIT_S, what="the venue's book")
            placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
            assert placed.order.status == tf.ORDER_STATUS_FILLED
            price = D(placed.order.average_fill_price)  # one level's: 0.01 of a contract

            async def shown() -> bool | None:
                return True if price in market.asks_shown else None

            await until(shown, CALL_TIMEOUT_S, what=f"the fill's price {price} among the recorded asks")
        finally:
            await market.close()
    finally:
        await stop_venue(venue, log)


async def _all_trades_heard(venue: Venue, stubs: Stubs, market: Market, symbol: str) -> bool | None:
    """The replay played out (its stand-in's DRAINED line) and every trade the venue published
    heard by `market`."""
    if DRAINED not in venue.log():
        return None
    status = await stream_status(stubs)
    published = sum(
        s.events_total for s in status.streams if s.symbol == symbol and s.channel == md.CHANNEL_TRADES
    )
    return True if len(market.trades) == published else None


async def test_a_resting_paper_order_fills_only_when_the_recorded_market_reaches_it(tmp_path: Path) -> None:
    """OKX swaps' session at twice its recorded pace (10 s): a bid at the best bid and an ask at the best
    ask rest behind the size displayed there. Each fills, if at all, at its own price and only
    once the venue traded at it or through it, or its book crossed it; a trade through its price
    (a sell below the bid, a buy above the ask) fills it."""
    config = tmp_path / "paper.toml"
    config.write_text("latency_ms = 0\n")
    extra = ["--paper", "--paper-config", str(config)]
    venue, log = start_replay_venue(tmp_path, "okx-swap", capture_files("OKX_SWAP"), speed=2.0, extra=extra)
    symbol = "BTC/USDT:USDT"
    try:
        stubs = venue.stubs()
        market = Market(stubs, symbol)
        try:
            bid, ask = await until(market.quoted, WAIT_S, what="the venue's book")
            resting = {}
            for side, price in ((common.SIDE_BUY, bid), (common.SIDE_SELL, ask)):
                # Post-only: one the market moved through before it arrived is refused, not filled.
                request = limit_order(symbol, side, "0.01", str(price), post_only=True)
                placed = await stubs.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S)
                if placed.order.status == tf.ORDER_STATUS_OPEN:  # behind the displayed size
                    resting[side] = placed.order
            assert resting, "neither order rested"
            await until(
                lambda: _all_trades_heard(venue, stubs, market, symbol), WAIT_S, 0.2, "the whole session"
            )
            throughs = 0
            for rested in resting.values():
                answer = await stubs.tf.GetOrder(
                    tf.GetOrderRequest(order_id=rested.order_id), timeout=CALL_TIMEOUT_S
                )
                order, (reached, through) = answer.order, _market_after(market, rested)
                throughs += through
                if D(order.filled_size):
                    assert reached, (order, market.trades)
                    assert D(order.average_fill_price) == D(rested.price), order
                if through:
                    assert D(order.filled_size) > 0, (order, market.trades)
            assert throughs > 0  # the session traded through one of them at least: the check bit
        finally:
            await market.close()
    finally:
        await stop_venue(venue, log)


def _market_after(market: Market, rested: tf.Order) -> tuple[bool, bool]:
    """What the venue did after the order rested: (it traded at its price or through it, or its
    book crossed it; a taker traded through it: a sell below a bid, a buy above an ask)."""
    price, buy, since = D(rested.price), rested.side == common.SIDE_BUY, rested.created_ns
    after = [(trade_price, taker) for ts, trade_price, _, taker in market.trades if ts > since]
    tops = [(bid, ask) for ts, bid, ask in market.tops if ts > since]
    if buy:
        traded = any(p <= price for p, _ in after)
        crossed = any(ask is not None and ask <= price for _, ask in tops)
        return traded or crossed, any(p < price and taker == common.SIDE_SELL for p, taker in after)
    traded = any(p >= price for p, _ in after)
    crossed = any(bid is not None and bid >= price for bid, _ in tops)
    return traded or crossed, any(p > price and taker == common.SIDE_BUY for p, taker in after)


async def test_a_paper_venue_amends_in_place_and_says_its_account_is_pushed(tmp_path: Path) -> None:
    """The paper venue's trading is the sim's engine: AmendOrder changes a resting order in
    place (the same order id), and its account stream is pushed by the engine's executions (so
    Admin says)."""
    venue, log = start_replay_venue(tmp_path, "okx-swap", capture_files("OKX_SWAP"), extra=["--paper"])
    try:
        stubs = venue.stubs()
        status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
        assert (status.capabilities.amend, status.capabilities.account_feed) == (
            admin.AMEND_MODE_NATIVE, admin.ACCOUNT_FEED_PUSH
        )  # fmt: skip
        market = Market(stubs, "BTC/USDT:USDT")
        try:
            await until(market.quoted, WAIT_S, what="the venue's book")
            far = str((min(market.bids) / 2).quantize(D("0.1")))
        finally:
            await market.close()
        placed = await stubs.tf.PlaceOrder(
            limit_order("BTC/USDT:USDT", common.SIDE_BUY, "0.01", far, client_order_id="paper-amend"),
            timeout=CALL_TIMEOUT_S,
        )
        assert placed.order.status == tf.ORDER_STATUS_OPEN
        request = tf.AmendOrderRequest(
            client_order_id="paper-amend", price=str(D(far) - D("0.1")), size="0.02"
        )
        amended = await stubs.tf.AmendOrder(request, timeout=CALL_TIMEOUT_S)
        assert not amended.replaced and amended.order.order_id == placed.order.order_id
        assert (D(amended.order.price), D(amended.order.size)) == (D(far) - D("0.1"), D("0.02"))
        await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
    finally:
        await stop_venue(venue, log)
