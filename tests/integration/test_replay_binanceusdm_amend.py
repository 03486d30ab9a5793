"""TradeFlow.AmendOrder at Binance USD-M against the replay stand-in, through the real ccxt.pro
client: a limit order's price and size changed in place (ccxt edit_order: PUT /fapi/v1/order,
the same order id, an AMENDMENT on the user data stream), and what Binance cannot change in place
(a new client order id, a stop) cancelled and replaced by the venue runtime."""

from __future__ import annotations

import asyncio
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
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]

D = Decimal
SYMBOL = "SUSHI/USDT:USDT"
CREDENTIALS = {"TRADEMESH_BINANCEUSDM_API_KEY": "replay-key", "TRADEMESH_BINANCEUSDM_API_SECRET": SECRET}
replay_venue = replay_venue_fixture("binanceusdm", FILES)


@pytest.mark.replay(env=CREDENTIALS)
async def test_a_limit_order_is_amended_in_place_and_a_renaming_is_replaced(replay_venue: Venue) -> None:
    stubs = replay_venue.stubs()
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.capabilities.amend == admin.AMEND_MODE_NATIVE
    listed = await stubs.md.ListInstruments(
        md.ListInstrumentsRequest(symbols=[SYMBOL]), timeout=CALL_TIMEOUT_S
    )
    tick = D(listed.instruments[0].tick_size)
    bid, _ = await best_prices(stubs, SYMBOL)
    far = ((bid * D("0.8")) // tick) * tick
    executions = await listening_executions(stubs)
    placed = await stubs.tf.PlaceOrder(
        limit_order(SYMBOL, common.SIDE_BUY, "20", str(far), client_order_id="tm-usdm-amend-1"),
        timeout=CALL_TIMEOUT_S,
    )
    order = placed.order
    assert order.status == tf.ORDER_STATUS_OPEN

    # In place: the same order (id and client id), its new price and size, heard as an update.
    lower = far - tick
    request = tf.AmendOrderRequest(client_order_id="tm-usdm-amend-1", price=str(lower), size="30")
    amended = await stubs.tf.AmendOrder(request, timeout=CALL_TIMEOUT_S)
    assert not amended.replaced
    assert (amended.order.order_id, amended.order.client_order_id) == (order.order_id, "tm-usdm-amend-1")
    assert (D(amended.order.price), D(amended.order.size)) == (lower, D(30))

    async def amendment_heard() -> tf.Execution | None:
        return next((e for e in executions.of(order.order_id) if D(e.order.size) == D(30)), None)

    heard = await until(amendment_heard, CALL_TIMEOUT_S, what="the amendment on the user data stream")
    assert (D(heard.order.price), heard.order.status) == (lower, tf.ORDER_STATUS_OPEN)
    got = await stubs.tf.GetOrder(tf.GetOrderRequest(order_id=order.order_id), timeout=CALL_TIMEOUT_S)
    assert (D(got.order.price), D(got.order.size), got.order.status) == (lower, D(30), tf.ORDER_STATUS_OPEN)

    # A new client order id: Binance keeps an order's own, so the venue cancels and replaces.
    renamed = tf.AmendOrderRequest(
        client_order_id="tm-usdm-amend-1", price=str(lower - tick), new_client_order_id="tm-usdm-amend-2"
    )
    replaced = await stubs.tf.AmendOrder(renamed, timeout=CALL_TIMEOUT_S)
    assert replaced.replaced and replaced.canceled.order_id == order.order_id
    assert replaced.canceled.status == tf.ORDER_STATUS_CANCELED
    assert replaced.order.order_id != order.order_id and replaced.order.client_order_id == "tm-usdm-amend-2"
    assert (D(replaced.order.price), D(replaced.order.size)) == (lower - tick, D(30))
    open_ids = {
        o.order_id
        for o in (await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)).orders
    }
    assert replaced.order.order_id in open_ids and order.order_id not in open_ids

    # The cancelled one is refused: nothing open to amend.
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.tf.AmendOrder(
            tf.AmendOrderRequest(order_id=order.order_id, size="25"), timeout=CALL_TIMEOUT_S
        )
    assert refused.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    await stubs.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S)
    await executions.close()


@pytest.mark.replay(env=CREDENTIALS)
async def test_the_account_is_pushed_after_a_fill(replay_venue: Venue) -> None:
    """With credentials Binance USD-M is ACCOUNT_FEED_PUSH: ccxt watch_balance hears the
    ACCOUNT_UPDATE that follows a fill on the listenKey stream, and the venue reads its account
    again; StreamAccount starts with the wallet's snapshot."""
    stubs = replay_venue.stubs()
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.capabilities.account_feed == admin.ACCOUNT_FEED_PUSH
    call = stubs.tf.StreamAccount(tf.StreamAccountRequest())
    try:
        first = await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)
        assert isinstance(first, tf.StreamAccountResponse) and first.snapshot
        assert D(next(b.total for b in first.balances if b.asset == "USDT")) == D(100000)
        # Nothing replayed yet: the book is the recorded snapshot; a buy far above it fills. The
        # first fill heard on the user data stream says its connection is up (watch_balance
        # listens on it from the venue's start; an ACCOUNT_UPDATE before it listens is lost, as
        # with ccxt against Binance), then the second fill's ACCOUNT_UPDATE is heard.
        executions = await listening_executions(stubs)
        first_fill = await stubs.tf.PlaceOrder(
            limit_order(SYMBOL, common.SIDE_BUY, "10", "100", client_order_id="tm-usdm-account-0"),
            timeout=CALL_TIMEOUT_S,
        )

        async def heard() -> tf.Execution | None:
            return next((e for e in executions.of(first_fill.order.order_id) if e.HasField("fill")), None)

        await until(heard, CALL_TIMEOUT_S, what="the first fill on the user data stream")
        await executions.close()
        order = limit_order(SYMBOL, common.SIDE_BUY, "10", "100", client_order_id="tm-usdm-account")
        placed = await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)
        assert placed.order.status == tf.ORDER_STATUS_FILLED

        async def pushed() -> bool | None:
            return True if "the account pushed by watch_balance" in replay_venue.log() else None

        await until(pushed, CALL_TIMEOUT_S, what="the ACCOUNT_UPDATE heard by watch_balance")
    finally:
        call.cancel()
