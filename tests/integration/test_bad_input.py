"""Bad input gets a clear status naming the field, never UNKNOWN or INTERNAL, and the venue keeps serving."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import grpc
import pytest

from tests.integration.support import CALL_TIMEOUT_S, Stubs, best_prices, far_bid
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = pytest.mark.integration

BUY, SELL = common.SIDE_BUY, common.SIDE_SELL
LIMIT, MARKET = tf.ORDER_TYPE_LIMIT, tf.ORDER_TYPE_MARKET


def order(**fields: Any) -> tf.PlaceOrderRequest:
    """A valid far-from-market BTC limit buy, with `fields` changed."""
    base: dict[str, Any] = {
        "symbol": "BTC/USDT",
        "side": BUY,
        "type": LIMIT,
        "size": "0.001",
        "price": "30000",
    }
    return tf.PlaceOrderRequest(**{**base, **fields})


# (request, the field the BadRequest violation must name)
BAD_ORDERS: dict[str, tuple[tf.PlaceOrderRequest, str]] = {
    "zero size": (order(size="0"), "size"),
    "negative size": (order(size="-0.001"), "size"),
    "price off tick": (order(price="30000.005"), "price"),
    "size off lot": (order(size="0.000015"), "size"),
    "negative price": (order(price="-30000"), "price"),
    "below min notional": (order(size="0.00001", price="100"), "size"),
    "unknown symbol": (order(symbol="DOGE/USDT"), "symbol"),
    "native symbol": (order(symbol="BTCUSDT"), "symbol"),
    "size not a decimal": (order(size="abc"), "size"),
    "price not a decimal": (order(price="abc"), "price"),
    "size huge exponent": (order(size="1e999999"), "size"),
    "size in exponent notation": (order(size="1e-3"), "size"),
    "size with spaces": (order(size=" 1"), "size"),
    "size with underscores": (order(size="1_0"), "size"),
    "price huge exponent": (order(price="1e999999"), "price"),
    "size beyond 38 digits": (order(size="1" + "0" * 38), "size"),
    "size NaN": (order(size="NaN"), "size"),
    "price Infinity": (order(price="Infinity"), "price"),
    "size too many digits": (order(size="0." + "1" * 40), "size"),
    "missing symbol": (order(symbol=""), "symbol"),
    "missing side": (order(side=common.SIDE_UNSPECIFIED), "side"),
    "missing type": (order(type=tf.ORDER_TYPE_UNSPECIFIED), "type"),
    "missing size": (order(size=""), "size"),
    "limit without price": (order(price=""), "price"),
    "unsupported order type": (order(type=tf.OrderType.ValueType(99)), "type"),
    "unknown side": (order(side=common.Side.ValueType(7)), "side"),
    "unknown time in force": (order(time_in_force=tf.TimeInForce.ValueType(42)), "time_in_force"),
    "market order with price": (order(type=MARKET, price="30000"), "price"),
    "post-only market order": (order(type=MARKET, price="", post_only=True), "post_only"),
    "post-only IOC": (order(post_only=True, time_in_force=tf.TIME_IN_FORCE_IOC), "post_only"),
    "market GTC": (order(type=MARKET, price="", time_in_force=tf.TIME_IN_FORCE_GTC), "time_in_force"),
    "client order id with spaces": (order(client_order_id="has spaces"), "client_order_id"),
    "client order id too long": (order(client_order_id="x" * 65), "client_order_id"),
}


async def invalid(call: Any) -> list[tuple[str, str]]:
    """Await a call that must fail with INVALID_ARGUMENT; its field violations."""
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await call
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT, error.value
    violations = bad_request_violations(error.value)
    assert violations, "INVALID_ARGUMENT without google.rpc.BadRequest field violations"
    assert all(description for _, description in violations), violations
    return violations


async def still_serving(stubs: Stubs) -> None:
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.state == admin.VENUE_STATE_RUNNING


async def first_message(call: Any) -> Any:
    return await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)


@pytest.mark.parametrize("case", sorted(BAD_ORDERS))
async def test_bad_order_is_invalid_argument_naming_the_field(stubs: Stubs, case: str) -> None:
    request, field = BAD_ORDERS[case]
    violations = await invalid(stubs.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S))
    assert field in [f for f, _ in violations], violations
    await still_serving(stubs)


async def test_every_bad_field_of_an_order_is_named_at_once(stubs: Stubs) -> None:
    request = tf.PlaceOrderRequest(
        symbol="NOPE/USDT",
        side=common.Side.ValueType(9),
        type=tf.ORDER_TYPE_UNSPECIFIED,
        size="-1",
        price="x",
    )
    violations = await invalid(stubs.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S))
    assert {"symbol", "side", "type", "size", "price"} <= {f for f, _ in violations}


async def test_a_valid_order_is_placed_after_bad_ones(stubs: Stubs, no_open_orders: None) -> None:
    for request, _ in BAD_ORDERS.values():
        with pytest.raises(grpc.aio.AioRpcError):
            await stubs.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S)
    bid, _ = await best_prices(stubs, "BTC/USDT")
    placed = await stubs.tf.PlaceOrder(order(price=far_bid(bid, Decimal("0.01"))), timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_OPEN
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert [o.order_id for o in listed.orders] == [placed.order.order_id]


@pytest.mark.parametrize(
    "request_",
    [
        tf.GetOrderRequest(order_id="999999999"),
        tf.GetOrderRequest(order_id="not-an-id"),
        tf.GetOrderRequest(client_order_id="never-used-client-id"),
    ],
    ids=["unknown order id", "malformed order id", "unknown client order id"],
)
async def test_unknown_order_is_not_found(stubs: Stubs, request_: tf.GetOrderRequest) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stubs.tf.GetOrder(request_, timeout=CALL_TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    cancel = tf.CancelOrderRequest(order_id=request_.order_id, client_order_id=request_.client_order_id)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stubs.tf.CancelOrder(cancel, timeout=CALL_TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    await still_serving(stubs)


@pytest.mark.parametrize(
    "request_",
    [tf.GetOrderRequest(), tf.GetOrderRequest(order_id="1", client_order_id="x")],
    ids=["none", "both"],
)
async def test_order_must_be_named_by_exactly_one_id(stubs: Stubs, request_: tf.GetOrderRequest) -> None:
    violations = await invalid(stubs.tf.GetOrder(request_, timeout=CALL_TIMEOUT_S))
    assert [f for f, _ in violations] == ["order_id"]


@pytest.mark.parametrize("size", ["1000", "1" + "0" * 30, "9" * 37])
async def test_order_beyond_the_balance_is_failed_precondition(
    stubs: Stubs, no_open_orders: None, size: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stubs.tf.PlaceOrder(order(size=size, price="30000"), timeout=CALL_TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "insufficient" in (error.value.details() or "")


async def test_reduce_only_order_that_would_grow_the_position_is_failed_precondition(stubs: Stubs) -> None:
    positions = await stubs.tf.GetPositions(tf.GetPositionsRequest(symbol="SOL/USDT"), timeout=CALL_TIMEOUT_S)
    size = Decimal(positions.positions[0].size)
    side = BUY if size >= 0 else SELL
    request = tf.PlaceOrderRequest(
        symbol="SOL/USDT", side=side, type=LIMIT, size="1", price="100", reduce_only=True
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stubs.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION


BAD_SUBSCRIPTIONS: dict[str, tuple[md.SubscribeRequest, str]] = {
    "no symbols": (md.SubscribeRequest(channels=[md.CHANNEL_TRADES]), "symbols"),
    "unknown symbol": (
        md.SubscribeRequest(symbols=["DOGE/USDT"], channels=[md.CHANNEL_TRADES]),
        "symbols[0]",
    ),
    "empty symbol": (
        md.SubscribeRequest(symbols=["BTC/USDT", ""], channels=[md.CHANNEL_TRADES]),
        "symbols[1]",
    ),
    "no channels": (md.SubscribeRequest(symbols=["BTC/USDT"]), "channels"),
    "unspecified channel": (
        md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_UNSPECIFIED]),
        "channels[0]",
    ),
    "unknown channel": (
        md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_BOOK, md.Channel.ValueType(42)]),
        "channels[1]",
    ),
    "unknown timeframe": (
        md.SubscribeRequest(
            symbols=["BTC/USDT"],
            channels=[md.CHANNEL_CANDLES],
            candle_timeframe=common.Timeframe.ValueType(99),
        ),
        "candle_timeframe",
    ),
    "unknown overflow policy": (
        md.SubscribeRequest(
            symbols=["BTC/USDT"], channels=[md.CHANNEL_TRADES], overflow_policy=md.OverflowPolicy.ValueType(9)
        ),
        "overflow_policy",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_SUBSCRIPTIONS))
async def test_bad_subscription_is_invalid_argument_naming_the_field(stubs: Stubs, case: str) -> None:
    request, field = BAD_SUBSCRIPTIONS[case]
    violations = await invalid(first_message(stubs.md.Subscribe(request)))
    assert field in [f for f, _ in violations], violations
    await still_serving(stubs)


NOW_NS = 1_800_000_000_000_000_000

BAD_CANDLES: dict[str, tuple[md.GetCandlesRequest, str]] = {
    "end before start": (
        md.GetCandlesRequest(
            symbol="BTC/USDT", timeframe=common.TIMEFRAME_1_SECOND, start_ns=NOW_NS, end_ns=NOW_NS - 10**9
        ),
        "end_ns",
    ),
    "missing timeframe": (md.GetCandlesRequest(symbol="BTC/USDT"), "timeframe"),
    "unknown symbol": (
        md.GetCandlesRequest(symbol="XRP/USDT", timeframe=common.TIMEFRAME_1_MINUTE),
        "symbol",
    ),
    "negative start": (
        md.GetCandlesRequest(symbol="BTC/USDT", timeframe=common.TIMEFRAME_1_MINUTE, start_ns=-1),
        "start_ns",
    ),
    "limit too large": (
        md.GetCandlesRequest(symbol="BTC/USDT", timeframe=common.TIMEFRAME_1_MINUTE, limit=1_000_000),
        "limit",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_CANDLES))
async def test_bad_candles_request_is_invalid_argument_naming_the_field(stubs: Stubs, case: str) -> None:
    request, field = BAD_CANDLES[case]
    violations = await invalid(stubs.md.GetCandles(request, timeout=CALL_TIMEOUT_S))
    assert field in [f for f, _ in violations], violations
    await still_serving(stubs)


async def test_heartbeat_ttl_above_the_maximum_is_invalid_argument(stubs: Stubs) -> None:
    violations = await invalid(
        stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=3_600_001), timeout=CALL_TIMEOUT_S)
    )
    assert [f for f, _ in violations] == ["ttl_ms"]
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert not status.dead_man.armed


@pytest.mark.parametrize("ttl_ms", [1, 999])
async def test_heartbeat_ttl_below_the_minimum_is_invalid_argument_and_arms_nothing(
    stubs: Stubs, ttl_ms: int
) -> None:
    # A ttl of 1 ms would be a cancel-all in disguise (issue 12, item 10).
    violations = await invalid(
        stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=ttl_ms), timeout=CALL_TIMEOUT_S)
    )
    assert violations == [("ttl_ms", f"{ttl_ms} is below the minimum 1000 (0 disarms the switch)")]
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert not status.dead_man.armed and status.dead_man.trips == 0


async def test_bad_symbol_filters_are_invalid_argument(stubs: Stubs) -> None:
    calls = {
        "symbol": [
            stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(symbol="XYZ/USDT"), timeout=CALL_TIMEOUT_S),
            stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(symbol="XYZ/USDT"), timeout=CALL_TIMEOUT_S),
            stubs.tf.GetPositions(tf.GetPositionsRequest(symbol="XYZ/USDT"), timeout=CALL_TIMEOUT_S),
        ],
        "symbols[0]": [
            stubs.md.ListInstruments(md.ListInstrumentsRequest(symbols=["XYZ/USDT"]), timeout=CALL_TIMEOUT_S),
            first_message(stubs.tf.StreamExecutions(tf.StreamExecutionsRequest(symbols=["XYZ/USDT"]))),
        ],
    }
    for field, pending in calls.items():
        for call in pending:
            assert [f for f, _ in await invalid(call)] == [field]
    await still_serving(stubs)


@pytest.mark.parametrize(
    "subscriptions, field",
    [
        ([], "subscriptions"),
        ([admin.Subscription(symbol="XYZ/USDT", channel=md.CHANNEL_TRADES)], "subscriptions[0].symbol"),
        ([admin.Subscription(symbol="BTC/USDT")], "subscriptions[0].channel"),
    ],
    ids=["none", "unknown symbol", "no channel"],
)
async def test_bad_subscription_changes_are_invalid_argument(
    stubs: Stubs, subscriptions: list[admin.Subscription], field: str
) -> None:
    for call in (
        stubs.admin.AddSubscriptions(
            admin.AddSubscriptionsRequest(subscriptions=subscriptions), timeout=CALL_TIMEOUT_S
        ),
        stubs.admin.RemoveSubscriptions(
            admin.RemoveSubscriptionsRequest(subscriptions=subscriptions), timeout=CALL_TIMEOUT_S
        ),
    ):
        assert field in [f for f, _ in await invalid(call)]
    listed = await stubs.admin.ListSubscriptions(admin.ListSubscriptionsRequest(), timeout=CALL_TIMEOUT_S)
    assert len(listed.subscriptions) == 12, "a refused change changed the subscriptions"
