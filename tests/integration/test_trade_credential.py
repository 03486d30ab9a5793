"""The trading credential: a venue places and cancels orders, and arms its dead-man switch, only for
TRADEMESH_TRADE_TOKEN (the inspector's); the mesh token keeps market data and reads."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest

from tests.integration.support import (
    CALL_TIMEOUT_S,
    TEST_TOKEN,
    TEST_TRADE_TOKEN,
    Stubs,
    Venue,
    VenueFactory,
    limit_order,
)
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.config.env import TOKEN, TRADE_TOKEN
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = pytest.mark.integration

Call = Callable[[Stubs], Awaitable[Any]]


def _never_placed() -> tf.PlaceOrderRequest:
    cid = f"credential-{uuid.uuid4().hex[:12]}"
    return limit_order("BTC/USDT", common.SIDE_BUY, "0.001", "30000", client_order_id=cid)


# The RPCs only the trading credential opens.
TRADING: dict[str, Call] = {
    "AmendOrder": lambda s: s.tf.AmendOrder(
        tf.AmendOrderRequest(client_order_id="credential-none", size="1"), timeout=CALL_TIMEOUT_S
    ),
    "PlaceOrder": lambda s: s.tf.PlaceOrder(_never_placed(), timeout=CALL_TIMEOUT_S),
    "CancelOrder": lambda s: s.tf.CancelOrder(
        tf.CancelOrderRequest(client_order_id="credential-none"), timeout=CALL_TIMEOUT_S
    ),
    "CancelAllOrders": lambda s: s.tf.CancelAllOrders(tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S),
    "Heartbeat": lambda s: s.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=60_000), timeout=CALL_TIMEOUT_S),
}

# Reads a mesh service makes.
READS: dict[str, Call] = {
    "ListInstruments": lambda s: s.md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S),
    "GetBalances": lambda s: s.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S),
    "ListOpenOrders": lambda s: s.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S),
    "GetStatus": lambda s: s.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S),
}


async def _refused(stubs: Stubs, rpc: str) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await TRADING[rpc](stubs)
    return error.value


def _no_secret(text: str | None) -> None:
    assert TEST_TOKEN not in (text or "") and TEST_TRADE_TOKEN not in (text or "")


@pytest.mark.parametrize("rpc", sorted(TRADING))
async def test_the_mesh_token_is_refused_on_trading_rpcs(venue: Venue, rpc: str) -> None:
    error = await _refused(venue.stubs(TEST_TOKEN), rpc)
    assert error.code() == grpc.StatusCode.PERMISSION_DENIED
    details = error.details() or ""
    assert details.startswith(f"{rpc} needs the trading credential (TRADEMESH_TRADE_TOKEN)"), details
    assert "only the inspector" in details
    _no_secret(details)


@pytest.mark.parametrize("token", [None, "wrong-token"], ids=["no-token", "wrong-token"])
@pytest.mark.parametrize("rpc", sorted(TRADING))
async def test_no_token_or_a_wrong_one_stays_unauthenticated(
    venue: Venue, rpc: str, token: str | None
) -> None:
    error = await _refused(venue.stubs(token), rpc)
    assert error.code() == grpc.StatusCode.UNAUTHENTICATED
    _no_secret(error.details())


async def test_the_trading_credential_places_and_cancels(venue: Venue) -> None:
    trader, reader = venue.stubs(TEST_TRADE_TOKEN), venue.stubs(TEST_TOKEN)
    request = _never_placed()
    placed = await trader.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_OPEN
    try:
        # The mesh token sees the order but cannot cancel it.
        seen = await reader.tf.GetOrder(
            tf.GetOrderRequest(client_order_id=request.client_order_id), timeout=CALL_TIMEOUT_S
        )
        assert seen.order.order_id == placed.order.order_id
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await reader.tf.CancelOrder(
                tf.CancelOrderRequest(order_id=placed.order.order_id), timeout=CALL_TIMEOUT_S
            )
        assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        cancelled = await trader.tf.CancelOrder(
            tf.CancelOrderRequest(order_id=placed.order.order_id), timeout=CALL_TIMEOUT_S
        )
    assert cancelled.order.status == tf.ORDER_STATUS_CANCELED
    armed = await trader.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=60_000), timeout=CALL_TIMEOUT_S)
    assert armed.dead_man.armed
    disarmed = await trader.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=0), timeout=CALL_TIMEOUT_S)
    assert not disarmed.dead_man.armed


@pytest.mark.parametrize("token", [TEST_TOKEN, TEST_TRADE_TOKEN], ids=["mesh-token", "trade-token"])
@pytest.mark.parametrize("rpc", sorted(READS))
async def test_reads_take_either_token(venue: Venue, rpc: str, token: str) -> None:
    await READS[rpc](venue.stubs(token))


async def test_refused_calls_leave_no_order_and_no_armed_switch(venue: Venue) -> None:
    reader = venue.stubs(TEST_TOKEN)
    request = _never_placed()
    with pytest.raises(grpc.aio.AioRpcError):
        await reader.tf.PlaceOrder(request, timeout=CALL_TIMEOUT_S)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await reader.tf.GetOrder(
            tf.GetOrderRequest(client_order_id=request.client_order_id), timeout=CALL_TIMEOUT_S
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    status = await reader.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert not status.dead_man.armed


async def test_drain_cancels_orders_only_for_the_trading_credential(fresh_venue: VenueFactory) -> None:
    """A drain that cancels every open order is an order RPC too: the mesh token may drain (stop
    streams for a restart), not cancel the inspector's orders."""
    venue = fresh_venue(name="drain")
    trader, reader = venue.stubs(TEST_TRADE_TOKEN), venue.stubs(TEST_TOKEN)
    placed = await trader.tf.PlaceOrder(_never_placed(), timeout=CALL_TIMEOUT_S)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await reader.admin.Drain(admin.DrainRequest(cancel_open_orders=True), timeout=CALL_TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.PERMISSION_DENIED
    assert error.value.details() == (
        "Drain with cancel_open_orders needs the trading credential (TRADEMESH_TRADE_TOKEN): "
        "only the inspector places and cancels orders at a venue"
    )
    still = await reader.tf.GetOrder(
        tf.GetOrderRequest(order_id=placed.order.order_id), timeout=CALL_TIMEOUT_S
    )
    assert still.order.status == tf.ORDER_STATUS_OPEN
    drained = await trader.admin.Drain(admin.DrainRequest(cancel_open_orders=True), timeout=CALL_TIMEOUT_S)
    assert drained.orders_canceled == 1


async def test_a_plain_drain_takes_the_mesh_token(fresh_venue: VenueFactory) -> None:
    venue = fresh_venue(name="plain-drain")
    drained = await venue.stubs(TEST_TOKEN).admin.Drain(admin.DrainRequest(), timeout=CALL_TIMEOUT_S)
    assert drained.orders_canceled == 0


async def test_a_venue_without_the_trading_credential_refuses_every_order(fresh_venue: VenueFactory) -> None:
    venue = fresh_venue(name="no-trade-token", env={TOKEN: TEST_TOKEN, TRADE_TOKEN: ""})
    for rpc in sorted(TRADING):
        error = await _refused(venue.stubs(TEST_TOKEN), rpc)
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, rpc
        details = error.details() or ""
        assert details == (
            f"{rpc} is refused: venue/sim has no trading credential configured (TRADEMESH_TRADE_TOKEN)"
        )
        # A token the venue does not know is no credential at all.
        assert (await _refused(venue.stubs(TEST_TRADE_TOKEN), rpc)).code() == grpc.StatusCode.UNAUTHENTICATED
    for read in READS.values():
        await read(venue.stubs(TEST_TOKEN))
    assert "has no trading credential (set TRADEMESH_TRADE_TOKEN)" in venue.log()


async def test_with_auth_off_orders_still_need_the_trading_credential(fresh_venue: VenueFactory) -> None:
    venue = fresh_venue(name="dev-mode", env={TOKEN: "", TRADE_TOKEN: TEST_TRADE_TOKEN})
    for read in READS.values():
        await read(venue.stubs(None))
    for token in (None, TEST_TOKEN, "anything"):
        error = await _refused(venue.stubs(token), "PlaceOrder")
        assert error.code() == grpc.StatusCode.PERMISSION_DENIED, token
        assert "needs the trading credential (TRADEMESH_TRADE_TOKEN)" in (error.details() or "")
    placed = await venue.stubs(TEST_TRADE_TOKEN).tf.PlaceOrder(_never_placed(), timeout=CALL_TIMEOUT_S)
    assert placed.order.status == tf.ORDER_STATUS_OPEN
    log = venue.log()
    assert (
        "AUTH IS OFF" in log and "but AmendOrder, CancelAllOrders, CancelOrder, Heartbeat, PlaceOrder" in log
    )
    _no_secret(log)
