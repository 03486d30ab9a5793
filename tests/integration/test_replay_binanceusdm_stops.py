"""Binance USD-M stop orders against the replay stand-in, through the real ccxt.pro client.

ccxt 4.5 sends a USD-M stop to Binance's algo service: POST /fapi/v1/algoOrder, algoType
CONDITIONAL, type STOP_MARKET (quantity, triggerPrice) or STOP (also price), workingType
CONTRACT_PRICE (trademesh/venues/binanceusdm/spec.py); the connector lists, reads and cancels them with
trigger=True (/fapi/v1/openAlgoOrders, algoOrder, algoOpenOrders) besides the ordinary orders.
The stand-in refuses what Binance refuses (a stop the market has already crossed: -2021) and
holds stops NEW and untriggered (it never triggers them), so what is tested is the request,
the order read back, the listing beside an ordinary order, the cancels (one, and all of them
by the dead-man switch) and their ALGO_UPDATE events; bad stop fields are refused before the
venue sees them.
"""

from __future__ import annotations

from decimal import Decimal

import grpc
import pytest

from tests.integration.replay import replay_venue_fixture
from tests.integration.support import (
    CALL_TIMEOUT_S,
    Venue,
    best_prices,
    limit_order,
    listening_executions,
    until,
)
from tests.integration.test_replay_binanceusdm import FILES, SECRET
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
SYMBOL = "SUSHI/USDT:USDT"
CREDENTIALS = {"TRADEMESH_BINANCEUSDM_API_KEY": "replay-key", "TRADEMESH_BINANCEUSDM_API_SECRET": SECRET}
replay_venue = replay_venue_fixture("binanceusdm", FILES)


def _stop(
    side: common.Side.ValueType,
    trigger: Decimal | str,
    price: Decimal | str | None,
    coid: str = "",
    reduce_only: bool = False,
) -> tf.PlaceOrderRequest:
    return tf.PlaceOrderRequest(
        symbol=SYMBOL,
        side=side,
        type=tf.ORDER_TYPE_STOP_MARKET if price is None else tf.ORDER_TYPE_STOP_LIMIT,
        size="20",
        price="" if price is None else str(price),
        trigger_price=str(trigger),
        client_order_id=coid,
        reduce_only=reduce_only,
    )


