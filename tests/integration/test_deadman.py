"""The dead-man switch: without heartbeats the venue cancels every open order."""

from __future__ import annotations

import asyncio
import time

import pytest

from tests.integration.support import (
    CALL_TIMEOUT_S,
    Executions,
    Stubs,
    VenueFactory,
    limit_order,
    open_streams,
    stream_status,
    until,
)
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = pytest.mark.integration


async def place_resting(stubs: Stubs) -> list[str]:
    requests = [
        limit_order("BTC/USDT", common.SIDE_BUY, "0.001", "30000"),
        limit_order("ETH/USDT", common.SIDE_BUY, "0.01", "1000"),
        limit_order("SOL/USDT", common.SIDE_SELL, "1", "500"),  # inside the price band (x5 of 150)
    ]
    placed = [await stubs.tf.PlaceOrder(r, timeout=CALL_TIMEOUT_S) for r in requests]
    assert all(p.order.status == tf.ORDER_STATUS_OPEN for p in placed)
    return [p.order.order_id for p in placed]


async def open_count(stubs: Stubs) -> int:
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    return len(listed.orders)


async def heartbeat(stubs: Stubs, ttl_ms: int) -> admin.DeadManStatus:
    response = await stubs.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=ttl_ms), timeout=CALL_TIMEOUT_S)
    return response.dead_man


async def test_missed_heartbeat_cancels_every_open_order(fresh_venue: VenueFactory) -> None:
    stubs = fresh_venue(name="deadman").stubs()
    executions = Executions(stubs)
    await until(lambda: open_streams(stubs, 1), CALL_TIMEOUT_S, what="the executions stream")
    order_ids = await place_resting(stubs)
    for order_id in order_ids:
        await executions.wait_for(order_id, tf.ORDER_STATUS_OPEN)

    # The shortest ttl a venue takes (MIN_TTL_MS).
    armed = await heartbeat(stubs, 1000)
    assert armed.armed and armed.ttl_ms == 1000 and armed.trips == 0
    assert time.time_ns() < armed.deadline_ns <= time.time_ns() + 1_000_000_000
    # Heartbeats within the ttl keep the orders alive well past one ttl.
    for _ in range(6):
        await asyncio.sleep(0.3)
        await heartbeat(stubs, 1000)
    assert await open_count(stubs) == 3

    stopped = time.monotonic()

    async def all_canceled() -> bool | None:
        return True if await open_count(stubs) == 0 else None

    await until(all_canceled, 4.0, interval_s=0.02, what="every order cancelled by the dead-man switch")
    assert time.monotonic() - stopped >= 0.9, "cancelled before the ttl ran out"
    for order_id in order_ids:
        await executions.wait_for(order_id, tf.ORDER_STATUS_CANCELED)
    status = await stream_status(stubs)
    assert status.dead_man.trips == 1 and not status.dead_man.armed and status.dead_man.last_trip_ns > 0
    await executions.close()


async def test_heartbeat_with_ttl_zero_disarms_the_switch(fresh_venue: VenueFactory) -> None:
    stubs = fresh_venue(name="disarm").stubs()
    await place_resting(stubs)
    assert (await heartbeat(stubs, 1000)).armed
    disarmed = await heartbeat(stubs, 0)
    assert not disarmed.armed and disarmed.ttl_ms == 0 and disarmed.deadline_ns == 0
    await asyncio.sleep(1.5)
    assert await open_count(stubs) == 3
    status = await stream_status(stubs)
    assert status.dead_man.trips == 0 and not status.dead_man.armed


async def test_the_switch_trips_again_once_rearmed(fresh_venue: VenueFactory) -> None:
    stubs = fresh_venue(name="rearm").stubs()
    await place_resting(stubs)
    await heartbeat(stubs, 1000)
    await until(lambda: _trips(stubs, 1), 4.0, what="the first trip")
    await place_resting(stubs)
    await heartbeat(stubs, 1000)
    await until(lambda: _trips(stubs, 2), 4.0, what="the second trip")
    assert await open_count(stubs) == 0


async def _trips(stubs: Stubs, expected: int) -> int | None:
    trips = (await stream_status(stubs)).dead_man.trips
    return trips if trips == expected else None
