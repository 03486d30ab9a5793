"""Binance spot stop orders against the replay stand-in, through the real ccxt.pro client.

ccxt sends a stop as POST /api/v3/order type STOP_LOSS (quantity, stopPrice, no timeInForce) or
STOP_LOSS_LIMIT (price and timeInForce too) (trademesh/venues/binance/spec.py); the stand-in refuses
what Binance refuses (a missing stopPrice, a timeInForce on STOP_LOSS, a stop the market has
already crossed) and holds stops NEW and untriggered (it never triggers them), so what is
tested is the request, the order read back, the listing and the cancels.
"""

from __future__ import annotations

from decimal import Decimal

import grpc
import pytest

from tests.integration.replay import replay_venue_fixture
from tests.integration.support import CALL_TIMEOUT_S, Venue, best_prices, listening_executions, until
from tests.integration.test_replay_binance import FILES, SECRET
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
SYMBOL = "NKN/USDT"
CREDENTIALS = {"TRADEMESH_BINANCE_API_KEY": "replay-key", "TRADEMESH_BINANCE_API_SECRET": SECRET}
replay_venue = replay_venue_fixture("binance", FILES)


def _stop(
    side: common.Side.ValueType, trigger: Decimal, price: Decimal | None, coid: str
) -> tf.PlaceOrderRequest:
    return tf.PlaceOrderRequest(
        symbol=SYMBOL,
        side=side,
        type=tf.ORDER_TYPE_STOP_MARKET if price is None else tf.ORDER_TYPE_STOP_LIMIT,
        size="100",
        price="" if price is None else str(price),
        trigger_price=str(trigger),
        client_order_id=coid,
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

    stop_loss, floor = grid(bid * D("0.8")), grid(bid * D("0.75"))
    placed = await stubs.tf.PlaceOrder(
        _stop(common.SIDE_SELL, stop_loss, floor, "tm-stop-1"), timeout=CALL_TIMEOUT_S
    )
    sell = placed.order
    assert (sell.status, sell.type, D(sell.trigger_price), D(sell.price)) == (
        tf.ORDER_STATUS_OPEN,
        tf.ORDER_TYPE_STOP_LIMIT,
        stop_loss,
        floor,
    )
    assert not sell.triggered
    trigger, limit = grid(ask * D("1.2")), grid(ask * D("1.25"))
    placed = await stubs.tf.PlaceOrder(
        _stop(common.SIDE_BUY, trigger, limit, "tm-stop-2"), timeout=CALL_TIMEOUT_S
    )
    buy = placed.order
    assert (buy.type, D(buy.trigger_price), D(buy.price)) == (tf.ORDER_TYPE_STOP_LIMIT, trigger, limit)

    # The recorded exchangeInfo lists no STOP_LOSS for the symbol (today's Binance lists it for
    # most): ccxt refuses a stop-market there.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.tf.PlaceOrder(
            _stop(common.SIDE_SELL, stop_loss, None, "tm-stop-3"), timeout=CALL_TIMEOUT_S
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "not allowed" in (refused.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as refused:  # Binance refuses a stop already crossed
        crossed = _stop(common.SIDE_SELL, grid(ask * 2), grid(ask * 2), "tm-stop-4")
        await stubs.tf.PlaceOrder(crossed, timeout=CALL_TIMEOUT_S)
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "would trigger immediately" in (refused.value.details() or "")

    opened = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert {o.order_id: (o.type, D(o.trigger_price)) for o in opened.orders} == {
        sell.order_id: (tf.ORDER_TYPE_STOP_LIMIT, stop_loss),
        buy.order_id: (tf.ORDER_TYPE_STOP_LIMIT, trigger),
    }
    canceled = await stubs.tf.CancelOrder(
        tf.CancelOrderRequest(order_id=sell.order_id), timeout=CALL_TIMEOUT_S
    )
    assert canceled.order.status == tf.ORDER_STATUS_CANCELED

    # The dead-man switch cancels a waiting stop like any open order.
    armed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=1_000), timeout=CALL_TIMEOUT_S)
    assert armed.dead_man.armed

    async def all_canceled() -> bool | None:
        listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
        return True if not listed.orders else None

    await until(all_canceled, 10.0, what="cancel-all after the lapsed heartbeat")
    for order in (sell, buy):
        seen = await executions.wait_for(order.order_id, tf.ORDER_STATUS_CANCELED)
        assert all(e.order.type == order.type and e.order.trigger_price for e in seen), seen
