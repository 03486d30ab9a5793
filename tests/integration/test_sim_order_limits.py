"""The sim venue's limits on orders, over gRPC: the price band and the window of closed orders.

(Issue 12, item 16.) A sell at 1e30 no longer rests on the book: it is INVALID_ARGUMENT with
a field violation on `price` naming the band. Closed orders are kept for a bounded window
(`closed_orders_kept`); an order older than the window answers NOT_FOUND and its
client_order_id places a new order.
"""

from __future__ import annotations

from decimal import Decimal

import grpc
import pytest

from tests.integration.support import CALL_TIMEOUT_S, Stubs, VenueFactory, best_prices, limit_order
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = pytest.mark.integration

KEPT = 100


async def place_and_cancel(stubs: Stubs, price: str, client_order_id: str) -> str:
    request = limit_order("BTC/USDT", common.SIDE_BUY, "0.001", price, client_order_id=client_order_id)
    placed = await stubs.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S)
    await stubs.tf.CancelOrder(tf.CancelOrderRequest(order_id=placed.order.order_id), timeout=CALL_TIMEOUT_S)
    return placed.order.order_id


@pytest.mark.usefixtures("no_open_orders")
async def test_a_sell_far_above_the_market_is_refused_with_the_band_on_price(stubs: Stubs) -> None:
    _, ask = await best_prices(stubs, "BTC/USDT")
    absurd = "1" + "0" * 30
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stubs.tf.PlaceOrder(
            limit_order("BTC/USDT", common.SIDE_SELL, "0.001", absurd), timeout=CALL_TIMEOUT_S
        )
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    ((field, description),) = bad_request_violations(error.value)
    assert field == "price"
    assert description.startswith(f"{absurd} is outside the price band ")
    assert "the book's mid, divided or multiplied by 5)" in description
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert list(listed.orders) == []
    # Inside the band the same sell rests.
    inside = str((ask * 4).quantize(Decimal("0.01")))
    rested = await stubs.tf.PlaceOrder(
        limit_order("BTC/USDT", common.SIDE_SELL, "0.001", inside), timeout=CALL_TIMEOUT_S
    )
    assert rested.order.status == tf.ORDER_STATUS_OPEN


async def test_an_order_closed_before_the_window_is_not_found_and_its_id_is_free(
    fresh_venue: VenueFactory,
) -> None:
    stubs = fresh_venue(f"closed_orders_kept = {KEPT}\n").stubs()
    bid, _ = await best_prices(stubs, "BTC/USDT")
    price = str(bid - 1000)
    ids = [await place_and_cancel(stubs, price, f"w-{n}") for n in range(KEPT + 20)]

    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=ids[0]), timeout=CALL_TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    assert f"the sim keeps open orders and the last {KEPT} closed ones" in (error.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stubs.tf.GetOrder(tf.GetOrderRequest(client_order_id="w-19"), timeout=CALL_TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.NOT_FOUND

    kept = await stubs.tf.GetOrder(tf.GetOrderRequest(client_order_id="w-20"), timeout=CALL_TIMEOUT_S)
    assert (kept.order.order_id, kept.order.status) == (ids[20], tf.ORDER_STATUS_CANCELED)
    again = limit_order("BTC/USDT", common.SIDE_BUY, "0.001", price, client_order_id="w-20")
    duplicate = await stubs.tf.PlaceOrder(again, timeout=CALL_TIMEOUT_S)
    assert duplicate.duplicate and duplicate.order.order_id == ids[20]
    # Past the window the id is free: a new order.
    reused = limit_order("BTC/USDT", common.SIDE_BUY, "0.001", price, client_order_id="w-0")
    placed = await stubs.tf.PlaceOrder(reused, timeout=CALL_TIMEOUT_S)
    assert not placed.duplicate and placed.order.order_id not in ids
    assert placed.order.status == tf.ORDER_STATUS_OPEN
