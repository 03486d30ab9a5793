"""A market stream's retention by age as well as by count (issue 57 item 2), on a real Redis and a
real Redis Cluster: entries older than the outage window go with the next write to the stream,
whichever way it is written (a pipelined flush, a venue's fenced run as the bus's script, a
MULTI/EXEC group), entries within it stay, and a consumer group behind by less than the window
reads every entry; the count cap still bounds a burst."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import redis_db
from tests.integration.redis_cluster import emptied_cluster
from tests.integration.redis_server import redis_url
from trademesh.core.domain.model import Channel
from trademesh.core.platform.bus.append import Append, Retention
from trademesh.core.platform.bus.codec import FIELD
from trademesh.core.platform.bus.group import Fenced, GroupWrite, write_group
from trademesh.core.platform.bus.names import executions_stream, market_stream
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.replicas.lease import Lease

pytestmark = pytest.mark.integration
__all__ = ["redis_url"]  # the fixture, for pytest

_RETENTION = Retention(entries_per_s=10, outage_minutes=10)  # MAXLEN ~ 6000, 10 minutes
_WINDOW_MS = 600_000
# Approximate trimming removes whole macro-nodes (at most 100 entries each, Redis's default): one
# node can straddle the cut and keep that many entries older than it.
_NODE = 100
_OLD, _RECENT = 1_000, 300
_STREAM = market_stream("t", Channel.BOOK)


@pytest.fixture
async def client(redis_url: str) -> AsyncIterator[Any]:
    async with redis_db(redis_url) as url:
        redis: Any = aioredis.Redis.from_url(url)
        try:
            yield redis
        finally:
            await redis.aclose()


@pytest.fixture
async def cluster(redis_cluster_url: str) -> AsyncIterator[Any]:
    async with emptied_cluster(redis_cluster_url) as url:
        redis: Any = open_redis(url)
        try:
            yield redis
        finally:
            await redis.aclose()


async def _seed(redis: Any, stream: str) -> int:
    """_OLD entries 20 to 15 minutes old, then _RECENT 9 to 1 minutes old (ids are ms times); the
    cut a write now makes (ms)."""
    now_ms = int(time.time() * 1000)
    for i in range(_OLD):
        await redis.xadd(stream, {FIELD: b"old"}, id=f"{now_ms - 1_200_000 + i * 300}-0")
    for i in range(_RECENT):
        await redis.xadd(stream, {FIELD: b"recent"}, id=f"{now_ms - 540_000 + i * 1_600}-0")
    return now_ms - _WINDOW_MS


async def _kept(redis: Any, stream: str, cut_ms: int) -> tuple[int, int]:
    """Entries older than the cut and entries within it, still on the stream."""
    ids = [int(entry_id.split(b"-")[0]) for entry_id, _ in await redis.xrange(stream)]
    return sum(1 for ms in ids if ms < cut_ms), sum(1 for ms in ids if ms >= cut_ms)


async def _held_fence(redis: Any, venue: str) -> Fenced:
    lease = Lease(redis, f"ingest.{{{venue}}}", "writer@test", 60_000)
    assert await lease.acquire() and lease.token is not None
    return Fenced(lease.key, lease.token)


def test_the_age_bound_is_the_outage_window() -> None:
    assert _RETENTION.max_age_ms == _WINDOW_MS and Retention(2000, 10).max_age_ms == 600_000
    assert Retention(2000, 10).maxlen == 1_200_000, "the count cap stays"


async def test_a_flush_trims_entries_older_than_the_window_and_keeps_the_rest(client: Any) -> None:
    cut = await _seed(client, _STREAM)
    publisher = Publisher(client, _RETENTION)
    publisher.add(_STREAM, b"new", aged=True)
    await publisher.flush()
    old, recent = await _kept(client, _STREAM, cut)
    assert old < _NODE, f"{old} of {_OLD} entries past the window kept"
    assert recent == _RECENT + 1, "every entry within the window stays"


async def test_a_fenced_run_trims_by_age_in_the_script(client: Any) -> None:
    cut = await _seed(client, _STREAM)
    publisher = Publisher(client, _RETENTION)
    fence = await _held_fence(client, "t")
    for i in range(5):
        publisher.add(_STREAM, f"run {i}".encode(), fence=fence, aged=True)
    assert all(await publisher.flush())
    old, recent = await _kept(client, _STREAM, cut)
    assert old < _NODE and recent == _RECENT + 5


async def test_an_unguarded_group_trims_its_aged_streams(client: Any) -> None:
    cut = await _seed(client, _STREAM)
    append = Append(_STREAM, b"new", _RETENTION.maxlen, (), _RETENTION.max_age_ms)
    result = await write_group(client, GroupWrite(appends=(append,)))
    assert len(result.ids) == 1
    old, recent = await _kept(client, _STREAM, cut)
    assert old < _NODE and recent == _RECENT + 1


async def test_streams_not_aged_keep_their_old_entries(client: Any) -> None:
    stream = executions_stream("t")  # an account's executions: the count alone
    cut = await _seed(client, stream)
    publisher = Publisher(client, _RETENTION)
    publisher.add(stream, b"fill")
    fence = await _held_fence(client, "t")
    publisher.add(stream, b"fill", fence=fence)
    await publisher.flush()
    assert await _kept(client, stream, cut) == (_OLD, _RECENT + 2)


async def test_a_group_behind_by_less_than_the_window_loses_nothing(client: Any) -> None:
    await _seed(client, _STREAM)
    # A group that read up to the last old entry, then was away for 9 minutes.
    entries = await client.xrange(_STREAM, count=_OLD)
    await client.xgroup_create(_STREAM, "recorder", id=entries[-1][0])
    publisher = Publisher(client, _RETENTION)
    for i in range(20):  # writes while it is away, each trimming
        publisher.add(_STREAM, f"new {i}".encode(), aged=True)
        await publisher.flush()
    read = await client.xreadgroup("recorder", "c", {_STREAM: ">"}, count=10_000)
    data = [fields[FIELD] for _, fields in read[0][1]]
    assert data == [b"recent"] * _RECENT + [f"new {i}".encode() for i in range(20)]


async def test_the_count_cap_still_bounds_a_burst(client: Any) -> None:
    publisher = Publisher(client, Retention(entries_per_s=1, outage_minutes=1))  # MAXLEN ~ 1000
    for _ in range(5):
        for i in range(1000):
            publisher.add(_STREAM, f"{i}".encode(), aged=True)
        await publisher.flush()
    assert 1000 <= await client.xlen(_STREAM) < 2000


async def test_the_age_trim_works_on_a_cluster_by_either_path(cluster: Any) -> None:
    venues = ["ta", "tb", "tc", "td"]
    streams = [market_stream(venue, Channel.TRADES) for venue in venues]
    cuts = [await _seed(cluster, stream) for stream in streams]
    publisher = Publisher(cluster, _RETENTION)
    fences = [await _held_fence(cluster, venue) for venue in venues[:2]]
    for stream, fence in zip(streams[:2], fences, strict=True):  # fenced: the script
        publisher.add(stream, b"new", fence=fence, aged=True)
    for stream in streams[2:]:  # plain: the pipeline, each XTRIM to its stream's node
        publisher.add(stream, b"new", aged=True)
    assert all(await publisher.flush())
    for stream, cut in zip(streams, cuts, strict=True):
        old, recent = await _kept(cluster, stream, cut)
        assert old < _NODE and recent == _RECENT + 1, stream


async def test_a_group_near_the_age_bound_is_reported_near_the_trim(client: Any) -> None:
    await _seed(client, _STREAM)
    entries = await client.xrange(_STREAM, count=_OLD + 1)
    # Last read the first recent entry (9 minutes old): 90 % of the window behind, 300 entries.
    await client.xgroup_create(_STREAM, "recorder", id=entries[-1][0])
    publisher = Publisher(client, _RETENTION)
    publisher.add(_STREAM, b"now", aged=True)  # the newest entry: now
    await publisher.flush()
    (by_count,) = await publisher.check_lag(_STREAM)
    assert by_count.lag == _RECENT and not by_count.near_trim, "far from the count cap"
    (in_time,) = await publisher.check_lag(_STREAM, aged=True)
    assert in_time.near_trim and 0.85 * _WINDOW_MS <= in_time.behind_ms <= _WINDOW_MS
    await client.xgroup_setid(_STREAM, "recorder", id="$")
    (caught_up,) = await publisher.check_lag(_STREAM, aged=True)
    assert caught_up.behind_ms == 0 and not caught_up.near_trim
