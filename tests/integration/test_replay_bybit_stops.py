"""Bybit spot stop orders against the replay stand-in, through the real ccxt.pro client.

ccxt sends a spot order with a triggerPrice to POST /v5/order/create as a conditional order
(orderFilter=StopOrder, no triggerDirection or triggerBy: those are for contracts); Bybit holds
it "Untriggered" and sets its direction from the last price when it is placed, refusing no
trigger, so the connector (trademesh/venues/bybit/exchange.py) refuses a stop the last price has already
crossed before sending it. Conditional orders are reached with orderFilter=StopOrder
(trigger=True, trademesh/venues/bybit/spec.py) where Bybit spot cancels; the stand-in holds stops and
never triggers them, so what is tested is the request, the order read back, the listing beside
an ordinary order (once each), the cancels (one, all of them, and the dead-man switch's) and
their "order" pushes on the private stream. The last trade price is the capture's own
(tests/integration/test_replay_bybit.py reads it from the frames' text).
"""

from __future__ import annotations

import re
from decimal import Decimal

import grpc
import pytest

from tests.integration.replay import collect, replay_venue_fixture
from tests.integration.support import CALL_TIMEOUT_S, Venue, limit_order, listening_executions, until
from tests.integration.test_replay_bybit import EXPECTED, SYMBOL
from tests.integration.test_replay_bybit_trading import CREDENTIALS, FAR_BELOW, FILES, SECRET
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
SIZE = "0.001"
LAST = EXPECTED.trades[-1][1]  # the capture's last trade price: the stand-in's once it is played
replay_venue = replay_venue_fixture("bybit", FILES)
# The stand-in's log line for each conditional order it takes: what ccxt sent.
_SENT = re.compile(r"conditional order (\w+) (\w+) orderFilter=StopOrder triggerPrice=(\S+) (.*\))")


def _stop(
    side: common.Side.ValueType, trigger: Decimal | str, price: Decimal | str | None, coid: str = ""
) -> tf.PlaceOrderRequest:
    return tf.PlaceOrderRequest(
        symbol=SYMBOL,
        side=side,
        type=tf.ORDER_TYPE_STOP_MARKET if price is None else tf.ORDER_TYPE_STOP_LIMIT,
        size=SIZE,
        price="" if price is None else str(price),
        trigger_price=str(trigger),
        client_order_id=coid,
    )


async def _tick(replay_venue: Venue) -> Decimal:
    listed = await replay_venue.stubs().md.ListInstruments(
        md.ListInstrumentsRequest(symbols=[SYMBOL]), timeout=CALL_TIMEOUT_S
    )
    return D(listed.instruments[0].tick_size)


async def _open_orders(replay_venue: Venue) -> list[tf.Order]:
    stubs = replay_venue.stubs()
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    return list(listed.orders)


