"""Ingest's bus writer across a Redis restarted empty (a redis-server of the test's own): the
writes queued while it was away land once it is back, and the restart is said (on_loss, from
the loss horizon) before any of them lands, whatever the timing of the first answer after the
outage: the run id is read and compared at the start of the next attempt, not only when the
outage's own retry happens to reach Redis (a write that landed first hid a restart: the bars
were never repaired, one run in three of test_pipeline_faults on a loaded machine). The race
itself is a matter of timing; this test holds the outcome."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from tests.integration.mesh import OwnRedis
from tests.integration.support import until
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.bus.writer import BusWriter

STREAM = "md.{sim}.trades"


async def test_a_restart_is_said_before_the_queued_writes_land(tmp_path: Path) -> None:
    redis = OwnRedis(tmp_path)
    redis.start()
    client: Any = open_redis(redis.url)
    writer = BusWriter(Publisher(client), "test")
    losses: list[dict[str, int]] = []  # the losses said: stream -> loss horizon (ns)
    stop = asyncio.Event()
    try:
        assert await writer.connect(stop, redis.url)

        landed: list[Any] = []
        writer.on_loss = losses.append
        running = asyncio.create_task(writer.run(stop))
        await writer.publish(STREAM, b"first")
        await until(lambda: _entries(client, 1, landed), 10, what="the first entry written")
        redis.kill()
        await writer.publish(STREAM, b"while away")
        await until(lambda: _outage(writer), 10, what="the writer's outage")
        redis.start()  # empty: a new run id
        await until(
            lambda: _entries(client, 1, landed), 20, what="the queued entry written after the restart"
        )
        assert len(losses) == 1 and list(losses[0]) == [STREAM] and 0 < losses[0][STREAM] < time.time_ns()
        assert len(landed) == 1  # the entry queued while away; the first went with the restart
        stop.set()
        await asyncio.wait_for(running, 10)
    finally:
        stop.set()
        await client.aclose()
        redis.kill()


async def _entries(client: Any, count: int, landed: list[Any]) -> bool | None:
    try:
        entries = await client.xrange(STREAM)
    except Exception:  # Redis restarting: not yet
        return None
    landed[:] = entries
    return True if len(entries) >= count else None


async def _outage(writer: BusWriter) -> bool | None:
    return True if writer.outages >= 1 else None
