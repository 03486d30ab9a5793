"""The one reader of the `logs` stream for every following Tail (trademesh.gateway.logs.following), on a
real Redis: followers joining at different ids each get every line after their own, in order,
once; a follower too slow for its queue catches up alone, losing nothing and slowing no other;
the reader stops with the last follower."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.mesh import redis_db
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.logs.stream.entry import FIELD, STREAM
from trademesh.gateway.logs.following import FOLLOW_COUNT, QUEUED_BATCHES, Following
from trademesh.gateway.logs.query import Query
from trademesh.gateway.logs.reader import BoundedReads

pytestmark = [pytest.mark.integration]
__all__ = ["redis_url"]  # the fixture, for pytest

FOLLOW = Query(follow=True)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Any]:
    async with redis_db(redis_url) as url:
        client = open_redis(url)
        try:
            yield client
        finally:
            await client.aclose()


async def log(redis: Any, *messages: str) -> str:
    """The lines on the stream as the handler writes them; the last one's id."""
    last = ""
    async with redis.pipeline(transaction=False) as pipe:
        for message in messages:
            pipe.xadd(STREAM, {FIELD: json.dumps({"t": 1, "lvl": "INFO", "svc": "t", "msg": message})})
        ids = await pipe.execute()
    last = ids[-1].decode() if isinstance(ids[-1], bytes) else str(ids[-1])
    return last


async def collect(lines: AsyncIterator[list[Any]], count: int) -> list[str]:
    found: list[str] = []
    async with asyncio.timeout(CALL_TIMEOUT_S * 3):
        async for batch in lines:
            found += [entry.message for entry in batch]
            if len(found) >= count:
                return found
    return found


async def test_followers_from_different_ids_each_get_every_line_after_their_own_once(redis: Any) -> None:
    stopping = asyncio.Event()
    following = Following(redis, BoundedReads(redis, 4), stopping)
    first_id = await log(redis, "a0")
    early = following.follow(FOLLOW, first_id)
    early_lines = asyncio.create_task(collect(early, 6))
    await log(redis, "a1", "a2")
    middle_id = await log(redis, "a3")
    late = following.follow(FOLLOW, middle_id)
    late_lines = asyncio.create_task(collect(late, 3))
    await log(redis, "a4", "a5", "a6")
    assert await early_lines == ["a1", "a2", "a3", "a4", "a5", "a6"]
    assert await late_lines == ["a4", "a5", "a6"]
    await early.aclose()
    await late.aclose()
    assert following.followers == 0
    await following.close()


async def test_a_follower_too_slow_for_its_queue_catches_up_alone_losing_nothing(redis: Any) -> None:
    stopping = asyncio.Event()
    following = Following(redis, BoundedReads(redis, 4), stopping)
    start = await log(redis, "start")
    slow, quick = following.follow(FOLLOW, start), following.follow(FOLLOW, start)
    total = (QUEUED_BATCHES + 4) * FOLLOW_COUNT
    quick_lines = asyncio.create_task(collect(quick, total))
    slow_first = asyncio.create_task(collect(slow, 1))
    for chunk in range(0, total, 1000):
        await log(redis, *(f"m{n}" for n in range(chunk, min(chunk + 1000, total))))
    expected = [f"m{n}" for n in range(total)]
    assert await quick_lines == expected  # the quick one was never held back
    seen = await slow_first
    rest = await collect(slow, total - len(seen))
    assert seen + rest == expected  # in order, once each, though its queue overflowed
    await slow.aclose()
    await quick.aclose()
    await following.close()
