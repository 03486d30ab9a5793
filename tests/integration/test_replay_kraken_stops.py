"""Kraken stop orders against the replay stand-in, through the real ccxt.pro client.

ccxt sends a stop as AddOrder ordertype stop-loss (price = the trigger) or stop-loss-limit
(price2 = the limit) with trigger=last (trademesh/venues/kraken/spec.py); the stand-in refuses any
other ordertype or trigger and holds stops open and untriggered (it never triggers them), so
what is tested is the request, the order read back, the listing and the cancels.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.integration.replay import replay_venue_fixture
from tests.integration.support import CALL_TIMEOUT_S, Venue, listening_executions, open_order_ids
from tests.integration.test_replay_kraken import FILES
from tests.integration.test_replay_kraken_trading import ASKS, BIDS, CREDENTIALS, SIZE, SYMBOL, TICK
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
replay_venue = replay_venue_fixture("kraken", FILES)


def _on_grid(price: Decimal) -> str:
    return str((price // TICK) * TICK)


@pytest.mark.replay(env=CREDENTIALS)
async def test_stop_orders_rest_list_and_cancel_through_ccxt(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.capabilities.stop_orders, "Kraken holds stop orders natively"
    executions = await listening_executions(replay_venue.stubs())

    stop_loss = _on_grid(max(BIDS) * D("0.8"))  # a sell stop under the market
    stop_buy, limit = _on_grid(min(ASKS) * D("1.2")), _on_grid(min(ASKS) * D("1.21"))
    sell = tf.PlaceOrderRequest(
        symbol=SYMBOL,
        side=common.SIDE_SELL,
        type=tf.ORDER_TYPE_STOP_MARKET,
        size=str(SIZE),
        trigger_price=stop_loss,
        client_order_id="tm-kraken-stop-1",
    )
    buy = tf.PlaceOrderRequest(
        symbol=SYMBOL,
        side=common.SIDE_BUY,
        type=tf.ORDER_TYPE_STOP_LIMIT,
        size=str(SIZE),
        price=limit,
        trigger_price=stop_buy,
        client_order_id="tm-kraken-stop-2",
    )
    first = (await stubs.tf.PlaceOrder(sell, timeout=CALL_TIMEOUT_S)).order
    assert (first.status, first.type, D(first.trigger_price)) == (
        tf.ORDER_STATUS_OPEN,
        tf.ORDER_TYPE_STOP_MARKET,
        D(stop_loss),
    )
    assert first.price == "" and not first.triggered and D(first.size) == SIZE
    second = (await stubs.tf.PlaceOrder(buy, timeout=CALL_TIMEOUT_S)).order
    assert (second.type, D(second.price), D(second.trigger_price)) == (
        tf.ORDER_TYPE_STOP_LIMIT,
        D(limit),
        D(stop_buy),
    )
    again = await stubs.tf.PlaceOrder(sell, timeout=CALL_TIMEOUT_S)
    assert again.duplicate and again.order.order_id == first.order_id

    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(symbol=SYMBOL), timeout=CALL_TIMEOUT_S)
    by_id = {o.order_id: o for o in listed.orders}
    assert sorted(by_id) == sorted([first.order_id, second.order_id])
    assert by_id[first.order_id].type == tf.ORDER_TYPE_STOP_MARKET
    assert D(by_id[second.order_id].trigger_price) == D(stop_buy)

    for order in (first, second):
        seen = await executions.wait_for(order.order_id, tf.ORDER_STATUS_OPEN)
        for execution in seen:  # the REST answer's and the private stream's alike: a stop
            assert execution.order.type == order.type
            assert D(execution.order.trigger_price) == D(order.trigger_price)

    canceled = await stubs.tf.CancelOrder(
        tf.CancelOrderRequest(client_order_id="tm-kraken-stop-1"), timeout=CALL_TIMEOUT_S
    )
    assert canceled.order.status == tf.ORDER_STATUS_CANCELED
    answer = await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert [o.order_id for o in answer.orders] == [second.order_id]
    assert await open_order_ids(replay_venue.stubs()) == []
