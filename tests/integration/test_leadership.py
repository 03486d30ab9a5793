"""trademesh.core.platform.replicas.leader on a real Redis: a standby until the lease is free, the leader's
renewals, a lost lease and a fenced write ending the leadership, the inspector's fenced journal."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.integration.mesh import redis_db
from tests.integration.redis_server import redis_url
from trademesh.core.inspector.fenced_writes import FencedWrites
from trademesh.core.platform.bus.append import Append
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.replicas.leader import Leadership, LeadershipLost
from trademesh.core.platform.replicas.lease import lease_key

pytestmark = pytest.mark.integration
__all__ = ["redis_url"]  # the fixture, for pytest

TTL_MS = 600


class Standby:
    """What the lifecycle gives a standby: its stop, and the reasons it was told."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()
        self.reasons: list[str] = []

    async def standby(self, reason: str, **announce: Any) -> None:
        self.reasons.append(reason)


async def test_a_standby_leads_once_the_leader_is_gone(redis_url: str) -> None:
    async with redis_db(redis_url) as url:
        redis = open_redis(url)
        try:
            first, second = (
                Leadership(redis, "ledger", "l1", TTL_MS),
                Leadership(redis, "ledger", "l1", TTL_MS),
            )
            assert await first.take(Standby())
            keeping = asyncio.create_task(first.keep(asyncio.Event()))
            waiting = Standby()
            taking = asyncio.create_task(second.take(waiting))
            await asyncio.sleep(3 * TTL_MS / 1000)  # the leader renews: the standby waits
            assert not taking.done()
            assert waiting.reasons == [f"standby: {first.lease.holder} leads"]
            keeping.cancel()  # the leader stops renewing (as if killed)
            gone = asyncio.get_running_loop().time()
            assert await asyncio.wait_for(taking, 5)
            assert asyncio.get_running_loop().time() - gone < TTL_MS / 1000 * 4 / 3 + 0.3
            with pytest.raises(LeadershipLost, match="lost the lease"):
                await asyncio.wait_for(first.keep(asyncio.Event()), 5)
        finally:
            await redis.aclose()


async def test_a_stopped_standby_returns_false_and_a_released_lease_is_free(redis_url: str) -> None:
    async with redis_db(redis_url) as url:
        redis = open_redis(url)
        try:
            leader, standby = (
                Leadership(redis, "inspector", "i", TTL_MS),
                Leadership(redis, "inspector", "i", TTL_MS),
            )
            assert await leader.take(Standby())
            stopped = Standby()
            stopped.stop.set()
            assert not await standby.take(stopped)
            await leader.release()
            assert await redis.get(lease_key("leader.inspector.{i}")) is None
            assert await standby.take(Standby())
        finally:
            await redis.aclose()


async def test_a_deposed_leaders_journal_write_is_refused_and_ends_its_leadership(redis_url: str) -> None:
    async with redis_db(redis_url) as url:
        redis = open_redis(url)
        try:
            old = Leadership(redis, "inspector", "j", TTL_MS)
            assert await old.take(Standby())
            writes = FencedWrites(redis, old)
            ids = await asyncio.gather(*(writes.write(Append("journal", b"%d" % i)) for i in range(3)))
            assert len(set(ids)) == 3 and await redis.xlen("journal") == 3
            await redis.delete(lease_key("leader.inspector.{j}"))  # it lapsed while the old leader slept
            new = Leadership(redis, "inspector", "j", TTL_MS)
            assert await new.take(Standby())
            with pytest.raises(LeadershipLost, match="FENCED"):
                await writes.write(Append("journal", b"late"))
            assert await redis.xlen("journal") == 3
            with pytest.raises(LeadershipLost, match="FENCED"):
                await asyncio.wait_for(old.keep(asyncio.Event()), 1)  # at once, not at the next renewal
        finally:
            await redis.aclose()


async def test_a_lease_lapsed_unheld_is_taken_back_and_one_another_held_meanwhile_is_not(
    redis_url: str,
) -> None:
    async with redis_db(redis_url) as url:
        redis = open_redis(url)
        try:
            leader = Leadership(redis, "inspector", "k", TTL_MS)
            assert await leader.take(Standby())
            writes = FencedWrites(redis, leader)
            await redis.delete(lease_key("leader.inspector.{k}"))  # paused past its ttl; nobody took it
            await writes.write(Append("journal", b"after the pause"))  # taken back, written
            assert await redis.xlen("journal") == 1
            keeping = asyncio.create_task(leader.keep(asyncio.Event()))
            await redis.delete(lease_key("leader.inspector.{k}"))
            await asyncio.sleep(2 * TTL_MS / 1000)
            assert not keeping.done(), "a renewal finding the lease lapsed unheld takes it back"
            keeping.cancel()

            await redis.delete(lease_key("leader.inspector.{k}"))  # and now another led meanwhile, and left
            other = Leadership(redis, "inspector", "k", TTL_MS)
            assert await other.take(Standby())
            await other.release()
            with pytest.raises(LeadershipLost, match="FENCED"):
                await writes.write(Append("journal", b"stale"))
            assert await redis.xlen("journal") == 1
            assert await redis.get(lease_key("leader.inspector.{k}")) is None, "given up for a standby"
        finally:
            await redis.aclose()
