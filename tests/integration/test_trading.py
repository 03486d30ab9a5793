"""Orders on a real sim venue process: fills, fees, balances, cancels, idempotent placement."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import grpc
import pytest

from tests.integration.support import (
    CALL_TIMEOUT_S,
    Executions,
    Stubs,
    balances,
    best_prices,
    far_bid,
    limit_order,
)
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_open_orders")]

BTC_TICK = Decimal("0.01")
TAKER_FEE_RATE = Decimal("0.002")
MAKER_FEE_RATE = Decimal("0.001")


def client_id(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def executions(stubs: Stubs) -> AsyncIterator[Executions]:
    watcher = Executions(stubs)
    bid, _ = await best_prices(stubs, "BTC/USDT")
    await watcher.ready(stubs, "BTC/USDT", far_bid(bid, BTC_TICK), "0.001")
    yield watcher
    await watcher.close()


async def open_orders(stubs: Stubs, symbol: str = "") -> list[tf.Order]:
    response = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(symbol=symbol), timeout=CALL_TIMEOUT_S)
    return list(response.orders)


async def test_market_order_fills_with_taker_fee_and_moves_balances_by_exactly_the_fills(
    stubs: Stubs, executions: Executions
) -> None:
    before = await balances(stubs)
    size = Decimal("0.01")
    request = tf.PlaceOrderRequest(
        symbol="BTC/USDT",
        side=common.SIDE_BUY,
        type=tf.ORDER_TYPE_MARKET,
        size=str(size),
        client_order_id=client_id("market"),
    )
    placed = await stubs.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_FILLED and not placed.duplicate
    assert Decimal(placed.order.filled_size) == size

    seen = await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_FILLED)
    assert seen[0].order.status == tf.ORDER_STATUS_OPEN and not seen[0].HasField("fill")
    fills = [e.fill for e in seen if e.HasField("fill")]
    assert fills and sum(Decimal(f.size) for f in fills) == size
    for fill in fills:
        assert fill.order_id == placed.order.order_id and fill.client_order_id == request.client_order_id
        assert fill.liquidity == tf.LIQUIDITY_TAKER and fill.fee_asset == "USDT"
        assert Decimal(fill.fee) == Decimal(fill.price) * Decimal(fill.size) * TAKER_FEE_RATE
    notional = sum(Decimal(f.price) * Decimal(f.size) for f in fills)
    fees = sum(Decimal(f.fee) for f in fills)
    assert Decimal(placed.order.average_fill_price) == notional / size

    after = await balances(stubs)
    assert Decimal(after["BTC"].total) - Decimal(before["BTC"].total) == size
    assert Decimal(after["USDT"].total) - Decimal(before["USDT"].total) == -(notional + fees)
    assert Decimal(after["USDT"].locked) == Decimal(before["USDT"].locked) == 0


async def test_the_account_answers_carry_the_venues_time_placing_them_among_the_fills(
    stubs: Stubs, executions: Executions
) -> None:
    """GetBalances' and GetPositions' `as_of_ns` is the sim's clock, which stamps its fills: an
    answer before an order is as of before its fills, an answer after it as of their time or later."""
    before = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    request = tf.PlaceOrderRequest(symbol="BTC/USDT", side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET,
                                   size="0.01", client_order_id=client_id("as-of"))  # fmt: skip
    placed = await stubs.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S)
    seen = await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_FILLED)
    filled = [e.fill.ts_event_ns for e in seen if e.HasField("fill")]
    balances_after = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    positions = await stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
    assert filled and 0 < before.as_of_ns < min(filled)
    assert max(filled) <= balances_after.as_of_ns <= positions.as_of_ns


async def test_resting_bid_at_the_top_of_the_book_fills_as_maker_against_synthetic_flow(
    stubs: Stubs, executions: Executions
) -> None:
    # A rising market can leave one bid behind, so chase the top a few times (each bounded).
    for _attempt in range(4):
        bid, ask = await best_prices(stubs, "BTC/USDT")
        price = bid + BTC_TICK if bid + BTC_TICK < ask else bid
        request = limit_order("BTC/USDT", common.SIDE_BUY, "0.0001", str(price), post_only=True)
        placed = await stubs.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S)
        if placed.order.status != tf.ORDER_STATUS_OPEN:
            continue  # the market moved onto our price: post-only said no
        try:
            seen = await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_FILLED, timeout_s=8.0)
        except pytest.fail.Exception:
            await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
            continue
        fills = [e.fill for e in seen if e.HasField("fill")]
        assert fills and all(f.liquidity == tf.LIQUIDITY_MAKER for f in fills)
        assert all(Decimal(f.price) == price for f in fills), "a maker fills at its own limit price"
        assert all(Decimal(f.fee) == price * Decimal(f.size) * MAKER_FEE_RATE for f in fills)
        assert sum(Decimal(f.size) for f in fills) == Decimal("0.0001")
        got = await stubs.tf.GetOrder(
            tf.GetOrderRequest(order_id=placed.order.order_id), timeout=CALL_TIMEOUT_S
        )
        assert got.order.status == tf.ORDER_STATUS_FILLED
        return
    pytest.fail("no resting bid at the top of the book filled in four tries")


async def test_cancel_ends_a_resting_order_and_releases_its_lock(
    stubs: Stubs, executions: Executions
) -> None:
    bid, _ = await best_prices(stubs, "BTC/USDT")
    price = Decimal(far_bid(bid, BTC_TICK))
    before = await balances(stubs)
    placed = await stubs.tf.PlaceOrder(limit_order("BTC/USDT", common.SIDE_BUY, "0.001", str(price)))
    assert placed.order.status == tf.ORDER_STATUS_OPEN
    held = await balances(stubs)
    lock = price * Decimal("0.001") * (1 + TAKER_FEE_RATE)
    assert Decimal(held["USDT"].locked) - Decimal(before["USDT"].locked) == lock
    assert [o.order_id for o in await open_orders(stubs)] == [placed.order.order_id]

    canceled = await stubs.tf.CancelOrder(tf.CancelOrderRequest(order_id=placed.order.order_id))
    assert canceled.order.status == tf.ORDER_STATUS_CANCELED
    await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_CANCELED)
    assert await open_orders(stubs) == []
    after = await balances(stubs)
    assert after["USDT"].locked == before["USDT"].locked and after["USDT"].free == before["USDT"].free

    with pytest.raises(grpc.aio.AioRpcError) as again:
        await stubs.tf.CancelOrder(tf.CancelOrderRequest(order_id=placed.order.order_id))
    assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def test_cancel_by_client_order_id(stubs: Stubs) -> None:
    bid, _ = await best_prices(stubs, "BTC/USDT")
    cid = client_id("cancel")
    await stubs.tf.PlaceOrder(
        limit_order("BTC/USDT", common.SIDE_BUY, "0.001", far_bid(bid, BTC_TICK), client_order_id=cid)
    )
    canceled = await stubs.tf.CancelOrder(tf.CancelOrderRequest(client_order_id=cid), timeout=CALL_TIMEOUT_S)
    assert canceled.order.client_order_id == cid and canceled.order.status == tf.ORDER_STATUS_CANCELED


async def test_cancel_all_cancels_one_symbol_then_every_order(stubs: Stubs) -> None:
    placed: dict[str, list[str]] = {}
    for symbol, tick in (
        ("BTC/USDT", BTC_TICK),
        ("ETH/USDT", Decimal("0.01")),
        ("SOL/USDT", Decimal("0.001")),
    ):
        bid, _ = await best_prices(stubs, symbol)
        size = {"BTC/USDT": "0.001", "ETH/USDT": "0.01", "SOL/USDT": "1"}[symbol]
        for _ in range(2):
            response = await stubs.tf.PlaceOrder(
                limit_order(symbol, common.SIDE_BUY, size, far_bid(bid, tick))
            )
            placed.setdefault(symbol, []).append(response.order.order_id)
    assert len(await open_orders(stubs)) == 6

    eth = await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(symbol="ETH/USDT"), timeout=CALL_TIMEOUT_S)
    assert sorted(o.order_id for o in eth.orders) == sorted(placed["ETH/USDT"])
    assert all(o.status == tf.ORDER_STATUS_CANCELED for o in eth.orders)
    left = await open_orders(stubs)
    assert sorted(o.order_id for o in left) == sorted(placed["BTC/USDT"] + placed["SOL/USDT"])

    rest = await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert len(rest.orders) == 4 and all(o.status == tf.ORDER_STATUS_CANCELED for o in rest.orders)
    assert await open_orders(stubs) == []
    assert all(Decimal(b.locked) == 0 for b in (await balances(stubs)).values())


async def test_get_order_by_client_order_id_and_by_order_id(stubs: Stubs) -> None:
    bid, _ = await best_prices(stubs, "BTC/USDT")
    cid = client_id("get")
    placed = await stubs.tf.PlaceOrder(
        limit_order("BTC/USDT", common.SIDE_BUY, "0.001", far_bid(bid, BTC_TICK), client_order_id=cid)
    )
    by_client = await stubs.tf.GetOrder(tf.GetOrderRequest(client_order_id=cid), timeout=CALL_TIMEOUT_S)
    by_id = await stubs.tf.GetOrder(
        tf.GetOrderRequest(order_id=placed.order.order_id), timeout=CALL_TIMEOUT_S
    )
    assert by_client.order == by_id.order
    assert by_client.order.order_id == placed.order.order_id and by_client.order.client_order_id == cid
    assert by_client.order.status == tf.ORDER_STATUS_OPEN and by_client.order.venue == "sim"


async def test_a_repeated_client_order_id_returns_the_first_order_and_places_nothing(stubs: Stubs) -> None:
    bid, _ = await best_prices(stubs, "BTC/USDT")
    cid = client_id("idem")
    first_price = far_bid(bid, BTC_TICK)
    first = await stubs.tf.PlaceOrder(
        limit_order("BTC/USDT", common.SIDE_BUY, "0.001", first_price, client_order_id=cid)
    )
    locked = Decimal((await balances(stubs))["USDT"].locked)
    # A retry, even one that differs, must not create a second order.
    second = await stubs.tf.PlaceOrder(
        limit_order(
            "BTC/USDT", common.SIDE_BUY, "0.002", far_bid(bid * Decimal("0.9"), BTC_TICK), client_order_id=cid
        )
    )
    assert not first.duplicate and second.duplicate
    assert second.order.order_id == first.order.order_id
    assert (Decimal(second.order.price), Decimal(second.order.size)) == (
        Decimal(first_price),
        Decimal("0.001"),
    )
    orders = await open_orders(stubs, "BTC/USDT")
    assert [o.client_order_id for o in orders] == [cid]
    assert Decimal((await balances(stubs))["USDT"].locked) == locked

    await stubs.tf.CancelOrder(tf.CancelOrderRequest(client_order_id=cid))
    third = await stubs.tf.PlaceOrder(
        limit_order("BTC/USDT", common.SIDE_BUY, "0.001", first_price, client_order_id=cid)
    )
    assert third.duplicate and third.order.order_id == first.order.order_id
    assert third.order.status == tf.ORDER_STATUS_CANCELED
    assert await open_orders(stubs) == []


async def test_post_only_order_that_would_cross_is_rejected_and_never_rests(stubs: Stubs) -> None:
    _, ask = await best_prices(stubs, "BTC/USDT")
    crossing = str(ask + 100)
    placed = await stubs.tf.PlaceOrder(
        limit_order("BTC/USDT", common.SIDE_BUY, "0.001", crossing, post_only=True), timeout=CALL_TIMEOUT_S
    )
    assert placed.order.status == tf.ORDER_STATUS_REJECTED and placed.order.status_reason != ""
    assert Decimal(placed.order.filled_size) == 0
    assert await open_orders(stubs) == []


async def test_ioc_limit_order_that_cannot_fill_expires(stubs: Stubs) -> None:
    bid, _ = await best_prices(stubs, "BTC/USDT")
    placed = await stubs.tf.PlaceOrder(
        limit_order(
            "BTC/USDT", common.SIDE_BUY, "0.001", far_bid(bid, BTC_TICK), time_in_force=tf.TIME_IN_FORCE_IOC
        ),
        timeout=CALL_TIMEOUT_S,
    )
    assert placed.order.status == tf.ORDER_STATUS_EXPIRED and Decimal(placed.order.filled_size) == 0
    assert await open_orders(stubs) == []


async def test_the_executions_stream_says_it_is_open_before_its_first_execution(stubs: Stubs) -> None:
    call = stubs.tf.StreamExecutions(tf.StreamExecutionsRequest(symbols=["BTC/USDT"]))
    try:
        # Headers arrive with no execution yet: from here on, nothing the client does goes unseen.
        await asyncio.wait_for(call.initial_metadata(), 5)
        bid, _ = await best_prices(stubs, "BTC/USDT")
        placed = await stubs.tf.PlaceOrder(
            limit_order("BTC/USDT", common.SIDE_BUY, "0.001", far_bid(bid, BTC_TICK))
        )
        first = await asyncio.wait_for(call.read(), 5)
        assert isinstance(first, tf.StreamExecutionsResponse)
        assert first.executions[0].order.order_id == placed.order.order_id
        await stubs.tf.CancelOrder(tf.CancelOrderRequest(order_id=placed.order.order_id))
    finally:
        call.cancel()
