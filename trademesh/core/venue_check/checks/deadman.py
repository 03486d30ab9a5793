"""Admin Heartbeat, the dead-man switch: its ttl's bounds, and an order cancelled no sooner than
the ttl after the last heartbeat and within the ttl + 1 s, with its reason."""

from __future__ import annotations

import time

import grpc

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.core.venue_check.kit import Kit
from trademesh.core.venue_check.orders import ExecutionReader, leave_flat, place_resting
from trademesh.core.venue_check.registry import check
from trademesh.core.venue_check.results import fail
from trademesh.core.venue_check.wire import answer, field_violations, refusal
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

TTL_MS = 1_000  # the shortest ttl the contract allows
SLACK_S = 1.0  # the contract: cancelled within ttl + 1 s
_BAD_TTLS_MS = (500, 3_600_001)
_WAIT_S = 8.0


async def _bad_ttls(kit: Kit) -> None:
    for ttl_ms in _BAD_TTLS_MS:
        error = await refusal(
            f"Heartbeat of ttl_ms {ttl_ms}",
            kit.trade.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=ttl_ms)),
            grpc.StatusCode.INVALID_ARGUMENT,
        )
        if not any(f == "ttl_ms" for f, _ in field_violations(error)):
            fail(f"Heartbeat of ttl_ms {ttl_ms} was refused without a field violation on ttl_ms")


async def _arm(kit: Kit) -> float:
    """Arms the switch for TTL_MS; when the heartbeat was sent (monotonic seconds)."""
    sent = time.monotonic()
    armed = await answer(
        f"Heartbeat of ttl_ms {TTL_MS}", kit.trade.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=TTL_MS))
    )
    if not armed.dead_man.armed or armed.dead_man.ttl_ms != TTL_MS:
        fail(
            f"Heartbeat of ttl_ms {TTL_MS} answered armed {armed.dead_man.armed}, ttl_ms "
            f"{armed.dead_man.ttl_ms}"
        )
    return sent


async def _trip(kit: Kit) -> tuple[float, tf.Execution]:
    """A resting order left to the switch: how long after the heartbeat its cancel came on the
    executions stream, and that execution."""
    reader = ExecutionReader(kit)
    try:
        await reader.opened(_WAIT_S)
        order = await place_resting(kit)
        sent = await _arm(kit)
        at, ended = await reader.wait_for(
            lambda e: e.order.order_id == order.order_id and e.order.status == tf.ORDER_STATUS_CANCELED,
            TTL_MS / 1000 + SLACK_S + _WAIT_S,
            f"order {order.order_id} cancelled by the dead-man switch",
        )
    finally:
        await reader.close()
        await leave_flat(kit)
    return at - sent, ended


def _judge(took: float, ended: tf.Execution) -> None:
    order = ended.order.order_id
    if took > TTL_MS / 1000 + SLACK_S:
        fail(
            f"the dead-man switch cancelled order {order} {took:.2f} s after the heartbeat: past "
            f"ttl + 1 s ({TTL_MS / 1000 + SLACK_S:g} s)"
        )
    if took < TTL_MS / 1000:
        fail(f"order {order} was cancelled {took:.2f} s after a heartbeat of {TTL_MS} ms: before its ttl")
    if not ended.order.status_reason.startswith("dead-man"):
        fail(f"the dead-man cancel's status_reason is {ended.order.status_reason!r}, not 'dead-man: ...'")


@check(
    "deadman",
    "Admin Heartbeat: ttl_ms 1-999 or over an hour INVALID_ARGUMENT; armed at 1000 ms, the venue "
    'cancels an open order within ttl + 1 s (not before the ttl), with a "dead-man" reason',
    timeout_s=30.0,
)
async def deadman(kit: Kit) -> str:
    await _bad_ttls(kit)
    before = await answer("Admin/GetStatus", kit.mesh.admin.GetStatus(admin.GetStatusRequest()))
    took, ended = await _trip(kit)
    _judge(took, ended)
    after = await answer("Admin/GetStatus", kit.mesh.admin.GetStatus(admin.GetStatusRequest()))
    if after.dead_man.trips != before.dead_man.trips + 1 or after.dead_man.armed:
        fail(
            f"GetStatus after the trip: trips {after.dead_man.trips} (before {before.dead_man.trips}), "
            f"armed {after.dead_man.armed}"
        )
    return (
        f"bad ttls refused; order cancelled {took:.2f} s after a {TTL_MS} ms heartbeat "
        "('dead-man: ...'), trip counted"
    )
