"""Admin Drain, the last check (a drained venue takes nothing more): open orders cancelled on the
executions stream before it ends, open streams ended cleanly, then NOT_SERVING, DRAINING, and new
orders and subscriptions UNAVAILABLE."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health_pb2

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.core.venue_check.kit import Kit
from trademesh.core.venue_check.orders import ExecutionReader, place_resting, resting_request
from trademesh.core.venue_check.registry import check
from trademesh.core.venue_check.results import fail
from trademesh.core.venue_check.wire import answer, describe, refusal
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

_WAIT_S = 8.0
_HEALTH_EVERY_S = 0.05


@dataclass(frozen=True)
class _Drained:
    answer: admin.DrainResponse
    canceled: tf.Execution  # the kit's order's cancel, from the executions stream
    market_end: str  # how the Subscribe stream open at the drain ended ("" cleanly)
    executions_end: str


def _subscribe(kit: Kit, timeout_s: float) -> Any:
    request = md.SubscribeRequest(symbols=[kit.symbol], channels=kit.streamed_channels(kit.symbol))
    return kit.mesh.md.Subscribe(request, timeout=timeout_s)


async def _drain_with_open_streams(kit: Kit) -> _Drained:
    reader = ExecutionReader(kit)
    stream = _subscribe(kit, _WAIT_S * 2)
    try:
        await reader.opened(_WAIT_S)
        order = await place_resting(kit)
        drained = await answer(
            "Admin/Drain", kit.trade.admin.Drain(admin.DrainRequest(cancel_open_orders=True))
        )
        _, canceled = await reader.wait_for(
            lambda e: e.order.order_id == order.order_id and e.order.status == tf.ORDER_STATUS_CANCELED,
            _WAIT_S,
            f"order {order.order_id} cancelled by Drain",
        )
        kit.saw(canceled.order)
        return _Drained(drained, canceled, await _stream_end(stream), await reader.end(_WAIT_S))
    finally:
        stream.cancel()
        await reader.close()


def _judge(drained: _Drained) -> None:
    order = drained.canceled.order
    if not order.status_reason.startswith("drain"):
        fail(
            f"Drain cancelled order {order.order_id} with status_reason "
            f"{order.status_reason!r}, not 'drain: ...'"
        )
    if drained.answer.orders_canceled < 1:
        fail(
            f"Drain answered orders_canceled {drained.answer.orders_canceled} though it "
            f"cancelled {order.order_id}"
        )
    for what, end in (
        ("a Subscribe stream", drained.market_end),
        ("a StreamExecutions stream", drained.executions_end),
    ):
        if end:
            fail(f"{what} open at the drain {end}")


async def _refuses_new_work(kit: Kit) -> None:
    await _not_serving(kit)
    state = await answer("Admin/GetStatus", kit.mesh.admin.GetStatus(admin.GetStatusRequest()))
    if state.state != admin.VENUE_STATE_DRAINING:
        fail(f"GetStatus after Drain says {admin.VenueState.Name(state.state)}, not DRAINING")
    placing = kit.trade.tf.PlaceOrder(await resting_request(kit))
    await refusal("PlaceOrder after Drain", placing, grpc.StatusCode.UNAVAILABLE)
    late = _subscribe(kit, _WAIT_S)
    try:
        await refusal("Subscribe after Drain", late.read(), grpc.StatusCode.UNAVAILABLE)
    finally:
        late.cancel()


@check(
    "drain",
    'Admin Drain with cancel_open_orders: open orders cancelled ("drain: ...") on the executions stream '
    "before it ends, open streams ended cleanly, health NOT_SERVING, state DRAINING, new orders and "
    "subscriptions UNAVAILABLE",
    timeout_s=30.0,
)
async def drain(kit: Kit) -> str:
    drained = await _drain_with_open_streams(kit)
    _judge(drained)
    await _refuses_new_work(kit)
    return (
        f"order cancelled ('drain: ...') on the executions stream, {drained.answer.streams_ended} streams "
        "ended cleanly, NOT_SERVING, DRAINING, new work UNAVAILABLE"
    )


async def _stream_end(call: Any) -> str:
    """Empty when the stream ended cleanly (OK) within the wait; else what happened."""
    deadline = time.monotonic() + _WAIT_S
    try:
        while (left := deadline - time.monotonic()) > 0:
            if await asyncio.wait_for(call.read(), left) is grpc.aio.EOF:
                return ""
    except TimeoutError:
        pass
    except grpc.aio.AioRpcError as error:
        return f"ended with {describe(error)}, not cleanly"
    return f"was still open {_WAIT_S:g} s after the drain"


async def _not_serving(kit: Kit) -> None:
    """Waits (a bounded poll) for Health/Check to answer NOT_SERVING."""
    deadline = time.monotonic() + _WAIT_S
    while True:
        health = await answer(
            "Health/Check", kit.open.health.Check(health_pb2.HealthCheckRequest(service=""))
        )
        if health.status == health_pb2.HealthCheckResponse.NOT_SERVING:
            return
        if time.monotonic() > deadline:
            status = health_pb2.HealthCheckResponse.ServingStatus.Name(health.status)
            fail(f"Health/Check still answers {status} {_WAIT_S:g} s after Drain")
        await asyncio.sleep(_HEALTH_EVERY_S)
