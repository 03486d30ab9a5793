"""What the tests of a recorded bus stream share (test_recorded_regimes, test_recorded_screens):
services started with their logs kept, the recorder's arguments for one stream pattern, and the
kill -9 mid-stream and restart that must record every entry once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any

from tests.integration.support import TEST_TOKEN, until
from trademesh.core.platform.config.env import TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service

__all__ = ["Processes", "recorded_after_a_kill", "recorder_args", "start"]

WAIT_S = 30.0
Processes = list[tuple[ServiceProcess, IO[str]]]
Rows = list[tuple[Any, ...]]


def start(processes: Processes, tmp_path: Path, *args: str) -> ServiceProcess:
    log = (tmp_path / f"{args[0]}-{len(processes)}.log").open("w")
    process = start_service(list(args), env={TOKEN: TEST_TOKEN}, stderr=log, timeout_s=60)
    processes.append((process, log))
    return process


def recorder_args(bus_url: str, database: str, pattern: str, *extra: str) -> tuple[str, ...]:
    """A recorder reading only the streams of `pattern`, as consumer c1."""
    return ("recorder", "--port", "0", "--metrics-port", "-1", "--redis-url", bus_url, "--database-url",
            database, "--consumer", "c1", "--stream-pattern", pattern, *extra)  # fmt: skip


async def recorded_after_a_kill(
    processes: Processes, tmp_path: Path, args: tuple[str, ...], recorded: Callable[[], Awaitable[Rows]],
    total: int, what: str,
) -> Rows:  # fmt: skip
    """A recorder (`args`, writing two rows a batch) killed -9 once it has written some of the
    `total` rows the bus holds, then the same consumer restarted (50 a batch): its rows once it
    has `total`."""
    first = start(processes, tmp_path, *args, "--batch", "2")

    async def some() -> int | None:
        count = len(await recorded())
        return count if count > 0 else None

    await until(some, WAIT_S, interval_s=0.01, what="the first rows")
    first.process.kill()
    assert first.process.wait(10) == -9
    at_kill = len(await recorded())
    assert 0 < at_kill < total, "killed mid-stream"
    start(processes, tmp_path, *args, "--batch", "50")  # the same consumer

    async def counted() -> Rows | None:
        rows = await recorded()
        return rows if len(rows) == total else None

    return await until(counted, WAIT_S, what=what)
