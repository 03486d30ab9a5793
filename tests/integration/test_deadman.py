"""The dead-man switch: without heartbeats the venue cancels what could open or add to a
position, and keeps the reduce-only orders (a position's protection); a drain does the same;
every cancel says why on the execution stream."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import grpc
import pytest

from tests.integration.support import (
    CALL_TIMEOUT_S,
    Executions,
    Stubs,
    VenueFactory,
    best_prices,
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


async def test_missed_heartbeat_cancels_every_resting_entry(fresh_venue: VenueFactory) -> None:
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
    await asyncio.sleep(1.5)  # past the 1 s ttl: a switch still armed would have tripped by now
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


TICK = Decimal("0.01")


async def protected_position(stubs: Stubs) -> tuple[list[str], str]:
    """A long of 0.01 BTC with its reduce-only stop-loss and take-profit (as the inspector
    leaves it), and a resting entry buy: ([the protection's order ids], the entry's id)."""
    buy = tf.PlaceOrderRequest(
        symbol="BTC/USDT", side=common.SIDE_BUY, type=tf.ORDER_TYPE_MARKET, size="0.01"
    )
    assert (await stubs.tf.PlaceOrder(buy, timeout=CALL_TIMEOUT_S)).order.status == tf.ORDER_STATUS_FILLED
    bid, ask = await best_prices(stubs, "BTC/USDT")
    stop = tf.PlaceOrderRequest(
        symbol="BTC/USDT", side=common.SIDE_SELL, type=tf.ORDER_TYPE_STOP_MARKET, size="0.01",
        trigger_price=str((bid * Decimal("0.8")).quantize(TICK)), reduce_only=True, client_order_id="keep-sl",
    )  # fmt: skip
    take = limit_order(
        "BTC/USDT", common.SIDE_SELL, "0.01", str((ask * Decimal("1.2")).quantize(TICK)),
        reduce_only=True, client_order_id="keep-tp",
    )  # fmt: skip
    entry = limit_order("BTC/USDT", common.SIDE_BUY, "0.001", str((bid * Decimal("0.8")).quantize(TICK)))
    placed = [(await stubs.tf.PlaceOrder(r, timeout=CALL_TIMEOUT_S)).order for r in (stop, take, entry)]
    assert all(order.status == tf.ORDER_STATUS_OPEN for order in placed), placed
    return [placed[0].order_id, placed[1].order_id], placed[2].order_id


async def test_a_trip_keeps_the_reduce_only_protection_and_says_why_it_cancelled(
    fresh_venue: VenueFactory,
) -> None:
    stubs = fresh_venue(name="keeps").stubs()
    executions = Executions(stubs)
    await until(lambda: open_streams(stubs, 1), CALL_TIMEOUT_S, what="the executions stream")
    protection, entry = await protected_position(stubs)
    armed = await heartbeat(stubs, 1000)

    async def entry_canceled() -> list[tf.Execution] | None:
        seen = [e for e in executions.of(entry) if e.order.status == tf.ORDER_STATUS_CANCELED]
        return seen or None

    canceled = await until(entry_canceled, 5.0, what="the entry cancelled by the dead-man switch")
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert sorted(o.order_id for o in listed.orders) == sorted(protection), "the protection was cancelled"
    assert all(o.reduce_only for o in listed.orders)
    assert canceled[0].order.status_reason == "dead-man: no heartbeat within 1000 ms; reduce-only orders kept"
    dead_man = (await stream_status(stubs)).dead_man
    assert (dead_man.trips, dead_man.last_trip_canceled, dead_man.last_trip_kept) == (1, 1, 2)
    # Admin says what a trip keeps; the sim has no exchange-side switch of its own.
    assert armed.keeps_reduce_only and dead_man.keeps_reduce_only and not armed.native.available
    await executions.close()


async def test_a_drain_keeps_the_protection_and_says_why_it_cancelled(fresh_venue: VenueFactory) -> None:
    stubs = fresh_venue(name="drain-keeps").stubs()
    executions = Executions(stubs)
    await until(lambda: open_streams(stubs, 1), CALL_TIMEOUT_S, what="the executions stream")
    protection, entry = await protected_position(stubs)
    await executions.wait_for(entry, tf.ORDER_STATUS_OPEN)
    drained = await stubs.admin.Drain(admin.DrainRequest(cancel_open_orders=True), timeout=CALL_TIMEOUT_S)
    assert (drained.orders_canceled, drained.orders_kept) == (1, 2)
    seen = await executions.wait_for(entry, tf.ORDER_STATUS_CANCELED)
    assert seen[-1].order.status_reason.startswith("drain: ")
    listed = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
    assert sorted(o.order_id for o in listed.orders) == sorted(protection)


async def test_a_cancel_carries_its_reason_and_a_cancel_all_says_so(fresh_venue: VenueFactory) -> None:
    stubs = fresh_venue(name="reasons").stubs()
    first, second, third = [
        (await stubs.tf.PlaceOrder(r, timeout=CALL_TIMEOUT_S)).order
        for r in (
            limit_order("BTC/USDT", common.SIDE_BUY, "0.001", price) for price in ("30000", "30001", "30002")
        )
    ]
    why = "inspector: stop_loss no longer fits"
    one = await stubs.tf.CancelOrder(
        tf.CancelOrderRequest(order_id=first.order_id, reason=why), timeout=CALL_TIMEOUT_S
    )
    assert one.order.status_reason == why
    plain = await stubs.tf.CancelOrder(
        tf.CancelOrderRequest(order_id=second.order_id), timeout=CALL_TIMEOUT_S
    )
    assert plain.order.status_reason == "canceled by request"
    every = await stubs.tf.CancelAllOrders(
        tf.CancelAllOrdersRequest(reason="inspector: closing all"), timeout=CALL_TIMEOUT_S
    )
    assert [o.status_reason for o in every.orders] == ["cancel-all: inspector: closing all"]
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.tf.CancelOrder(
            tf.CancelOrderRequest(order_id=third.order_id, reason="two\nlines"), timeout=CALL_TIMEOUT_S
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "reason" in (refused.value.details() or "")
