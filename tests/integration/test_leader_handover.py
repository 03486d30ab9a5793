"""trademesh.core.platform.replicas.leader's handover on a real Redis and a real Redis Cluster: a leader that
releases its lease (a graceful stop) says so on the lease's handover list, on which a waiting
standby is woken: it leads at once, not at its next ask (every ttl/3 before issue 56: 20 s with
this ttl). On a cluster the list is in the lease's slot (its hash tag)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.mesh import redis_db
from tests.integration.redis_cluster import emptied_cluster, redis_cluster_url
from tests.integration.redis_server import redis_url
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.replicas.leader import Leadership

pytestmark = pytest.mark.integration
__all__ = ["redis_cluster_url", "redis_url"]  # the fixtures, for pytest

TTL_MS = 60_000
# A BLPOP woken and one EVAL, on a busy machine; a standby's asks come every 2 s.
HANDOVER_S = 1.0


class Standby:
    """What the lifecycle gives a standby: its stop, and whether it was told it is able."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.able: list[bool] = []
        self.told = asyncio.Event()

    async def standby(self, reason: str, *, able: bool = True, **announce: Any) -> None:
        self.able.append(able)
        self.told.set()


@contextlib.asynccontextmanager
async def _redis(kind: str, request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    if kind == "cluster":
        async with emptied_cluster(request.getfixturevalue("redis_cluster_url")) as url:
            client = open_redis(url)
            try:
                yield client
            finally:
                await client.aclose()
        return
    async with redis_db(request.getfixturevalue("redis_url")) as url:
        client = open_redis(url)
        try:
            yield client
        finally:
            await client.aclose()


@pytest.mark.parametrize("kind", ["redis", "cluster"])
async def test_a_released_lease_is_taken_by_the_waiting_standby_at_once(
    kind: str, request: pytest.FixtureRequest
) -> None:
    async with _redis(kind, request) as redis:
        leader = Leadership(redis, "detector", "detector", TTL_MS, tag="{signals}")
        standby = Leadership(redis, "detector", "detector", TTL_MS, tag="{signals}")
        assert await leader.take(Standby())
        waiting = Standby()
        taking = asyncio.create_task(standby.take(waiting))
        try:
            await asyncio.wait_for(waiting.told.wait(), 10)
            assert waiting.able == [True] and not taking.done()
            # Released whether or not its wait has begun: the list keeps the word for a ttl.
            released = asyncio.get_running_loop().time()
            await leader.release()
            assert await asyncio.wait_for(taking, 10)
            took = asyncio.get_running_loop().time() - released
            print(f"{kind}: the standby led {took:.3f} s after the release")
            assert took < HANDOVER_S, took
        finally:
            taking.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await taking
            await standby.release()
