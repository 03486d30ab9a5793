"""A venue's lifecycle: health, graceful shutdown on SIGTERM, and Admin/Drain."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.support import (
    CALL_TIMEOUT_S,
    Executions,
    VenueFactory,
    limit_order,
    open_streams,
    stream_status,
    until,
)
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = pytest.mark.integration

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICES = [
    "",
    "trademesh.marketdata.v1.MarketData",
    "trademesh.tradeflow.v1.TradeFlow",
    "trademesh.admin.v1.Admin",
]


async def read_to_end(call: Any) -> None:
    """Read until the server ends the stream (an error status raises)."""
    while await asyncio.wait_for(call.read(), CALL_TIMEOUT_S) is not grpc.aio.EOF:
        pass


async def test_sigterm_turns_health_not_serving_ends_streams_cleanly_and_exits_zero(
    fresh_venue: VenueFactory,
) -> None:
    venue = fresh_venue(name="sigterm")
    health = health_pb2_grpc.HealthStub(venue.channel(token=None))
    watches = [health.Watch(health_pb2.HealthCheckRequest(service=name)) for name in SERVICES]
    for watch in watches:
        assert (await asyncio.wait_for(watch.read(), CALL_TIMEOUT_S)).status == SERVING
    stubs = venue.stubs()
    market = stubs.md.Subscribe(md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_BOOK]))
    await asyncio.wait_for(market.read(), CALL_TIMEOUT_S)
    executions = stubs.tf.StreamExecutions(tf.StreamExecutionsRequest())
    await until(lambda: open_streams(stubs, 2), CALL_TIMEOUT_S, what="two open streams")

    venue.service.process.send_signal(signal.SIGTERM)
    for watch in watches:
        assert (await asyncio.wait_for(watch.read(), CALL_TIMEOUT_S)).status == NOT_SERVING
        # A watch never ends by itself; left open it would hold the server for its whole grace period.
        watch.cancel()
    await read_to_end(market)
    assert await market.code() == grpc.StatusCode.OK
    await read_to_end(executions)
    assert await executions.code() == grpc.StatusCode.OK

    started = time.monotonic()
    exit_code = await asyncio.to_thread(venue.service.process.wait, 15)
    assert exit_code == 0, venue.log()
    assert time.monotonic() - started < 5, "shutdown took the whole grace period"
    assert "stopped" in venue.log()


async def test_drain_ends_streams_refuses_new_work_and_turns_health_not_serving(
    fresh_venue: VenueFactory,
) -> None:
    venue = fresh_venue(name="drain")
    stubs = venue.stubs()
    health = health_pb2_grpc.HealthStub(venue.channel(token=None))
    market = stubs.md.Subscribe(md.SubscribeRequest(symbols=["ETH/USDT"], channels=[md.CHANNEL_TRADES]))
    await asyncio.wait_for(market.read(), CALL_TIMEOUT_S)
    executions = Executions(stubs)
    await until(lambda: open_streams(stubs, 2), CALL_TIMEOUT_S, what="two open streams")
    orders = [
        await stubs.tf.PlaceOrder(
            limit_order("BTC/USDT", common.SIDE_BUY, "0.001", price), timeout=CALL_TIMEOUT_S
        )
        for price in ("30000", "30001")
    ]
    for placed in orders:
        await executions.wait_for(placed.order.order_id, tf.ORDER_STATUS_OPEN)

    drained = await stubs.admin.Drain(admin.DrainRequest(cancel_open_orders=True), timeout=CALL_TIMEOUT_S)
    assert (drained.streams_ended, drained.orders_canceled) == (2, 2)
    await read_to_end(market)
    assert await market.code() == grpc.StatusCode.OK
    await asyncio.wait_for(executions.ended.wait(), CALL_TIMEOUT_S)
    assert executions.error is None
    # Whoever follows executions learns that the drain cancelled its orders.
    for placed in orders:
        assert tf.ORDER_STATUS_CANCELED in [e.order.status for e in executions.of(placed.order.order_id)]

    for service in SERVICES:
        checked = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT_S)
        assert checked.status == NOT_SERVING, service
    status = await stream_status(stubs)
    assert status.state == admin.VENUE_STATE_DRAINING and status.subscriber_count == 0

    refused: dict[str, Awaitable[Any]] = {
        "PlaceOrder": stubs.tf.PlaceOrder(limit_order("BTC/USDT", common.SIDE_BUY, "0.001", "30000")),
        "Subscribe": stubs.md.Subscribe(
            md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_TRADES])
        ).read(),
        "StreamExecutions": stubs.tf.StreamExecutions(tf.StreamExecutionsRequest()).read(),
    }
    for rpc, call in refused.items():
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await asyncio.wait_for(call, CALL_TIMEOUT_S)
        assert error.value.code() == grpc.StatusCode.UNAVAILABLE, rpc
        assert "draining" in (error.value.details() or ""), rpc

    # Reads still answer, so an operator can check what is left.
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert list(listed.orders) == []
    got = await stubs.tf.GetOrder(
        tf.GetOrderRequest(order_id=orders[0].order.order_id), timeout=CALL_TIMEOUT_S
    )
    assert got.order.status == tf.ORDER_STATUS_CANCELED
    assert venue.service.terminate() == 0
