"""Bybit spot (unified account) TradeFlow against the replay stand-in, through the real ccxt client.

The stand-in keeps an order store in Bybit's v5 formats
(trademesh/venues/bybit/standin/order_store.py) and pushes "order" and "execution" messages
on the private WebSocket. Expected fill prices come from the capture's own book
(tests/integration/test_replay_bybit.py computes it from the frames' text, independently of
the stand-in); fees from Bybit's published 0.1 % spot taker rate.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from tests.integration.replay import capture_files, collect, replay_venue_fixture
from tests.integration.support import (
    CALL_TIMEOUT_S,
    Executions,
    Venue,
    limit_order,
    listening_executions,
    open_order_ids,
    until,
)
from tests.integration.test_replay_bybit import EXPECTED, SYMBOL
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
FILES = capture_files("BYBIT")
SECRET = "replay-bybit-secret-4c1e"
CREDENTIALS = {"TRADEMESH_BYBIT_API_KEY": "replay-key", "TRADEMESH_BYBIT_API_SECRET": SECRET}
TAKER_FEE = D("0.001")  # Bybit's spot taker rate for a regular account
FAR_BELOW = "50000"  # a bid far under the recorded market (about 91,250): it rests

replay_venue = replay_venue_fixture("bybit", FILES)


@pytest.mark.replay(env=CREDENTIALS)
async def test_orders_through_ccxt(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    executions = await listening_executions(replay_venue.stubs())
    order = limit_order(SYMBOL, common.SIDE_BUY, "0.001", FAR_BELOW, client_order_id="tm-bybit-1")
    first = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert first.order.status == tf.ORDER_STATUS_OPEN and not first.duplicate
    assert (first.order.client_order_id, D(first.order.size), D(first.order.price)) == (
        "tm-bybit-1",
        D("0.001"),
        D(FAR_BELOW),
    )
    again = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert again.duplicate and again.order.order_id == first.order.order_id, "110072: the first order wins"
    assert sorted(await open_order_ids(replay_venue.stubs())) == [first.order.order_id]
    balances = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    assert {b.asset: (D(b.free), D(b.locked)) for b in balances.balances} == {
        "USDT": (D(100000), D(0)),
        "BTC": (D(2), D(0)),
    }

    canceled = await stubs.tf.CancelOrder(
        tf.CancelOrderRequest(client_order_id="tm-bybit-1"), timeout=CALL_TIMEOUT_S
    )
    assert canceled.order.order_id == first.order.order_id
    assert canceled.order.status == tf.ORDER_STATUS_CANCELED
    assert sorted(await open_order_ids(replay_venue.stubs())) == []

    placed = [
        await stubs.tf.PlaceOrder(
            limit_order(SYMBOL, common.SIDE_BUY, "0.001", price, client_order_id=f"tm-bybit-all-{n}"),
            timeout=CALL_TIMEOUT_S,
        )
        for n, price in enumerate(["50000", "50001.5"])
    ]
    ids = sorted(p.order.order_id for p in placed)
    assert sorted(await open_order_ids(replay_venue.stubs())) == ids
    answer = await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert sorted(o.order_id for o in answer.orders) == ids
    assert sorted(await open_order_ids(replay_venue.stubs())) == []
    for order_id in [first.order.order_id, *ids]:
        await executions.wait_for(order_id, tf.ORDER_STATUS_OPEN)
        await executions.wait_for(order_id, tf.ORDER_STATUS_CANCELED)
    assert SECRET not in replay_venue.log()


@pytest.mark.replay(env=CREDENTIALS)
async def test_bybits_own_switch_is_never_armed_since_it_would_take_the_protection(
    replay_venue: Venue,
) -> None:
    """Bybit's disconnection protection cancels every order of the product, a stop-loss too, and
    cannot be switched off over the API (timeWindow 0 is refused): once set, it would take the
    protection whenever the private connection dropped. The runtime's own timer is the switch."""
    stubs = replay_venue.stubs()
    armed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=2_000), timeout=CALL_TIMEOUT_S)
    assert armed.dead_man.armed and armed.dead_man.ttl_ms == 2_000
    disarmed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=0), timeout=CALL_TIMEOUT_S)
    assert not disarmed.dead_man.armed
    assert "disconnected-cancel-all" not in replay_venue.log()
    native = armed.dead_man.native
    assert native.available and not native.armed and native.detail.startswith("never armed"), native