@pytest.mark.replay(env=CREDENTIALS)
async def test_stop_orders_through_ccxt(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.capabilities.stop_orders
    listed = await stubs.md.ListInstruments(
        md.ListInstrumentsRequest(symbols=[SYMBOL]), timeout=CALL_TIMEOUT_S
    )
    tick = D(listed.instruments[0].tick_size)
    bid, ask = await best_prices(stubs, SYMBOL)
    executions = await listening_executions(stubs)

    def grid(value: Decimal) -> Decimal:
        return (value // tick) * tick

    # A reduce-only stop-market sell (a stop-loss), a stop-limit buy, and an ordinary limit order.
    stop_loss = grid(bid * D("0.8"))
    placed = await stubs.tf.PlaceOrder(
        _stop(common.SIDE_SELL, stop_loss, None, "tm-usdm-stop-1", reduce_only=True), timeout=CALL_TIMEOUT_S
    )
    sell = placed.order
    assert (sell.status, sell.type, D(sell.trigger_price), sell.price, sell.reduce_only) == (
        tf.ORDER_STATUS_OPEN,
        tf.ORDER_TYPE_STOP_MARKET,
        stop_loss,
        "",
        True,
    )
    assert not sell.triggered and sell.client_order_id == "tm-usdm-stop-1"
    trigger, limit = grid(ask * D("1.2")), grid(ask * D("1.25"))
    placed = await stubs.tf.PlaceOrder(
        _stop(common.SIDE_BUY, trigger, limit, "tm-usdm-stop-2"), timeout=CALL_TIMEOUT_S
    )
    buy = placed.order
    assert (buy.status, buy.type, D(buy.trigger_price), D(buy.price), buy.reduce_only) == (
        tf.ORDER_STATUS_OPEN,
        tf.ORDER_TYPE_STOP_LIMIT,
        trigger,
        limit,
        False,
    )
    again = await stubs.tf.PlaceOrder(
        _stop(common.SIDE_BUY, trigger, limit, "tm-usdm-stop-2"), timeout=CALL_TIMEOUT_S
    )
    assert again.duplicate and again.order.order_id == buy.order_id, "the client id finds the algo order"
    plain = await stubs.tf.PlaceOrder(
        limit_order(SYMBOL, common.SIDE_BUY, "20", str(grid(bid * D("0.7")))), timeout=CALL_TIMEOUT_S
    )
    assert plain.order.status == tf.ORDER_STATUS_OPEN

    with pytest.raises(grpc.aio.AioRpcError) as refused:  # Binance refuses a stop already crossed
        await stubs.tf.PlaceOrder(_stop(common.SIDE_SELL, grid(ask * 2), None), timeout=CALL_TIMEOUT_S)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "would immediately trigger" in (refused.value.details() or "")

    # Both books in one listing, each stop with its trigger.
    opened = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert {o.order_id: (o.type, o.trigger_price and D(o.trigger_price)) for o in opened.orders} == {
        sell.order_id: (tf.ORDER_TYPE_STOP_MARKET, stop_loss),
        buy.order_id: (tf.ORDER_TYPE_STOP_LIMIT, trigger),
        plain.order.order_id: (tf.ORDER_TYPE_LIMIT, ""),
    }
    fetched = await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=buy.order_id), timeout=CALL_TIMEOUT_S)
    assert (fetched.order.type, D(fetched.order.trigger_price), D(fetched.order.price)) == (
        tf.ORDER_TYPE_STOP_LIMIT,
        trigger,
        limit,
    )
    by_client = await stubs.tf.GetOrder(
        tf.GetOrderRequest(client_order_id="tm-usdm-stop-1"), timeout=CALL_TIMEOUT_S
    )
    assert by_client.order.order_id == sell.order_id and by_client.order.reduce_only

    canceled = await stubs.tf.CancelOrder(
        tf.CancelOrderRequest(order_id=sell.order_id), timeout=CALL_TIMEOUT_S
    )
    assert (canceled.order.status, canceled.order.type) == (
        tf.ORDER_STATUS_CANCELED,
        tf.ORDER_TYPE_STOP_MARKET,
    )
    fetched = await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=sell.order_id), timeout=CALL_TIMEOUT_S)
    assert (fetched.order.status, D(fetched.order.trigger_price)) == (tf.ORDER_STATUS_CANCELED, stop_loss)
    seen = await executions.wait_for(sell.order_id, tf.ORDER_STATUS_CANCELED)  # its ALGO_UPDATE
    assert all(
        e.order.type == tf.ORDER_TYPE_STOP_MARKET and D(e.order.trigger_price) == stop_loss for e in seen
    )

    # The dead-man switch cancels the waiting stop and the ordinary order: both books.
    armed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=1_000), timeout=CALL_TIMEOUT_S)
    assert armed.dead_man.armed

    async def all_canceled() -> bool | None:
        listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
        return True if not listed.orders else None

    await until(all_canceled, 10.0, what="cancel-all after the lapsed heartbeat")
    seen = await executions.wait_for(buy.order_id, tf.ORDER_STATUS_CANCELED)
    assert all(e.order.type == tf.ORDER_TYPE_STOP_LIMIT and D(e.order.trigger_price) == trigger for e in seen)
    fetched = await stubs.tf.GetOrder(
        tf.GetOrderRequest(order_id=plain.order.order_id), timeout=CALL_TIMEOUT_S
    )
    assert fetched.order.status == tf.ORDER_STATUS_CANCELED
    assert SECRET not in replay_venue.log()


# (request, the field its violation names)
BAD_STOPS: dict[str, tuple[tf.PlaceOrderRequest, str]] = {
    "stop-market with a price": (
        tf.PlaceOrderRequest(
            symbol=SYMBOL,
            side=common.SIDE_SELL,
            type=tf.ORDER_TYPE_STOP_MARKET,
            size="20",
            price="0.4",
            trigger_price="0.5",
        ),
        "price",
    ),
    "limit with a trigger": (
        limit_order(SYMBOL, common.SIDE_BUY, "20", "0.4", trigger_price="0.5"),
        "trigger_price",
    ),
    "stop-limit without a price": (
        tf.PlaceOrderRequest(
            symbol=SYMBOL,
            side=common.SIDE_SELL,
            type=tf.ORDER_TYPE_STOP_LIMIT,
            size="20",
            trigger_price="0.5",
        ),
        "price",
    ),
    "stop without a trigger": (_stop(common.SIDE_SELL, "", None), "trigger_price"),
    "negative trigger": (_stop(common.SIDE_SELL, "-0.5", None), "trigger_price"),
    "trigger off tick": (_stop(common.SIDE_SELL, "0.50000001", None), "trigger_price"),
    "stop-market GTC": (
        tf.PlaceOrderRequest(
            symbol=SYMBOL,
            side=common.SIDE_SELL,
            type=tf.ORDER_TYPE_STOP_MARKET,
            size="20",
            trigger_price="0.5",
            time_in_force=tf.TIME_IN_FORCE_GTC,
        ),
        "time_in_force",
    ),
}


@pytest.mark.replay(env=CREDENTIALS)
async def test_bad_stop_fields_are_field_violations(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    for name, (request, field) in BAD_STOPS.items():
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            placed = await stubs.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S)
            pytest.fail(f"{name}: placed {placed.order}")
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (name, refused.value)
        assert field in [f for f, _ in bad_request_violations(refused.value)], (name, refused.value)
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert not listed.orders, "nothing reached the venue"
