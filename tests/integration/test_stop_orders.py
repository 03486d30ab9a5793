"""Stop orders on a real sim venue process: they wait out of the book, trigger on a trade at
their trigger price, and fill; untriggered ones list and cancel like any open order."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from tests.integration.support import CALL_TIMEOUT_S, Executions, Stubs, best_prices, far_bid
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("no_open_orders")]

SYMBOL = "BTC/USDT"
TICK = Decimal("0.01")
SIZE = "0.001"


@pytest.fixture
async def executions(stubs: Stubs) -> AsyncIterator[Executions]:
    watcher = Executions(stubs)
    bid, _ = await best_prices(stubs, SYMBOL)
    await watcher.ready(stubs, SYMBOL, far_bid(bid, TICK), SIZE)
    yield watcher
    await watcher.close()


def _coid(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex[:12]}"


async def test_the_sim_says_it_holds_stop_orders(stubs: Stubs) -> None:
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.capabilities.stop_orders


async def test_a_sell_stop_triggers_on_a_trade_at_its_trigger_and_fills(
    stubs: Stubs, executions: Executions
) -> None:
    bid, _ = await best_prices(stubs, SYMBOL)
    # A trigger well above the bid: the next trade at or under it (ours, below) triggers it.
    trigger = str(bid * 2 - bid // 2)  # 1.5 x the bid, on the tick grid since the bid is
    stop = tf.PlaceOrderRequest(
        symbol=SYMBOL,
        side=common.SIDE_SELL,
        type=tf.ORDER_TYPE_STOP_MARKET,
        size=SIZE,
        trigger_price=trigger,
        client_order_id=_coid("stop"),
    )
    placed = (await stubs.tf.PlaceOrder(stop, timeout=CALL_TIMEOUT_S)).order
    assert (placed.status, placed.type, placed.triggered) == (
        tf.ORDER_STATUS_OPEN,
        tf.ORDER_TYPE_STOP_MARKET,
        False,
    )
    assert Decimal(placed.trigger_price) == Decimal(trigger) and placed.price == ""

    # Any trade prints under the trigger: the synthetic flow's, or this market sell's.
    sell = tf.PlaceOrderRequest(symbol=SYMBOL, side=common.SIDE_SELL, type=tf.ORDER_TYPE_MARKET, size=SIZE)
    await stubs.tf.PlaceOrder(sell, timeout=CALL_TIMEOUT_S)

    seen = await executions.wait_for(placed.order_id, tf.ORDER_STATUS_FILLED)
    assert (seen[0].order.status, seen[0].order.triggered) == (tf.ORDER_STATUS_OPEN, False)
    triggered = [e for e in seen if e.order.triggered]
    assert triggered[0].order.status == tf.ORDER_STATUS_OPEN and not triggered[0].HasField("fill")
    fills = [e.fill for e in seen if e.HasField("fill")]
    assert sum(Decimal(f.size) for f in fills) == Decimal(SIZE)
    assert all(f.liquidity == tf.LIQUIDITY_TAKER and Decimal(f.price) <= Decimal(trigger) for f in fills)
    done = await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=placed.order_id), timeout=CALL_TIMEOUT_S)
    assert (done.order.status, done.order.type, done.order.triggered) == (
        tf.ORDER_STATUS_FILLED,
        tf.ORDER_TYPE_STOP_MARKET,
        True,
    )


async def test_an_untriggered_stop_lists_and_cancels(stubs: Stubs, executions: Executions) -> None:
    bid, ask = await best_prices(stubs, SYMBOL)
    far_up, limit = str(ask * 3), str(ask * 3 + TICK)  # a buy stop far above the market
    request = tf.PlaceOrderRequest(
        symbol=SYMBOL,
        side=common.SIDE_BUY,
        type=tf.ORDER_TYPE_STOP_LIMIT,
        size=SIZE,
        price=limit,
        trigger_price=far_up,
        client_order_id=_coid("stop-limit"),
    )
    placed = (await stubs.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S)).order
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(symbol=SYMBOL), timeout=CALL_TIMEOUT_S)
    mine = [o for o in listed.orders if o.order_id == placed.order_id]
    assert mine and (mine[0].type, Decimal(mine[0].trigger_price)) == (
        tf.ORDER_TYPE_STOP_LIMIT,
        Decimal(far_up),
    )
    assert not mine[0].triggered
    canceled = await stubs.tf.CancelOrder(
        tf.CancelOrderRequest(client_order_id=request.client_order_id), timeout=CALL_TIMEOUT_S
    )
    assert canceled.order.status == tf.ORDER_STATUS_CANCELED and not canceled.order.triggered
    seen = await executions.wait_for(placed.order_id, tf.ORDER_STATUS_CANCELED)
    assert [e.order.status for e in seen] == [tf.ORDER_STATUS_OPEN, tf.ORDER_STATUS_CANCELED]

    again = await stubs.tf.PlaceOrder(
        tf.PlaceOrderRequest(
            symbol=SYMBOL,
            side=common.SIDE_SELL,
            type=tf.ORDER_TYPE_STOP_MARKET,
            size=SIZE,
            trigger_price=str(bid / 2 // TICK * TICK),
        ),
        timeout=CALL_TIMEOUT_S,
    )
    answer = await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(symbol=SYMBOL), timeout=CALL_TIMEOUT_S)
    assert again.order.order_id in [o.order_id for o in answer.orders]
