"""Admin: the dead-man switch (its ttl's bounds, an order cancelled within ttl + 1 s of the last
heartbeat, not before the ttl) and Drain (the last check: a drained venue takes nothing more)."""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2

from core.venue_check.kit import Kit
from core.venue_check.orders import ExecutionReader, leave_flat, place_resting, resting_request
from core.venue_check.registry import check
from core.venue_check.results import fail
from core.venue_check.wire import answer, describe, field_violations, refusal
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

TTL_MS = 1_000  # the shortest ttl the contract allows
SLACK_S = 1.0  # the contract: cancelled within ttl + 1 s
_WAIT_S = 8.0


@check(
    "deadman",
    (
        "Admin Heartbeat: ttl_ms 1-999 or over an hour INVALID_ARGUMENT; armed at 1000 "
        "ms, the venue cancels an open order within ttl + 1 s (not before the ttl), with "
        'a "dead-man" reason'
    ),
    timeout_s=30.0,
)
async def deadman(kit: Kit) -> str:
    for ttl_ms in (500, 3_600_001):
        error = await refusal(
            f"Heartbeat of ttl_ms {ttl_ms}",
            kit.trade.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=ttl_ms)),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        if not any(f == "ttl_ms" for f, _ in field_violations(error)):
            fail(f"Heartbeat of ttl_ms {ttl_ms} was refused without a field violation on ttl_ms")
    before = await answer("Admin/GetStatus", kit.mesh.admin.GetStatus(admin.GetStatusRequest()))
    reader = ExecutionReader(kit)
    try:
        await reader.opened(_WAIT_S)
        order = await place_resting(kit)
        sent = time.monotonic()
        armed = await answer(
            f"Heartbeat of ttl_ms {TTL_MS}", kit.trade.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=TTL_MS))
        )
        if not armed.dead_man.armed or armed.dead_man.ttl_ms != TTL_MS:
            fail(
                f"Heartbeat of ttl_ms {TTL_MS} answered armed {armed.dead_man.armed}, ttl_ms "
                f"{armed.dead_man.ttl_ms}"
            )
        at, ended = await reader.wait_for(
            lambda e: e.order.order_id == order.order_id and e.order.status == tf.ORDER_STATUS_CANCELED,
            TTL_MS / 1000 + SLACK_S + _WAIT_S,
            f"order {order.order_id} cancelled by the dead-man switch",
        )
    finally:
        await reader.close()
        await leave_flat(kit)
    took = at - sent
    if took > TTL_MS / 1000 + SLACK_S:
        fail(
            f"the dead-man switch cancelled order {order.order_id} {took:.2f} s after the "
            f"heartbeat: past ttl + 1 s ({TTL_MS / 1000 + SLACK_S:g} s)"
        )
    if took < TTL_MS / 1000:
        fail(
            f"order {order.order_id} was cancelled {took:.2f} s after a heartbeat of {TTL_MS} "
            "ms: before its ttl"
        )
    if not ended.order.status_reason.startswith("dead-man"):
        fail(f"the dead-man cancel's status_reason is {ended.order.status_reason!r}, not 'dead-man: ...'")
    after = await answer("Admin/GetStatus", kit.mesh.admin.GetStatus(admin.GetStatusRequest()))
    if after.dead_man.trips != before.dead_man.trips + 1 or after.dead_man.armed:
        fail(
            f"GetStatus after the trip: trips {after.dead_man.trips} (before "
            f"{before.dead_man.trips}), armed {after.dead_man.armed}"
        )
    return (
        f"bad ttls refused; order cancelled {took:.2f} s after a {TTL_MS} ms heartbeat, "
        "reason 'dead-man: ...', trips counted"
    )


@check(
    "drain",
    'Admin Drain with cancel_open_orders: open orders cancelled ("drain: ...") on the executions stream '
    "before it ends, open streams ended cleanly, health NOT_SERVING, state DRAINING, new orders and "
    "subscriptions UNAVAILABLE",
    timeout_s=30.0,
)
async def drain(kit: Kit) -> str:
    channels = kit.streamed_channels(kit.symbol)
    reader = ExecutionReader(kit)
    stream = kit.mesh.md.Subscribe(
        md.SubscribeRequest(symbols=[kit.symbol], channels=channels), timeout=_WAIT_S * 2
    )
    try:
        await reader.opened(_WAIT_S)
        order = await place_resting(kit)
        drained = await answer(
            "Admin/Drain", kit.trade.admin.Drain(admin.DrainRequest(cancel_open_orders=True))
        )
        _, ended = await reader.wait_for(
            lambda e: e.order.order_id == order.order_id and e.order.status == tf.ORDER_STATUS_CANCELED,
            _WAIT_S,
            f"order {order.order_id} cancelled by Drain",
        )
        kit.saw(ended.order)
        market_end = await _stream_end(stream)
        executions_end = await reader.end(_WAIT_S)
    finally:
        stream.cancel()
        await reader.close()
    if not ended.order.status_reason.startswith("drain"):
        fail(
            f"Drain cancelled order {order.order_id} with status_reason "
            f"{ended.order.status_reason!r}, not 'drain: ...'"
        )
    if drained.orders_canceled < 1:
        fail(
            f"Drain answered orders_canceled {drained.orders_canceled} though it cancelled "
            f"order {order.order_id}"
        )
    for what, end in (("a Subscribe stream", market_end), ("a StreamExecutions stream", executions_end)):
        if end:
            fail(f"{what} open at the drain {end}")
    await _not_serving(kit)
    state = await answer("Admin/GetStatus", kit.mesh.admin.GetStatus(admin.GetStatusRequest()))
    if state.state != admin.VENUE_STATE_DRAINING:
        fail(f"GetStatus after Drain says {admin.VenueState.Name(state.state)}, not DRAINING")
    await refusal(
        "PlaceOrder after Drain",
        kit.trade.tf.PlaceOrder(await resting_request(kit)),
        grpc.StatusCode.UNAVAILABLE,
    )
    late = kit.mesh.md.Subscribe(
        md.SubscribeRequest(symbols=[kit.symbol], channels=channels), timeout=_WAIT_S
    )
    try:
        await refusal("Subscribe after Drain", late.read(), grpc.StatusCode.UNAVAILABLE)
    finally:
        late.cancel()
    return (
        f"order cancelled ('drain: ...') on the executions stream, {drained.streams_ended} streams ended "
        "cleanly, NOT_SERVING, DRAINING, new work UNAVAILABLE"
    )


async def _stream_end(call: object) -> str:
    """Empty when the stream ended cleanly (OK) within the wait; else what happened."""
    deadline = time.monotonic() + _WAIT_S
    try:
        while (left := deadline - time.monotonic()) > 0:
            message = await asyncio.wait_for(call.read(), left)  # type: ignore[attr-defined]
            if message is grpc.aio.EOF:
                return ""
    except TimeoutError:
        pass
    except grpc.aio.AioRpcError as error:
        return f"ended with {describe(error)}, not cleanly"
    return f"was still open {_WAIT_S:g} s after the drain"


async def _not_serving(kit: Kit) -> None:
    deadline = time.monotonic() + _WAIT_S
    while True:
        health = await answer(
            "Health/Check", kit.open.health.Check(health_pb2.HealthCheckRequest(service=""))
        )
        if health.status == health_pb2.HealthCheckResponse.NOT_SERVING:
            return
        if time.monotonic() > deadline:
            fail(
                "Health/Check still answers "
                f"{health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)} {_WAIT_S:g} s "
                "after Drain"
            )
        await asyncio.sleep(0.1)
