"""Coinbase Advanced Trade trading through the real ccxt client against the stand-in's order store.

Credentials are a throwaway EC key (PEM) and an API key name, as Coinbase's cloud keys are:
ccxt signs a JWT with them for REST and for the private `user` channel (the stand-in does
not verify it). Expected fill values come from the capture's text, computed in
tests.integration.test_replay_coinbase, not from the stand-in.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.integration.replay import collect, replay_venue_fixture
from tests.integration.support import (
    CALL_TIMEOUT_S,
    Stubs,
    Venue,
    limit_order,
    listening_executions,
    until,
)
from tests.integration.test_replay_coinbase import EXPECTED, FILES, SYMBOL
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
_KEY = ec.generate_private_key(ec.SECP256R1())
SECRET = _KEY.private_bytes(
    serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
).decode()
CREDENTIALS = {
    "TRADEMESH_COINBASE_API_KEY": "organizations/replay-org/apiKeys/replay-key",
    "TRADEMESH_COINBASE_API_SECRET": SECRET,
}
SECRET_LINE = SECRET.splitlines()[1]  # a line of the key body: must never be logged

replay_venue = replay_venue_fixture("coinbase", FILES)


async def no_open_orders(stubs: Stubs) -> bool | None:
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    return True if not listed.orders else None


@pytest.mark.replay(env=CREDENTIALS)
async def test_orders_through_ccxt(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    order = limit_order(SYMBOL, common.SIDE_BUY, "0.01", "50000", client_order_id="tm-cb-1")
    first = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert first.order.status == tf.ORDER_STATUS_OPEN and first.order.client_order_id == "tm-cb-1"
    assert (D(first.order.size), D(first.order.price)) == (D("0.01"), D(50000))
    # Coinbase answers a repeated client_order_id with the order that holds it.
    again = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert again.duplicate and again.order.order_id == first.order.order_id
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert [o.order_id for o in listed.orders] == [first.order.order_id]
    balances = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
    assert {b.asset: D(b.free) for b in balances.balances} == {"USD": D(100000), "BTC": D(2)}

    canceled = await stubs.tf.CancelOrder(
        tf.CancelOrderRequest(client_order_id="tm-cb-1"), timeout=CALL_TIMEOUT_S
    )
    assert canceled.order.status == tf.ORDER_STATUS_CANCELED
    fetched = await stubs.tf.GetOrder(
        tf.GetOrderRequest(order_id=first.order.order_id), timeout=CALL_TIMEOUT_S
    )
    assert fetched.order.status == tf.ORDER_STATUS_CANCELED

    for n in range(2):
        await stubs.tf.PlaceOrder(
            limit_order(SYMBOL, common.SIDE_SELL, "0.01", str(200000 + n)), timeout=CALL_TIMEOUT_S
        )
    all_canceled = await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert len(all_canceled.orders) == 2
    assert await no_open_orders(stubs)
    assert SECRET_LINE not in replay_venue.log()


@pytest.mark.replay(env=CREDENTIALS)
async def test_the_dead_man_switch_cancels_all(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    placed = await stubs.tf.PlaceOrder(
        limit_order(SYMBOL, common.SIDE_BUY, "0.01", "40000", client_order_id="tm-cb-dm"),
        timeout=CALL_TIMEOUT_S,
    )
    # Coinbase has no cancel-after: the runtime's timer cancels all.
    armed = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=1_000), timeout=CALL_TIMEOUT_S)
    assert armed.dead_man.armed
    await until(lambda: no_open_orders(stubs), 10.0, what="cancel-all after the lapsed heartbeat")
    fetched = await stubs.tf.GetOrder(
        tf.GetOrderRequest(order_id=placed.order.order_id), timeout=CALL_TIMEOUT_S
    )
    assert fetched.order.status == tf.ORDER_STATUS_CANCELED


@pytest.mark.replay(env=CREDENTIALS, faults=["slow@1"], config="request_timeout_s = 1\n")
async def test_an_order_whose_answer_times_out_is_found_not_placed_twice(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    order = limit_order(SYMBOL, common.SIDE_BUY, "0.01", "50000", client_order_id="tm-cb-slow")
    placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert placed.order.client_order_id == "tm-cb-slow" and placed.order.status == tf.ORDER_STATUS_OPEN
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert [o.client_order_id for o in listed.orders] == ["tm-cb-slow"], "exactly one order at the venue"
    assert "no clear answer" in replay_venue.log()


@pytest.mark.replay(env=CREDENTIALS)
async def test_a_fill_comes_over_the_user_channel_once(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    executions = await listening_executions(stubs)
    # Play the whole capture: the stand-in's book is then the capture's last book.
    await collect(stubs, [SYMBOL], channels=[md.CHANNEL_BOOK], played=replay_venue.log_path)
    best_ask = min(EXPECTED.asks)
    order = limit_order(SYMBOL, common.SIDE_BUY, "0.001", str(best_ask * 2), client_order_id="tm-cb-fill")
    placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_FILLED
    assert D(placed.order.average_fill_price) == best_ask

    async def the_fill() -> tf.Execution | None:
        return next((e for e in executions.of(placed.order.order_id) if e.HasField("fill")), None)

    execution = await until(the_fill, CALL_TIMEOUT_S, what="a fill on the user channel")
    fill = execution.fill
    assert (fill.client_order_id, fill.symbol, fill.side) == ("tm-cb-fill", SYMBOL, common.SIDE_BUY)
    assert (D(fill.price), D(fill.size)) == (best_ask, D("0.001"))
    # The stand-in's flat 0.6 % fee in the quote currency.
    assert (D(fill.fee), fill.fee_asset) == (best_ask * D("0.001") * D("0.006"), "USD")
    assert execution.order.status == tf.ORDER_STATUS_FILLED
    await asyncio.sleep(0.5)  # any late duplicate would have arrived by now
    fills = [e for e in executions.of(placed.order.order_id) if e.HasField("fill")]
    assert len(fills) == 1, "each fill once"
    assert SECRET_LINE not in replay_venue.log()


@pytest.mark.replay(env=CREDENTIALS)
async def test_a_market_buy_fills_the_size_asked(replay_venue: Venue) -> None:
    """A market buy goes out as market_market_ioc with base_size (the size asked, in the base
    currency), which Advanced Trade takes for a buy: ccxt alone wants a price to send quote_size."""
    stubs = replay_venue.stubs()
    # Play the whole capture: the stand-in's book is then the capture's last book.
    await collect(stubs, [SYMBOL], channels=[md.CHANNEL_BOOK], played=replay_venue.log_path)
    best_ask = min(EXPECTED.asks)
    order = tf.PlaceOrderRequest(
        symbol=SYMBOL,
        side=common.SIDE_BUY,
        type=tf.ORDER_TYPE_MARKET,
        size="0.0015",
        client_order_id="tm-cb-mkt",
    )
    placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
    assert (placed.order.status, placed.order.client_order_id) == (tf.ORDER_STATUS_FILLED, "tm-cb-mkt")
    assert (D(placed.order.filled_size), D(placed.order.average_fill_price)) == (D("0.0015"), best_ask)
    assert '"market_market_ioc": {"base_size": "0.0015"}' in replay_venue.log()