@pytest.mark.replay(env=CREDENTIALS)
async def test_stop_orders_through_ccxt(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.capabilities.stop_orders
    await collect(
        stubs, [SYMBOL], played=replay_venue.log_path
    )  # plays the whole session: the last price is the capture's last
    tick = await _tick(replay_venue)
    executions = await listening_executions(stubs)

    def grid(value: Decimal) -> Decimal:
        return (value // tick) * tick

    # A stop-market sell (a stop-loss), a stop-limit buy, and an ordinary limit order.
    stop_loss = grid(LAST * D("0.8"))
    placed = await stubs.tf.PlaceOrder(
        _stop(common.SIDE_SELL, stop_loss, None, "tm-bybit-stop-1"), timeout=CALL_TIMEOUT_S
    )
    sell = placed.order
    assert (sell.status, sell.type, D(sell.trigger_price), sell.price, D(sell.size)) == (
        tf.ORDER_STATUS_OPEN,
        tf.ORDER_TYPE_STOP_MARKET,
        stop_loss,
        "",
        D(SIZE),
    )
    assert not sell.triggered and sell.client_order_id == "tm-bybit-stop-1"
    # What ccxt sent: a spot conditional order, with no contract-only direction or price type;
    # Bybit (the stand-in) set it to wait for a fall, the trigger being under the last price.
    sent = _SENT.findall(replay_venue.log())
    assert [(side, kind, D(price), rest) for side, kind, price, rest in sent] == [
        ("Sell", "Market", stop_loss, "triggerDirection=- triggerBy=- (held with triggerDirection 2)")
    ]
    trigger, limit = grid(LAST * D("1.2")), grid(LAST * D("1.25"))
    placed = await stubs.tf.PlaceOrder(
        _stop(common.SIDE_BUY, trigger, limit, "tm-bybit-stop-2"), timeout=CALL_TIMEOUT_S
    )
    buy = placed.order
    assert (buy.status, buy.type, D(buy.trigger_price), D(buy.price)) == (
        tf.ORDER_STATUS_OPEN,
        tf.ORDER_TYPE_STOP_LIMIT,
        trigger,
        limit,
    )
    assert [(side, kind, D(price)) for side, kind, price, _ in _SENT.findall(replay_venue.log())][1:] == [
        ("Buy", "Limit", trigger)
    ]
    again = await stubs.tf.PlaceOrder(
        _stop(common.SIDE_BUY, trigger, limit, "tm-bybit-stop-2"), timeout=CALL_TIMEOUT_S
    )
    assert again.duplicate and again.order.order_id == buy.order_id, "110072: the first order wins"
    plain = await stubs.tf.PlaceOrder(
        limit_order(SYMBOL, common.SIDE_BUY, SIZE, FAR_BELOW), timeout=CALL_TIMEOUT_S
    )
    assert plain.order.status == tf.ORDER_STATUS_OPEN

    # Both books in one listing, each order once, each stop with its trigger.
    opened = await _open_orders(replay_venue)
    assert sorted((o.order_id, o.type, o.trigger_price and D(o.trigger_price)) for o in opened) == sorted(
        [
            (sell.order_id, tf.ORDER_TYPE_STOP_MARKET, stop_loss),
            (buy.order_id, tf.ORDER_TYPE_STOP_LIMIT, trigger),
            (plain.order.order_id, tf.ORDER_TYPE_LIMIT, ""),
        ]
    )
    fetched = await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=buy.order_id), timeout=CALL_TIMEOUT_S)
    assert (fetched.order.type, D(fetched.order.trigger_price), D(fetched.order.price)) == (
        tf.ORDER_TYPE_STOP_LIMIT,
        trigger,
        limit,
    )
    by_client = await stubs.tf.GetOrder(
        tf.GetOrderRequest(client_order_id="tm-bybit-stop-1"), timeout=CALL_TIMEOUT_S
    )
    assert (by_client.order.order_id, D(by_client.order.trigger_price)) == (sell.order_id, stop_loss)

    canceled = await stubs.tf.CancelOrder(
        tf.CancelOrderRequest(order_id=sell.order_id), timeout=CALL_TIMEOUT_S
    )
    assert (canceled.order.status, canceled.order.type) == (
        tf.ORDER_STATUS_CANCELED,
        tf.ORDER_TYPE_STOP_MARKET,
    )
    fetched = await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=sell.order_id), timeout=CALL_TIMEOUT_S)
    assert (fetched.order.status, D(fetched.order.trigger_price)) == (tf.ORDER_STATUS_CANCELED, stop_loss)
    seen = await executions.wait_for(sell.order_id, tf.ORDER_STATUS_CANCELED)  # its "order" pushes
    assert [e.order.status for e in seen][:1] == [tf.ORDER_STATUS_OPEN], "the new stop's push came too"
    assert all(
        e.order.type == tf.ORDER_TYPE_STOP_MARKET and D(e.order.trigger_price) == stop_loss for e in seen
    )

    # CancelAllOrders cancels in both books: the waiting stop and the ordinary order.
    answer = await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert sorted(o.order_id for o in answer.orders) == sorted([buy.order_id, plain.order.order_id])
    assert await _open_orders(replay_venue) == []
    seen = await executions.wait_for(buy.order_id, tf.ORDER_STATUS_CANCELED)
    assert all(e.order.type == tf.ORDER_TYPE_STOP_LIMIT and D(e.order.trigger_price) == trigger for e in seen)
    fetched = await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=buy.order_id), timeout=CALL_TIMEOUT_S)
    assert fetched.order.status == tf.ORDER_STATUS_CANCELED
    assert SECRET not in replay_venue.log()


@pytest.mark.replay(env=CREDENTIALS)
async def test_a_stop_the_last_price_has_crossed_is_refused(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    await collect(stubs, [SYMBOL], played=replay_venue.log_path)
    tick = await _tick(replay_venue)
    # Bybit spot would hold these for the opposite move (a sell above the last price waits for
    # a rise): the connector refuses them, and nothing reaches the venue.
    for side, trigger in ((common.SIDE_SELL, LAST), (common.SIDE_SELL, LAST + tick), (common.SIDE_BUY, LAST)):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            placed = await stubs.tf.PlaceOrder(_stop(side, trigger, None), timeout=CALL_TIMEOUT_S)
            pytest.fail(f"placed {placed.order}")
        assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION, refused.value
        last = format(LAST.normalize(), "f")
        assert f"the last price {last}: it would trigger at once" in (refused.value.details() or "")
    assert await _open_orders(replay_venue) == []
    assert "conditional order" not in replay_venue.log()
    # One tick on the waiting side of the last price is taken, as is a buy one tick above it.
    below = await stubs.tf.PlaceOrder(_stop(common.SIDE_SELL, LAST - tick, None), timeout=CALL_TIMEOUT_S)
    above = await stubs.tf.PlaceOrder(_stop(common.SIDE_BUY, LAST + tick, None), timeout=CALL_TIMEOUT_S)
    assert {o.order_id for o in await _open_orders(replay_venue)} == {
        below.order.order_id,
        above.order.order_id,
    }


@pytest.mark.replay(env=CREDENTIALS)
async def test_the_dead_man_switch_cancels_stops(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    await collect(stubs, [SYMBOL], played=replay_venue.log_path)
    tick = await _tick(replay_venue)
    stop = await stubs.tf.PlaceOrder(
        _stop(common.SIDE_SELL, (LAST * D("0.9") // tick) * tick, None), timeout=CALL_TIMEOUT_S
    )
    plain = await stubs.tf.PlaceOrder(
        limit_order(SYMBOL, common.SIDE_BUY, SIZE, FAR_BELOW), timeout=CALL_TIMEOUT_S
    )
    assert {o.order_id for o in await _open_orders(replay_venue)} == {
        stop.order.order_id,
        plain.order.order_id,
    }
    armed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=1_000), timeout=CALL_TIMEOUT_S)
    assert armed.dead_man.armed

    async def all_canceled() -> bool | None:
        return True if not await _open_orders(replay_venue) else None

    await until(all_canceled, 10.0, what="cancel-all after the lapsed heartbeat")
    for order_id in (stop.order.order_id, plain.order.order_id):
        fetched = await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=order_id), timeout=CALL_TIMEOUT_S)
        assert fetched.order.status == tf.ORDER_STATUS_CANCELED
