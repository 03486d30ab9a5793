"""Executions on the bus: a real sim venue, real ingest and recorder processes, a real Redis and
PostgreSQL. Orders placed on the sim reach `exec.{sim}` in the venue's order and the recorder's
`executions` table, exactly once through a kill -9 of ingest; a restarted venue (a new epoch)
is a gap marker, then the new process's executions from its first."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import MeshProcesses, redis_db, sim_config
from tests.integration.postgres_server import database_url, fresh_database
from tests.integration.redis_server import redis_url
from tests.integration.support import (
    CALL_TIMEOUT_S,
    VENUE_ENV,
    Executions,
    Stubs,
    Venue,
    limit_order,
    open_streams,
    until,
)
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # whole meshes and restarts
__all__ = ["database_url", "fresh_database", "redis_url"]  # the fixtures, for pytest

STREAM = "exec.{sim}"
WAIT_S = 45.0


def start_sim(stack: contextlib.AsyncExitStack, tmp_path: Path, port: int = 0, *extra: str) -> Venue:
    """A quiet sim venue (a few events a second: the test is about orders), ended with `stack`."""
    config = sim_config(tmp_path, 5, 20)
    args = ["venue", "sim", "--port", str(port), "--metrics-port", "-1", "--config", str(config), *extra]
    log_path = tmp_path / "sim.log"
    with log_path.open("a") as log:
        service = start_service(args, env=VENUE_ENV, stderr=log)
    stack.push_async_callback(asyncio.to_thread, service.terminate)
    venue = Venue(service, log_path)
    stack.push_async_callback(venue.close_channels)
    return venue


def kill(service: ServiceProcess) -> None:
    service.process.send_signal(signal.SIGKILL)
    service.process.wait()


async def trade_round(stubs: Stubs, n: int, market: bool = True) -> None:
    """One resting limit order cancelled (OPEN, CANCELED) and, every third round (unless not
    `market`), a small market order (OPEN, its fills, FILLED), buying and selling in turn."""
    placed = await stubs.tf.PlaceOrder(
        limit_order("BTC/USDT", common.SIDE_BUY, "0.001", "30000.00", client_order_id=f"rest-{n}"),
        timeout=CALL_TIMEOUT_S,
    )
    await stubs.tf.CancelOrder(tf.CancelOrderRequest(order_id=placed.order.order_id), timeout=CALL_TIMEOUT_S)
    if market and n % 3 == 0:
        side = common.SIDE_BUY if n % 6 == 0 else common.SIDE_SELL
        order = tf.PlaceOrderRequest(
            symbol="BTC/USDT", side=side, type=tf.ORDER_TYPE_MARKET, size="0.001", client_order_id=f"mkt-{n}"
        )
        await stubs.tf.PlaceOrder(order, timeout=CALL_TIMEOUT_S)


async def trade_until(stubs: Stubs, stop: asyncio.Event, first: int = 0) -> int:
    """Rounds until stopped; how many."""
    n = first
    while not stop.is_set():
        await trade_round(stubs, n)
        n += 1
        await asyncio.sleep(0.02)
    return n - first


async def bus_entries(url: str) -> list[tuple[dict[bytes, bytes], bus.Executions]]:
    client: Any = aioredis.Redis.from_url(url)
    try:
        return [(fields, decode(fields).executions) for _, fields in await client.xrange(STREAM)]
    finally:
        await client.aclose()


async def bus_executions(url: str) -> list[tuple[int, tf.Execution]]:
    """(epoch, execution) of every execution on exec.{sim}, in stream order."""
    return [(batch.epoch, e) for _, batch in await bus_entries(url) for e in batch.executions]


async def at_least(url: str, count: int) -> int | None:
    found = len(await bus_executions(url))
    return found if found >= count else None


async def witness(stubs: Stubs) -> Executions:
    """A plain StreamExecutions subscriber, open before any order: it sees every execution."""
    executions = Executions(stubs)
    await until(lambda: open_streams(stubs, 1), CALL_TIMEOUT_S, what="the witness stream")
    return executions


async def test_executions_reach_the_bus_and_the_recorder_once_through_a_kill_9_of_ingest(
    tmp_path: Path, redis_url: str, fresh_database: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(redis_db(redis_url))
        venue = start_sim(stack, tmp_path)
        stubs = venue.stubs()
        seen = await witness(stubs)
        for n in range(3):  # before ingest starts: it asks the venue for everything it holds
            await trade_round(stubs, n)
        mesh = MeshProcesses(tmp_path, url, fresh_database)
        stack.push_async_callback(mesh.stop_all)
        ingest = mesh.start("ingest", "--venue", f"sim={venue.address}")
        mesh.start("recorder")
        stop = asyncio.Event()
        trading = asyncio.create_task(trade_until(stubs, stop, first=3))
        try:
            await until(lambda: at_least(url, 40), WAIT_S, 0.1, "40 executions on the bus")
            kill(ingest)
            missed = len(seen.seen) + 20  # orders go on with nobody following: 20 executions

            async def gone_on() -> bool | None:
                return True if len(seen.seen) >= missed else None

            await until(gone_on, WAIT_S, 0.05, "20 executions while ingest is down")
            before = len(await bus_executions(url))
            mesh.start("ingest", "--venue", f"sim={venue.address}")
            await until(lambda: at_least(url, before + 40), WAIT_S, 0.1, "40 more executions")
        finally:
            stop.set()
            await trading
        # A marker after everything: once its cancel is on the bus, whatever ingest would publish
        # before it (a late repeat of a resumed stretch) is there too.
        await trade_round(stubs, 10_000, market=False)

        async def marker_witnessed() -> int | None:
            return len(seen.seen) if _is_marker(seen.seen[-1]) else None

        total = await until(marker_witnessed, WAIT_S, 0.05, "the marker at the witness")

        async def marker_on_bus() -> bool | None:
            on_bus = await bus_executions(url)
            return True if on_bus and _is_marker(on_bus[-1][1]) else None

        await until(marker_on_bus, WAIT_S, 0.1, "the marker on the bus")
        on_bus = await bus_executions(url)
        entries = await bus_entries(url)
        conn = await asyncpg.connect(fresh_database)
        stack.push_async_callback(conn.close)
        await until(lambda: _recorded(conn, total), WAIT_S, 0.2, f"all {total} executions recorded")
        rows = await conn.fetch("SELECT * FROM executions ORDER BY sequence")
        ingest_log = mesh.log("ingest")
    # On the bus: every execution of the venue, once, in its order, with its sequence.
    assert len(on_bus) == total
    assert [e.SerializeToString() for _, e in on_bus] == [e.SerializeToString() for e in seen.seen]
    assert [e.sequence for _, e in on_bus] == list(range(1, total + 1))
    assert len({epoch for epoch, _ in on_bus}) == 1
    assert not any(batch.gap for _, batch in entries), "a resumed stream needs no gap marker"
    assert all(batch.venue == "sim" for _, batch in entries)
    assert all(fields[b"p"] == str(batch.position).encode() for fields, batch in entries)
    assert "resumed after execution" in ingest_log
    statuses = {e.order.status for _, e in on_bus}
    assert {tf.ORDER_STATUS_OPEN, tf.ORDER_STATUS_CANCELED, tf.ORDER_STATUS_FILLED} <= statuses
    # In PostgreSQL: one row each, money as NUMERIC equal to the wire's decimals.
    assert [r["sequence"] for r in rows] == list(range(1, total + 1))
    fills = [(r, e) for r, (_, e) in zip(rows, on_bus, strict=True) if e.HasField("fill")]
    assert fills
    for row, execution in fills:
        assert row["order_id"] == execution.order.order_id and row["fill_id"] == execution.fill.fill_id
        assert row["fill_price"] == Decimal(execution.fill.price)
        assert row["fee"] == Decimal(execution.fill.fee)
        assert row["filled_size"] == Decimal(execution.order.filled_size)
    rested = [r for r in rows if r["client_order_id"] == "rest-0"]
    assert [r["status"] for r in rested] == ["open", "canceled"]
    assert rested[0]["price"] == Decimal("30000.00") and rested[0]["fill_id"] is None


def _is_marker(execution: tf.Execution) -> bool:
    order = execution.order
    return order.client_order_id == "rest-10000" and order.status == tf.ORDER_STATUS_CANCELED


async def _recorded(conn: asyncpg.Connection, count: int) -> int | None:
    found: int = await conn.fetchval("SELECT count(*) FROM executions")
    return found if found >= count else None


async def test_a_restarted_venue_is_a_gap_marker_then_its_executions_from_the_first(
    tmp_path: Path, redis_url: str, fresh_database: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(redis_db(redis_url))
        venue = start_sim(stack, tmp_path)
        port = venue.service.port
        mesh = MeshProcesses(tmp_path, url, fresh_database)
        stack.push_async_callback(mesh.stop_all)
        mesh.start("ingest", "--venue", f"sim=127.0.0.1:{port}")
        mesh.start("recorder")
        for n in range(4):
            await trade_round(venue.stubs(), n)
        await until(lambda: at_least(url, 8), WAIT_S, 0.1, "the first venue's executions")
        kill(venue.service)
        restarted = start_sim(stack, tmp_path, port)
        for n in range(4, 8):  # maybe before ingest is back: the new process holds them
            await trade_round(restarted.stubs(), n)
        await until(lambda: _new_epoch(url, 8), WAIT_S, 0.1, "the new venue's executions")
        entries = await bus_entries(url)
        conn = await asyncpg.connect(fresh_database)
        stack.push_async_callback(conn.close)
        await until(lambda: _recorded(conn, 16), WAIT_S, 0.2, "both venues' executions recorded")
        notices = await conn.fetch("SELECT * FROM notices WHERE channel = 'executions'")
        epochs = await conn.fetch("SELECT epoch, count(*) AS n FROM executions GROUP BY epoch ORDER BY epoch")
    gaps = [i for i, (_, batch) in enumerate(entries) if batch.gap]
    assert len(gaps) == 1
    marker = entries[gaps[0]][1]
    old = [e for _, batch in entries[: gaps[0]] for e in batch.executions]
    new = [e for _, batch in entries[gaps[0] :] for e in batch.executions]
    old_epoch = entries[0][1].epoch
    assert marker.epoch != old_epoch and marker.position == 0 and marker.venue == "sim"
    assert "did not make it" in marker.gap_reason
    assert [e.sequence for e in old] == list(range(1, len(old) + 1)) and len(old) >= 8
    assert [e.sequence for e in new] == list(range(1, len(new) + 1)) and len(new) >= 8
    assert all(batch.epoch == marker.epoch for _, batch in entries[gaps[0] :])
    assert {e.order.client_order_id for e in new} >= {f"rest-{n}" for n in range(4, 8)}
    assert len(notices) == 1 and notices[0]["reason"] == marker.gap_reason and notices[0]["kind"] == "gap"
    assert [r["epoch"] for r in epochs] == sorted([old_epoch, marker.epoch])
    assert sum(r["n"] for r in epochs) == len(old) + len(new)


async def _new_epoch(url: str, count: int) -> int | None:
    entries = await bus_entries(url)
    first = entries[0][1].epoch if entries else 0
    new = [e for _, batch in entries if batch.epoch != first for e in batch.executions]
    return len(new) if len(new) >= count else None


async def test_a_point_older_than_the_venue_history_is_a_gap_marker_then_what_it_holds(
    tmp_path: Path, redis_url: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(redis_db(redis_url))
        venue = start_sim(stack, tmp_path, 0, "--execution-history", "6")
        stubs = venue.stubs()
        mesh = MeshProcesses(tmp_path, url)
        stack.push_async_callback(mesh.stop_all)
        ingest = mesh.start("ingest", "--venue", f"sim={venue.address}")
        await trade_round(stubs, 1, market=False)  # OPEN, CANCELED
        await until(lambda: at_least(url, 2), WAIT_S, 0.1, "the first executions")
        kill(ingest)
        for n in range(2, 8):  # 12 executions while nobody follows; the venue keeps the last 6
            await trade_round(stubs, n, market=False)
        mesh.start("ingest", "--venue", f"sim={venue.address}")
        await until(lambda: at_least(url, 8), WAIT_S, 0.1, "what the venue still holds")
        await trade_round(stubs, 8, market=False)
        await until(lambda: at_least(url, 10), WAIT_S, 0.1, "live executions after the gap")
        entries = await bus_entries(url)
    gaps = [batch for _, batch in entries if batch.gap]
    assert len(gaps) == 1 and gaps[0].epoch == entries[0][1].epoch and gaps[0].position == 8
    assert "holds executions from 9" in gaps[0].gap_reason
    sequences = [e.sequence for _, batch in entries for e in batch.executions]
    assert sequences == [1, 2, *range(9, 17)], "before the gap, then the 6 held, then live ones"
