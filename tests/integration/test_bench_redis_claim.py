"""bench/_common.claimed_redis_db: a bench that flushes its Redis database holds it as the test
runs hold theirs (tests/integration/mesh.py), so neither flushes the other's mid-run."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from tests.integration.mesh import _CLAIMS, _with_db
from tests.integration.redis_server import redis_url

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import _common as common  # noqa: E402

__all__ = ["redis_url"]  # the fixture, for pytest

DB = 15  # outside the test runs' 1-13


@pytest.fixture
def claims(redis_url: str) -> Iterator[tuple[str, Any]]:
    url = _with_db(redis_url, 0)
    client = redis.Redis.from_url(url)
    client.hdel(_CLAIMS, str(DB))
    yield url, client
    client.hdel(_CLAIMS, str(DB))
    client.close()


def test_a_database_another_live_process_holds_is_refused_naming_it(claims: tuple[str, Any]) -> None:
    url, client = claims
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        client.hset(_CLAIMS, str(DB), holder.pid)
        with pytest.raises(SystemExit) as refused, common.claimed_redis_db(DB, url):
            pytest.fail("the block ran on a database another process holds")
        assert f"Redis database {DB} is held by process {holder.pid}" in str(refused.value)
        assert int(client.hget(_CLAIMS, str(DB))) == holder.pid  # left to its holder
    finally:
        holder.kill()
        holder.wait()


def test_a_free_or_dead_claim_is_held_for_the_block_then_given_back(claims: tuple[str, Any]) -> None:
    url, client = claims
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    client.hset(_CLAIMS, str(DB), dead.pid)
    with common.claimed_redis_db(DB, url):
        assert int(client.hget(_CLAIMS, str(DB))) == os.getpid()
    assert client.hget(_CLAIMS, str(DB)) is None
