"""bench/_common.claimed_redis_db: a bench that flushes its Redis database holds it as the test
runs hold theirs (tests/integration/mesh.py), so neither flushes the other's mid-run."""

from __future__ import annotations

import contextlib
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

# The claims' numbers, one per test: outside the test runs' 1-13 and the benches' defaults, and
# not shared, since the two tests may run at once on two workers (one clearing the claim the other
# had just made ran the block on a database "another process holds"). A claim is a field of a
# hash in db 0; nothing selects these databases.
HELD_DB = 41
FREE_DB = 42


@contextlib.contextmanager
def claims(redis_url: str, db: int) -> Iterator[tuple[str, Any]]:
    """The claims' URL and a client of it, with `db`'s claim cleared before and after."""
    url = _with_db(redis_url, 0)
    client = redis.Redis.from_url(url)
    client.hdel(_CLAIMS, str(db))
    try:
        yield url, client
    finally:
        client.hdel(_CLAIMS, str(db))
        client.close()


def test_a_database_another_live_process_holds_is_refused_naming_it(redis_url: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with claims(redis_url, HELD_DB) as (url, client):
            client.hset(_CLAIMS, str(HELD_DB), holder.pid)
            with pytest.raises(SystemExit) as refused, common.claimed_redis_db(HELD_DB, url):
                pytest.fail("the block ran on a database another process holds")
            assert f"Redis database {HELD_DB} is held by process {holder.pid}" in str(refused.value)
            assert int(client.hget(_CLAIMS, str(HELD_DB))) == holder.pid  # left to its holder
    finally:
        holder.kill()
        holder.wait()


def test_a_free_or_dead_claim_is_held_for_the_block_then_given_back(redis_url: str) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with claims(redis_url, FREE_DB) as (url, client):
        client.hset(_CLAIMS, str(FREE_DB), dead.pid)
        with common.claimed_redis_db(FREE_DB, url):
            assert int(client.hget(_CLAIMS, str(FREE_DB))) == os.getpid()
        assert client.hget(_CLAIMS, str(FREE_DB)) is None
