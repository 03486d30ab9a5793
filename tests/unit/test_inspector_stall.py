"""An execution stuck in the inspector past a bound (no deadline caught it) ends the service
with the tasks' stacks in its log, so that its supervisor starts it afresh, rather than it stay
deaf to its fills (a full-suite chaos run left the inspector hearing no execution for 80 s)."""

from __future__ import annotations

import asyncio
import logging

import pytest

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.inspector.app import watch_stalls
from trademesh.core.inspector.exec_bus import BusExecutions
from trademesh.core.platform.errors import Unavailable
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf


def _executions(on_execution: object) -> BusExecutions:
    async def on_gap(venue: str) -> None:
        return None

    return BusExecutions(None, "inspector", "inspector", ["sim"], on_execution, on_gap)  # type: ignore[arg-type]


def _entry() -> tuple[str, bus.Envelope]:
    envelope = bus.Envelope()
    envelope.executions.venue = "sim"
    envelope.executions.executions.append(tf.Execution(venue="sim"))
    return "1-0", envelope


async def test_an_execution_stuck_past_the_bound_ends_the_service_with_its_tasks_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    never = asyncio.Event()

    async def stuck(execution: tf.Execution) -> None:
        await never.wait()

    executions = _executions(stuck)
    handling = asyncio.create_task(executions._handle("exec.{sim}", [_entry()]))
    stop = asyncio.Event()
    try:
        with pytest.raises(Unavailable, match="stalled"):
            await asyncio.wait_for(watch_stalls(stop, executions, stall_s=0.2), 5)
    finally:
        handling.cancel()
        await asyncio.gather(handling, return_exceptions=True)
    assert any("asyncio tasks" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert executions.stalled_s() == 0.0  # the cancelled batch is no longer counted


async def test_executions_that_go_through_are_no_stall() -> None:
    seen: list[tf.Execution] = []

    async def quick(execution: tf.Execution) -> None:
        seen.append(execution)

    executions = _executions(quick)
    stop = asyncio.Event()
    watching = asyncio.create_task(watch_stalls(stop, executions, stall_s=0.2))
    for _ in range(5):
        await executions._handle("exec.{sim}", [_entry()])
        await asyncio.sleep(0.1)
    stop.set()
    await asyncio.wait_for(watching, 5)  # ended by the stop, not by a stall
    assert len(seen) == 5 and executions.stalled_s() == 0.0


async def test_without_the_bus_s_executions_the_watchdog_waits_for_the_stop() -> None:
    """Executions straight from the venues (`--executions venue`): nothing to watch, and the
    watchdog must not end the service."""
    stop = asyncio.Event()
    watching = asyncio.create_task(watch_stalls(stop, None, stall_s=0.05))
    await asyncio.sleep(0.2)
    assert not watching.done()
    stop.set()
    await asyncio.wait_for(watching, 5)
