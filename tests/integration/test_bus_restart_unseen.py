"""A Redis restarted empty while ingest wrote nothing (not scheduled, or nothing to write): the
bus lost what the recorder and the bars had not read, whether or not a write of ingest failed.
The loss is still a gap, and the bars repaired from the venue's candles.

Deterministic forms of a run of test_pipeline_faults's Redis restart on a loaded machine, where
ingest logged no error while Redis was down, wrote no gap marker and the bars were never repaired:
- ingest stopped (SIGSTOP) across the restart: its next write fails on its connection to the old
  Redis (closed under it), which the writer takes for an outage and checks for a restart;
- the venue stopped across it (ingest idle, nothing to write), the recorder and the bars stopped
  before it (entries unread): ingest's other work on the bus (its leases, its look at the consumer
  groups) meets the closed connection first and opens it again on the new Redis, and the writer's
  next write lands there with no error at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.integration.mesh import OwnRedis
from tests.integration.pipeline_support import trade_count
from tests.integration.postgres_server import database_url, recorder_database
from tests.integration.support import until
from tests.integration.test_pipeline_faults import assert_repaired_like_the_venue, db, own_pipeline
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.bus.venue_lease import venue_lease_name
from trademesh.core.platform.bus.writer import BusWriter
from trademesh.core.platform.replicas.lease import lease_key
from trademesh.core.platform.service.process import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["database_url", "db", "recorder_database"]  # fixtures, for pytest

TRADES = "md.{sim}.trades"


async def test_redis_restarted_empty_while_ingest_stood_still_is_a_gap_the_bars_repair(
    tmp_path: Path, recorder_database: str, db: asyncpg.Connection
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        pipeline = await own_pipeline(stack, tmp_path, recorder_database)
        redis, ingest = pipeline.redis, pipeline.running["ingest"].process
        await until(lambda: trade_count(db, 2000), 60, 0.2, "2,000 trades recorded")
        ingest.send_signal(signal.SIGSTOP)
        try:
            redis.kill()
            redis.start()
        finally:
            ingest.send_signal(signal.SIGCONT)
        recorded = await trade_count(db, 0) or 0
        await until(lambda: trade_count(db, recorded + 3000), 60, 0.2, "trades recorded after the restart")
        await assert_repaired_like_the_venue(db, pipeline.sim.process)
        await pipeline.assert_serving()
    assert "run id changed" in pipeline.mesh.log("ingest")


async def test_redis_restarted_empty_while_ingest_had_nothing_to_write_is_a_gap_the_bars_repair(
    tmp_path: Path, recorder_database: str, db: asyncpg.Connection
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        pipeline = await own_pipeline(stack, tmp_path, recorder_database)
        redis, running, venue = pipeline.redis, pipeline.running, pipeline.sim.process
        await until(lambda: trade_count(db, 2000), 60, 0.2, "2,000 trades recorded")
        readers = [running["recorder"], running["bars"]]
        stopped = [*readers, venue]
        stack.callback(resume, stopped)  # a failed wait leaves no process stopped
        for process in readers:
            process.process.send_signal(signal.SIGSTOP)
        client: Any = open_redis(redis.url)
        try:
            last = (await client.xinfo_stream(TRADES))["last-generated-id"]
            await until(lambda: entries_after(client, last, 20), 30, 0.1, "trades unread")
            venue.process.send_signal(signal.SIGSTOP)
            await until(lambda: still(client), 30, 0.5, "ingest done writing")
        finally:
            await client.aclose()
        redis.kill()
        redis.start()  # empty: what the recorder and the bars had not read is lost
        # Ingest's other work meets its closed connections (and opens them again on the new Redis).
        await until(lambda: lease_taken_again(redis.url), 30, 0.2, "ingest's lease renewed on the new Redis")
        resume(stopped)
        recorded = await trade_count(db, 0) or 0
        await until(lambda: trade_count(db, recorded + 3000), 60, 0.2, "trades recorded after the restart")
        await assert_repaired_like_the_venue(db, venue)
        await pipeline.assert_serving()
    assert "run id changed" in pipeline.mesh.log("ingest")


def resume(processes: list[ServiceProcess]) -> None:
    for process in processes:
        if process.process.poll() is None:
            process.process.send_signal(signal.SIGCONT)


async def entries_after(client: Any, entry_id: bytes, count: int) -> bool | None:
    """True once `count` entries of the trades stream follow `entry_id`."""
    later = await client.xrange(TRADES, min=b"(" + entry_id, count=count)
    return True if len(later) >= count else None


async def still(client: Any) -> bool | None:
    """True once no entry was added to the trades stream for a second."""
    before = (await client.xinfo_stream(TRADES))["last-generated-id"]
    await asyncio.sleep(1.0)  # the span without a write that this check is about
    after = (await client.xinfo_stream(TRADES))["last-generated-id"]
    return True if after == before else None


async def lease_taken_again(url: str) -> bool | None:
    client: Any = open_redis(url)
    try:
        return True if await client.exists(lease_key(venue_lease_name("sim"))) else None
    finally:
        await client.aclose()


async def test_the_writer_says_a_restart_none_of_its_writes_met(tmp_path: Path) -> None:
    """The writer alone: an entry written and not read, Redis restarted empty while the writer
    had nothing to write. Its look at the groups says the loss, from before that entry, with no
    write failed."""
    redis = OwnRedis(tmp_path)
    redis.start()
    client: Any = open_redis(redis.url)
    writer = BusWriter(Publisher(client), "test")
    losses: list[dict[str, int]] = []  # the losses said: stream -> loss horizon (ns)
    writer.on_loss = losses.append
    stop = asyncio.Event()
    tasks = [asyncio.create_task(writer.run(stop))]
    try:
        assert await writer.connect(stop, redis.url)
        await writer.publish(TRADES, b"")
        [(entry_id, _)] = await until(lambda: written(client), 10, what="the entry written")
        await client.xgroup_create(TRADES, "readers", id="0")  # a group that read nothing
        tasks.append(asyncio.create_task(writer.watch_groups(lambda: [TRADES], stop, every_s=0.1)))
        redis.kill()
        redis.start()  # empty: the entry is lost
        await until(lambda: said(losses), 10, what="the loss said")
        entry_ns = int(entry_id.split(b"-")[0]) * 1_000_000
        assert len(losses) == 1 and list(losses[0]) == [TRADES] and 0 < losses[0][TRADES] <= entry_ns
        assert writer.outages == 0  # no write met the restart
    finally:
        stop.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        await client.aclose()
        redis.kill()


async def written(client: Any) -> list[Any] | None:
    return await client.xrange(TRADES) or None


async def said(losses: list[dict[str, int]]) -> bool | None:
    return True if losses else None
