"""The inspector and the venue's dead-man switch, as real processes (a sim venue, an inspector,
ingest and the recorder on a real Redis and PostgreSQL): a clean stop of the inspector leaves a
position's protection at the venue (the trip cancels the entries only), and every cancel says
why, on the venue's execution stream and in the recorder's executions table."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from tests.integration.inspector_mesh import AUTH, InspectorMesh, inspector_mesh, intent
from tests.integration.mesh import MeshProcesses
from tests.integration.postgres_server import database_url, fresh_database
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, until
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # sims and inspectors: not the fast tier
__all__ = ["database_url", "fresh_database", "redis_url"]  # fixtures

D = Decimal
WAIT_S = 30
TTL_MS = 2000


async def _settled_pair(mesh: InspectorMesh) -> list[tf.Order] | None:
    """The venue's reduce-only pair once it is exactly the one the inspector's position names."""
    positions = await mesh.positions()
    orders = [o for o in await mesh.open_orders() if o.reduce_only]
    if len(positions) != 1 or len(orders) != 2:
        return None
    named = {p.client_order_id for p in positions[0].protective}
    return orders if {o.client_order_id for o in orders} == named else None


async def _protected_with_a_resting_entry(mesh: InspectorMesh) -> tuple[list[tf.Order], str]:
    """A long with its protective pair at the venue, and an entry buy resting far below."""
    mark = await mesh.mark()
    entered = await mesh.submit(intent(stop_loss=str(mark - 1000), take_profit=str(mark + 1000)))
    assert entered.action == rk.RISK_ACTION_ALLOW, entered
    pair = await until(lambda: _settled_pair(mesh), WAIT_S, 0.05, "the protective pair")
    resting = intent(entry_type=tf.ORDER_TYPE_LIMIT, entry_price=str((mark * D("0.97")).quantize(D(1))))
    placed = await mesh.submit(resting)
    assert placed.order.status == tf.ORDER_STATUS_OPEN, [(e.policy, e.reason) for e in placed.reasons]
    return pair, placed.order.order_id


async def _tripped(mesh: InspectorMesh) -> admin.DeadManStatus | None:
    status = await mesh.venue_stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    return status.dead_man if status.dead_man.trips >= 1 else None


async def test_a_clean_stop_of_the_inspector_leaves_the_protection_at_the_venue(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url, "--deadman-ttl-ms", str(TTL_MS)) as mesh:
        pair, entry = await _protected_with_a_resting_entry(mesh)
        assert mesh.process is not None
        process = mesh.process
        await mesh.stop()  # SIGTERM: a clean stop, as Ctrl-C of `trademesh up` gives it
        assert process.process.returncode == 0, mesh.log()
        dead_man = await until(lambda: _tripped(mesh), TTL_MS / 1000 + 5, 0.1, "the venue's dead-man trip")
        at_venue = await mesh.open_orders()
        assert sorted(o.order_id for o in at_venue) == sorted(o.order_id for o in pair), "protection lost"
        canceled = await mesh.venue_stubs.tf.GetOrder(
            tf.GetOrderRequest(order_id=entry), timeout=CALL_TIMEOUT_S
        )
        assert canceled.order.status == tf.ORDER_STATUS_CANCELED
        assert canceled.order.status_reason.startswith(f"dead-man: no heartbeat within {TTL_MS} ms")
        assert (dead_man.last_trip_canceled, dead_man.last_trip_kept) == (1, 2)


async def test_the_recorder_keeps_why_each_order_was_cancelled(
    tmp_path: Path, redis_url: str, fresh_database: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        mesh = await stack.enter_async_context(
            inspector_mesh(tmp_path, redis_url, "--deadman-ttl-ms", str(TTL_MS), via_bus=True)
        )
        recorder = MeshProcesses(tmp_path, mesh.bus, fresh_database)
        stack.push_async_callback(recorder.stop_all)
        recorder.start("recorder")
        first_pair, entry = await _protected_with_a_resting_entry(mesh)
        # A second entry on the same side, with levels of its own: the inspector re-plans the
        # pair to them, amending the first one's orders (in place at the sim: the same orders,
        # which the trip keeps, reduce-only).
        mark = await mesh.mark()
        grown = await mesh.submit(intent(size="0.01", stop_loss=str(mark - 900), take_profit=str(mark + 900)))
        assert grown.action == rk.RISK_ACTION_ALLOW, grown
        first_ids = {o.order_id for o in first_pair}
        first_names = {o.client_order_id for o in first_pair}
        await until(lambda: _replanned(mesh, first_names), WAIT_S, 0.05, "the pair re-planned")
        # An operator cancels another resting entry through the inspector.
        resting = intent(entry_type=tf.ORDER_TYPE_LIMIT, entry_price=str((mark * D("0.96")).quantize(D(1))))
        second = await mesh.submit(resting)
        asked = rk.CancelOrderRequest(
            venue="sim", client_order_id=second.client_order_id, reason="too far out"
        )
        await mesh.stub.CancelOrder(asked, metadata=AUTH, timeout=CALL_TIMEOUT_S)
        await mesh.stop()
        await until(lambda: _tripped(mesh), TTL_MS / 1000 + 5, 0.1, "the venue's dead-man trip")

        conn = await asyncpg.connect(fresh_database)
        stack.push_async_callback(conn.close)
        expected = {entry, second.order.order_id}
        rows = await until(lambda: _canceled_rows(conn, expected), WAIT_S, 0.2, "the cancels recorded")
        kept = {o.order_id: o for o in await mesh.open_orders()}
    reasons = {row["order_id"]: row["status_reason"] for row in rows}
    assert reasons[entry].startswith(f"dead-man: no heartbeat within {TTL_MS} ms")
    assert reasons[second.order.order_id] == "inspector: operator: too far out"
    for order_id in first_ids:  # amended, then kept by the trip
        assert (
            kept[order_id].status_reason.startswith("inspector: ")
            and "amended" in kept[order_id].status_reason
        )


async def _replanned(mesh: InspectorMesh, first: set[str]) -> bool | None:
    """The first pair's client order ids gone from the venue, protection resting under new ones."""
    protective = {o.client_order_id for o in await mesh.open_orders() if o.reduce_only}
    return True if len(protective) >= 2 and not first & protective else None


async def _canceled_rows(conn: asyncpg.Connection, order_ids: set[str]) -> list[asyncpg.Record] | None:
    rows = await conn.fetch(
        "SELECT order_id, status_reason FROM executions WHERE status = 'canceled' AND order_id = ANY($1)",
        list(order_ids),
    )
    return rows if {row["order_id"] for row in rows} == order_ids else None
