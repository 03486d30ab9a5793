"""Leases with fencing tokens on a real Redis: one holder at a time, lost on expiry, tokens that
only grow, released for a handover."""

from __future__ import annotations

import pytest

from tests.integration.mesh import redis_db
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.core.platform.bus.group import Fenced, GroupOutcome, GroupWrite, SetKey, write_group
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.config.env import LEASE_HOLDER
from trademesh.core.platform.replicas.lease import Lease, holder_id, lease_key

pytestmark = pytest.mark.integration
__all__ = ["redis_url"]  # the fixture, for pytest


def _number(token: str | None) -> int:
    assert token is not None
    return int(token.rsplit("/", 1)[1])


async def test_one_holder_at_a_time_then_the_next_with_a_greater_token(redis_url: str) -> None:
    async with redis_db(redis_url) as url:
        redis = open_redis(url)
        try:
            first, second = Lease(redis, "venue-a", "a", 300), Lease(redis, "venue-a", "b", 300)
            assert await first.acquire()
            assert not await second.acquire() and second.token is None
            assert await first.acquire(), "acquiring a lease held is renewing it"
            assert await first.renew()
            held = first.token

            async def expired() -> bool | None:
                return True if await redis.get(lease_key("venue-a")) is None else None

            await until(expired, 5, what="the lease's expiry")  # nobody renewed it: 300 ms
            assert await second.acquire()
            assert _number(second.token) > _number(held), "a new holder, a greater token"
            assert not await first.renew() and not first.held, "the old holder learns it lost it"
            await second.release()
            first.token = held  # the old holder, paused all along, renews: another held it since
            assert not await first.renew() and not first.held
            assert await second.acquire()
            await first.release()  # not held: releases nothing
            assert await redis.get(lease_key("venue-a")) is not None

            await second.release()
            assert await first.acquire(), "released: free at once"
            assert _number(first.token) == _number(held) + 3

            token = first.token
            assert token is not None
            await redis.flushdb()  # Redis restarted empty: the lease is gone, nobody took it
            assert await first.renew() and first.token == token, "taken again with its token"
            assert await redis.get(lease_key("venue-a")) == token.encode()
        finally:
            await redis.aclose()


async def test_a_write_fenced_by_a_lease_lands_only_while_its_token_holds(redis_url: str) -> None:
    async with redis_db(redis_url) as url:
        redis = open_redis(url)
        try:
            old, new = Lease(redis, "venue-b", "old", 60_000), Lease(redis, "venue-b", "new", 60_000)
            assert await old.acquire()
            assert old.token is not None
            fence = Fenced(old.key, old.token)
            publisher = Publisher(redis)
            publisher.add("md.{venue-b}.trades", b"first", fence=fence)
            publisher.add("md.{venue-b}.book", b"second, in the same script call", fence=fence)
            publisher.add("md.{venue-b}.trades", b"pointed", once=(7, 1), fence=fence)
            ids = await publisher.flush()
            assert len(ids) == 3 and all(ids) and not publisher.fenced

            await redis.delete(old.key)  # as if it expired while its holder was paused
            assert await new.acquire()
            publisher.add("md.{venue-b}.trades", b"late", fence=fence)
            publisher.add("md.{venue-b}.book", b"late too", fence=fence)
            publisher.add("md.{venue-b}.trades", b"late, pointed", once=(7, 2), fence=fence)
            assert await publisher.flush() == [None, None, None]
            assert publisher.fenced == {old.key}
            result = await write_group(redis, GroupWrite(state=(SetKey("k", "v"),), fence=fence))
            assert result.outcome is GroupOutcome.FENCED and await redis.get("k") is None
            assert await redis.xlen("md.{venue-b}.trades") == 2, "nothing written after the lease moved"
            assert await redis.xlen("md.{venue-b}.book") == 1

            assert new.token is not None
            await redis.delete(old.key)  # lapsed: a write of its last holder lands (before any next)
            publisher.add("md.{venue-b}.trades", b"while lapsed", fence=Fenced(new.key, new.token))
            publisher.add("md.{venue-b}.trades", b"an older holder's", fence=fence)
            assert [entry_id is not None for entry_id in await publisher.flush()] == [True, False]
        finally:
            await redis.aclose()


async def test_a_supervised_process_restarted_takes_its_lease_back_at_once(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under a supervisor (TRADEMESH_LEASE_HOLDER, the same across restarts), a process killed
    with -9 and started again holds its lease at once, with its token; another holder waits."""
    monkeypatch.setenv(LEASE_HOLDER, "inspector.3f2a")
    async with redis_db(redis_url) as url:
        redis = open_redis(url)
        try:
            before = Lease(redis, "leader.inspector.{main}", holder_id("inspector/main"), 60_000)
            assert await before.acquire()
            after = Lease(redis, "leader.inspector.{main}", holder_id("inspector/main"), 60_000)
            assert await after.acquire() and after.token == before.token, "the restart holds it now"
            monkeypatch.delenv(LEASE_HOLDER)
            other = Lease(redis, "leader.inspector.{main}", holder_id("inspector/main"), 60_000)
            assert not await other.acquire(), "a process of another holder does not"
        finally:
            await redis.aclose()
