"""The tests' Redis databases: claimed per process while in use, given back after.

Two xdist workers, and other test runs on the same Redis, hand out databases 1..13 by claims
in db 0; a database a test no longer uses must go back, or a few processes hold them all.
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import redis_db
from tests.integration.redis_server import redis_url

pytestmark = pytest.mark.integration
__all__ = ["redis_url"]  # the fixture, for pytest

_CLAIMS = "trademesh:test-redis-dbs"


def db_of(url: str) -> int:
    parts = urlsplit(url)
    return int(parts.query.removeprefix("db=") if parts.scheme == "unix" else parts.path.strip("/"))


async def claims(redis_url: str) -> dict[int, int]:
    client: Any = aioredis.Redis.from_url(redis_url)
    try:
        found = await client.hgetall(_CLAIMS)
        return {int(db): int(pid) for db, pid in found.items()}
    finally:
        await client.aclose()


async def test_a_tests_database_is_its_own_while_in_use_and_given_back_after(redis_url: str) -> None:
    async with redis_db(redis_url) as first, redis_db(redis_url) as second:
        assert db_of(first) != db_of(second) and {db_of(first), db_of(second)} <= set(range(1, 14))
        held = await claims(redis_url)
        assert held[db_of(first)] == held[db_of(second)] == os.getpid()
        client: Any = aioredis.Redis.from_url(first)
        await client.set("left-by-the-test", "1")
        await client.aclose()
    after = await claims(redis_url)
    assert db_of(first) not in after and db_of(second) not in after
    async with redis_db(redis_url) as again:
        client = aioredis.Redis.from_url(again)
        assert await client.dbsize() == 0, "a database is handed out empty"
        await client.aclose()