@pytest.mark.replay(env=CREDENTIALS)
async def test_a_fill_comes_over_the_private_stream_once(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    executions = await listening_executions(replay_venue.stubs())
    await collect(
        stubs, [SYMBOL], played=replay_venue.log_path
    )  # plays the whole session: the stand-in's book is the capture's last
    best_bid, best_ask = max(EXPECTED.bids), min(EXPECTED.asks)
    # A limit buy far above the market crosses the book and fills at once at its best ask.
    size = D("0.002")
    order = limit_order(SYMBOL, common.SIDE_BUY, str(size), str(best_ask + 1000), client_order_id="tm-fill-1")
    placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_FILLED
    assert D(placed.order.average_fill_price) == best_ask and D(placed.order.filled_size) == size
    fill = await _the_fill(executions, placed.order.order_id)
    assert (fill.client_order_id, fill.symbol, fill.side) == ("tm-fill-1", SYMBOL, common.SIDE_BUY)
    assert (D(fill.price), D(fill.size)) == (best_ask, size)
    # Bybit charges a spot buyer's fee in the coin received.
    assert (D(fill.fee), fill.fee_asset) == (size * TAKER_FEE, "BTC")
    assert fill.liquidity == tf.LIQUIDITY_TAKER

    sell = tf.PlaceOrderRequest(
        symbol=SYMBOL,
        side=common.SIDE_SELL,
        type=tf.ORDER_TYPE_MARKET,
        size="0.001",
        client_order_id="tm-fill-2",
    )
    sold = await stubs.tf.PlaceOrder(sell, timeout=CALL_TIMEOUT_S)
    assert sold.order.status == tf.ORDER_STATUS_FILLED
    fill = await _the_fill(executions, sold.order.order_id)
    assert (D(fill.price), D(fill.size), fill.side) == (best_bid, D("0.001"), common.SIDE_SELL)
    assert (D(fill.fee), fill.fee_asset) == (best_bid * D("0.001") * TAKER_FEE, "USDT")

    await asyncio.sleep(0.5)  # any late duplicate would have arrived by now
    for order_id in (placed.order.order_id, sold.order.order_id):
        fills = [e for e in executions.of(order_id) if e.HasField("fill")]
        assert len(fills) == 1, "each fill once, though REST and the private stream both tell of it"
        assert fills[0].order.status == tf.ORDER_STATUS_FILLED


async def _the_fill(executions: Executions, order_id: str) -> tf.Fill:
    async def found() -> tf.Execution | None:
        return next((e for e in executions.of(order_id) if e.HasField("fill")), None)

    execution = await until(found, CALL_TIMEOUT_S, what="a fill on the private stream")
    return execution.fill


@pytest.mark.replay(env=CREDENTIALS, faults=["slow@1"], config="request_timeout_s = 1\n")
async def test_an_order_whose_answer_times_out_is_found_not_placed_twice(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    order = limit_order(SYMBOL, common.SIDE_BUY, "0.001", FAR_BELOW, client_order_id="tm-slow-1")
    # Bybit takes the order but answers after 3 s, past the 1 s timeout: the connector asks for
    # the order by its orderLinkId before retrying, and finds it.
    placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert placed.order.client_order_id == "tm-slow-1" and placed.order.status == tf.ORDER_STATUS_OPEN
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert [o.client_order_id for o in listed.orders] == ["tm-slow-1"], "exactly one order at the venue"
    assert "no clear answer" in replay_venue.log()
