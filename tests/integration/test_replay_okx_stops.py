"""OKX stop orders (spot and swaps) against the replay stand-in, through the real ccxt.pro client.

OKX holds stops as algo orders, apart from the other orders (trademesh/venues/okx/spec.py): ccxt places
one with POST /trade/order-algo, ordType "trigger" (triggerPx, orderPx "-1" for a stop-market,
triggerPxType "last"), the client id as algoClOrdId (OkxExchange), and the connector lists,
reads and cancels them with trigger=True (/trade/orders-algo-pending, /trade/order-algo,
/trade/cancel-algos) besides the ordinary orders; their changes come on the business
WebSocket's `orders-algo` channel. A stop the last price has crossed is refused before it
is sent (OKX reads a trigger order's direction from the last price: it would wait for the
opposite move). The stand-in logs each algo placement's body as received
and holds stops live, untriggered, so what is tested is the request, the order read back, the
duplicate found by its client id, the listing beside an ordinary order, the cancels (one, and
all of them by the dead-man switch) and their pushes as executions.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest

from tests.integration.replay import capture_files, running_replay_venue
from tests.integration.support import (
    CALL_TIMEOUT_S,
    Venue,
    best_prices,
    far_bid,
    limit_order,
    listening_executions,
    until,
)
from tests.integration.test_replay_okx import VENUES
from tests.integration.test_replay_okx_trading import CREDENTIALS, Market, market_of
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
_PLACED = "replay: OKX order-algo "


@pytest.fixture(params=list(VENUES))
async def replay_venue(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[tuple[Market, Venue]]:
    name = request.param
    async with running_replay_venue(tmp_path, request, name, capture_files(VENUES[name][0])) as venue:
        yield market_of(name), venue


def _stop(
    market: Market,
    side: common.Side.ValueType,
    trigger: Decimal,
    price: Decimal | None,
    coid: str,
    reduce_only: bool = False,
) -> tf.PlaceOrderRequest:
    return tf.PlaceOrderRequest(
        symbol=market.symbol,
        side=side,
        type=tf.ORDER_TYPE_STOP_MARKET if price is None else tf.ORDER_TYPE_STOP_LIMIT,
        size=market.size,
        price="" if price is None else str(price),
        trigger_price=str(trigger),
        client_order_id=coid,
        reduce_only=reduce_only,
    )


def placed_bodies(venue: Venue) -> dict[str, dict[str, Any]]:
    """The bodies of POST /trade/order-algo the stand-in received, by algoClOrdId."""
    bodies = [json.loads(line.split(_PLACED, 1)[1]) for line in venue.log().splitlines() if _PLACED in line]
    return {str(body.get("algoClOrdId")): body for body in bodies}


@pytest.mark.replay(env=CREDENTIALS)
async def test_stop_orders_through_ccxt(replay_venue: tuple[Market, Venue]) -> None:
    market, venue = replay_venue
    swap = market.inst_type == "SWAP"
    stubs = venue.stubs()
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.capabilities.stop_orders
    bid, ask = await best_prices(stubs, market.symbol)
    executions = await listening_executions(stubs)

    def grid(value: Decimal) -> Decimal:
        return (value // market.tick) * market.tick

    # A stop-market sell (reduce-only on swaps: the Inspector's stop-loss), a stop-limit buy,
    # and an ordinary limit order.
    stop_loss = grid(bid * D("0.8"))
    placed = await stubs.tf.PlaceOrder(
        _stop(market, common.SIDE_SELL, stop_loss, None, "tmokxstop1", reduce_only=swap),
        timeout=CALL_TIMEOUT_S,
    )
    sell = placed.order
    assert (sell.status, sell.type, D(sell.trigger_price), sell.price, sell.reduce_only) == (
        tf.ORDER_STATUS_OPEN,
        tf.ORDER_TYPE_STOP_MARKET,
        stop_loss,
        "",
        swap,
    )
    assert (sell.client_order_id, D(sell.size), sell.triggered) == ("tmokxstop1", D(market.size), False)
    trigger, limit = grid(ask * D("1.2")), grid(ask * D("1.25"))
    placed = await stubs.tf.PlaceOrder(
        _stop(market, common.SIDE_BUY, trigger, limit, "tmokxstop2"), timeout=CALL_TIMEOUT_S
    )
    buy = placed.order
    assert (buy.status, buy.type, D(buy.trigger_price), D(buy.price), buy.client_order_id) == (
        tf.ORDER_STATUS_OPEN,
        tf.ORDER_TYPE_STOP_LIMIT,
        trigger,
        limit,
        "tmokxstop2",
    )

    # What reached OKX: trigger orders on the algo endpoint, the client id as algoClOrdId.
    bodies = placed_bodies(venue)
    assert set(bodies) == {"tmokxstop1", "tmokxstop2"}
    for body in bodies.values():
        assert (body["ordType"], body["triggerPxType"], body["instId"]) == (
            "trigger",
            "last",
            VENUES[market.name][1],
        )
        assert body["tdMode"] == ("cross" if swap else "cash") and "clOrdId" not in body
    first, second = bodies["tmokxstop1"], bodies["tmokxstop2"]
    assert (first["side"], D(first["triggerPx"]), first["orderPx"], D(first["sz"])) == (
        "sell",
        stop_loss,
        "-1",
        D(market.size),
    )
    assert bool(first.get("reduceOnly")) is swap
    assert (second["side"], D(second["triggerPx"]), D(second["orderPx"])) == ("buy", trigger, limit)

    again = await stubs.tf.PlaceOrder(
        _stop(market, common.SIDE_BUY, trigger, limit, "tmokxstop2"), timeout=CALL_TIMEOUT_S
    )
    assert again.duplicate and again.order.order_id == buy.order_id, "the client id finds the algo order"
    assert len(placed_bodies(venue)) == 2, "the duplicate never reached the venue"
    plain = await stubs.tf.PlaceOrder(
        limit_order(market.symbol, common.SIDE_BUY, market.size, far_bid(bid, market.tick)),
        timeout=CALL_TIMEOUT_S,
    )
    assert plain.order.status == tf.ORDER_STATUS_OPEN

    # A stop the last price has crossed would wait at OKX for the opposite move: refused before
    # it is sent (the last price from GET /market/ticker).
    for side, crossed in ((common.SIDE_SELL, grid(ask * 2)), (common.SIDE_BUY, grid(bid / 2))):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stubs.tf.PlaceOrder(
                _stop(market, side, crossed, None, "tmokxcrossed"), timeout=CALL_TIMEOUT_S
            )
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "it would trigger at once" in (refused.value.details() or "")
    assert len(placed_bodies(venue)) == 2, "the crossed stops never reached the venue"

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
        tf.GetOrderRequest(client_order_id="tmokxstop1"), timeout=CALL_TIMEOUT_S
    )
    assert (by_client.order.order_id, by_client.order.reduce_only) == (sell.order_id, swap)

    canceled = await stubs.tf.CancelOrder(
        tf.CancelOrderRequest(order_id=sell.order_id), timeout=CALL_TIMEOUT_S
    )
    assert (canceled.order.status, canceled.order.type, D(canceled.order.trigger_price)) == (
        tf.ORDER_STATUS_CANCELED,
        tf.ORDER_TYPE_STOP_MARKET,
        stop_loss,
    )
    fetched = await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=sell.order_id), timeout=CALL_TIMEOUT_S)
    assert (fetched.order.status, D(fetched.order.trigger_price)) == (tf.ORDER_STATUS_CANCELED, stop_loss)
    seen = await executions.wait_for(sell.order_id, tf.ORDER_STATUS_CANCELED)  # its orders-algo push
    assert all(
        e.order.type == tf.ORDER_TYPE_STOP_MARKET and D(e.order.trigger_price) == stop_loss for e in seen
    )
    assert seen[-1].order.client_order_id == "tmokxstop1"
    # The stops' changes are watched on their own channel (the REST answers report them too;
    # tests/unit/test_okx_stops.py follows a push into what the connector reads).
    assert "replay: OKX subscribe orders-algo:ANY" in venue.log()

    # The dead-man switch (CancelAllOrders) cancels the waiting stop and the ordinary order: both books.
    armed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=1_000), timeout=CALL_TIMEOUT_S)
    assert armed.dead_man.armed

    async def all_canceled() -> bool | None:
        listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
        return True if not listed.orders else None

    await until(all_canceled, 10.0, what="cancel-all after the lapsed heartbeat")
    seen = await executions.wait_for(buy.order_id, tf.ORDER_STATUS_CANCELED)
    assert all(e.order.type == tf.ORDER_TYPE_STOP_LIMIT and D(e.order.trigger_price) == trigger for e in seen)
    for order_id in (buy.order_id, plain.order.order_id):
        fetched = await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=order_id), timeout=CALL_TIMEOUT_S)
        assert fetched.order.status == tf.ORDER_STATUS_CANCELED, order_id
    assert "replay-api_secret" not in venue.log()


@pytest.mark.replay(env=CREDENTIALS)
async def test_cancel_all_orders_cancels_the_stops_too(replay_venue: tuple[Market, Venue]) -> None:
    market, venue = replay_venue
    stubs = venue.stubs()
    bid, _ = await best_prices(stubs, market.symbol)
    trigger = (bid * D("0.8") // market.tick) * market.tick
    stop = await stubs.tf.PlaceOrder(
        _stop(market, common.SIDE_SELL, trigger, None, "tmokxstop3"), timeout=CALL_TIMEOUT_S
    )
    plain = await stubs.tf.PlaceOrder(
        limit_order(market.symbol, common.SIDE_BUY, market.size, far_bid(bid, market.tick)),
        timeout=CALL_TIMEOUT_S,
    )
    done = await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert {o.order_id: o.status for o in done.orders} == {
        stop.order.order_id: tf.ORDER_STATUS_CANCELED,
        plain.order.order_id: tf.ORDER_STATUS_CANCELED,
    }
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert list(listed.orders) == []
    fetched = await stubs.tf.GetOrder(
        tf.GetOrderRequest(order_id=stop.order.order_id), timeout=CALL_TIMEOUT_S
    )
    assert (fetched.order.status, D(fetched.order.trigger_price)) == (tf.ORDER_STATUS_CANCELED, trigger)
