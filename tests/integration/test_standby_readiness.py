"""A standby is ready as a standby (issue 56): real Overwatch processes (the simplest of the
four single writers: Redis alone) asked the health name Kubernetes' readiness probe asks,
`trademesh.readiness`. Two replicas: both ready, the standby's "" NOT_SERVING; the leader killed
with -9, the standby leads within a ttl and a renewal period; the leader stopped with SIGTERM,
its readiness NOT_SERVING while it drains, the lease released and taken at once (the standby
waits on the handover, not on its next ask). A process starting is not ready; a standby whose
Redis is away for a ttl is not ready (it could not take over), and is again once Redis is back."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2

from tests.integration.mesh import OwnRedis, redis_db
from tests.integration.prometheus_support import free_port
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from tests.integration.test_leader_failover import check_standby, failover, health, start_replica
from trademesh.core.platform.config.env import DRAIN_DELAY_S, REDIS_URL, TOKEN
from trademesh.core.platform.replicas.leader import leader_lease_name
from trademesh.core.platform.replicas.lease import lease_key
from trademesh.core.platform.rpc.server import LIVENESS_SERVICE, READINESS_SERVICE
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.overwatch.v1 import overwatch_pb2_grpc as ow_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # kills and failovers
__all__ = ["redis_url"]  # the fixture, for pytest

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
LEASE_NAME = leader_lease_name("overwatch", "1m", "{regimes.1m}")
LEASE = lease_key(LEASE_NAME)
TTL_MS = 900
TAKEOVER_S = TTL_MS / 1000 * 4 / 3 + 1.5  # a ttl and a renewal period, and a busy machine's slack
# Long enough that a standby's next ask (every ttl/3 before issue 56) comes long after a release.
LONG_TTL_MS = 60_000
# From the leader's release to the standby holding the lease: a BLPOP's wake-up and one EVAL
# (its asks come every 2 s at most now, every 20 s before with this ttl).
HANDOVER_S = 1.2
WAIT_S = 60.0


def _args(ttl_ms: int, port: int = 0) -> list[str]:
    return ["overwatch", "--port", str(port), "--metrics-port", "-1", "--leader-ttl-ms", str(ttl_ms)]


@contextlib.asynccontextmanager
async def _replicas(*started: ServiceProcess) -> AsyncIterator[list[ServiceProcess]]:
    """The processes, stopped at the end (those the test has not ended)."""
    replicas = list(started)
    try:
        yield replicas
    finally:
        for replica in replicas:
            if replica.process.poll() is None:
                await asyncio.to_thread(replica.terminate)


async def _board(process: ServiceProcess) -> ow.GetBoardResponse:
    async with grpc.aio.insecure_channel(process.address) as channel:
        reply: ow.GetBoardResponse = await ow_grpc.OverwatchStub(channel).GetBoard(
            ow.GetBoardRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    return reply


async def _health_is(address: str, service: str, status: int) -> bool | None:
    try:
        return True if await health(address, service) == status else None
    except grpc.aio.AioRpcError:  # not listening yet
        return None


async def test_the_standby_is_ready_and_leads_once_the_leader_is_killed(
    redis_url: str, tmp_path: Path
) -> None:
    async with redis_db(redis_url) as bus_url:
        env = {**os.environ, TOKEN: TEST_TOKEN, REDIS_URL: bus_url}
        leader = start_replica(_args(TTL_MS), env, tmp_path / "overwatch-1.log")
        async with _replicas(leader) as replicas:
            standby = start_replica(_args(TTL_MS), env, tmp_path / "overwatch-2.log")
            replicas.append(standby)
            assert leader.info["event"] == "serving"
            await check_standby(standby, lambda: _board(standby), leader.process.pid)
            assert await health(standby.address, READINESS_SERVICE) == SERVING  # Ready as a standby
            assert await health(leader.address, READINESS_SERVICE) == SERVING
            assert await health(leader.address, "") == SERVING  # the one serving the API

            leader.process.kill()
            leader.process.wait()
            took, serving = await failover(bus_url, LEASE_NAME, standby, lambda: _board(standby))
            print(f"overwatch: lease taken {took:.2f} s after the kill -9, serving at {serving:.2f} s")
            assert took < TAKEOVER_S, f"taken after {took:.2f} s"
            assert await health(standby.address, "") == SERVING
            assert await health(standby.address, READINESS_SERVICE) == SERVING


async def test_a_leader_stopped_with_sigterm_is_unready_and_hands_the_lease_over_at_once(
    redis_url: str, tmp_path: Path
) -> None:
    async with redis_db(redis_url) as bus_url:
        env = {**os.environ, TOKEN: TEST_TOKEN, REDIS_URL: bus_url}
        # A drain long enough to see the stopping leader's readiness from here.
        leader = start_replica(
            _args(LONG_TTL_MS), {**env, DRAIN_DELAY_S: "1.5"}, tmp_path / "overwatch-1.log"
        )
        async with _replicas(leader) as replicas:
            standby = start_replica(_args(LONG_TTL_MS), env, tmp_path / "overwatch-2.log")
            replicas.append(standby)
            assert (leader.info["event"], standby.info["event"]) == ("serving", "standby")
            assert await health(standby.address, READINESS_SERVICE) == SERVING
            client: Any = aioredis.Redis.from_url(bus_url)
            try:
                stopped = time.monotonic()
                leader.process.send_signal(signal.SIGTERM)
                await until(
                    lambda: _health_is(leader.address, READINESS_SERVICE, NOT_SERVING),
                    1.0, 0.02, "the stopping leader's readiness NOT_SERVING",
                )  # fmt: skip
                released, taken = await _handover(client, standby)
            finally:
                await client.aclose()
            print(
                f"overwatch handover: released {released - stopped:.2f} s after SIGTERM, taken "
                f"{taken - released:.2f} s after the release"
            )
            assert taken - released < HANDOVER_S, f"taken {taken - released:.2f} s after the release"
            assert await asyncio.to_thread(leader.process.wait, WAIT_S) == 0
            await until(lambda: _serves(standby), WAIT_S, 0.05, "the new leader to serve")
            assert await health(standby.address, READINESS_SERVICE) == SERVING


async def _handover(client: Any, standby: ServiceProcess) -> tuple[float, float]:
    """Watching the lease key: when the leader's value left it, and when the standby's came."""
    mine = f":{standby.process.pid}:".encode()
    released: float | None = None
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = await client.get(LEASE)
        now = time.monotonic()
        if value is None and released is None:
            released = now
        if value is not None and mine in value:
            return released if released is not None else now, now
        await asyncio.sleep(0.005)
    pytest.fail(f"the standby did not take the lease within {WAIT_S} s")


async def _serves(process: ServiceProcess) -> bool | None:
    try:
        await _board(process)
    except grpc.aio.AioRpcError as exc:
        if exc.code() != grpc.StatusCode.UNAVAILABLE:
            raise
        return None
    return True


async def test_a_starting_process_is_not_ready(tmp_path: Path) -> None:
    """Redis never answering: the process answers health but starts for ever: not ready."""
    port = free_port()
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    env = {**os.environ, TOKEN: TEST_TOKEN, REDIS_URL: nowhere}
    with (tmp_path / "overwatch.log").open("w") as log:
        starting = asyncio.ensure_future(asyncio.to_thread(_start_unseen, _args(TTL_MS, port), env, log))
        try:
            address = f"127.0.0.1:{port}"
            await until(lambda: _health_is(address, READINESS_SERVICE, NOT_SERVING), WAIT_S, 0.1, "an answer")
            await asyncio.sleep(0.5)  # and it stays so: it never reached Redis
            assert await health(address, READINESS_SERVICE) == NOT_SERVING
            assert await health(address, "") == NOT_SERVING
        finally:
            process = await starting
            process.send_signal(signal.SIGTERM)
            assert await asyncio.to_thread(process.wait, WAIT_S) == 0


def _start_unseen(args: list[str], env: dict[str, str], log: Any) -> Any:
    """The process of `args`, not waited on (it prints no line before Redis answers)."""
    return subprocess.Popen(
        [sys.executable, "-m", "trademesh.core.cli", *args], stdout=subprocess.DEVNULL, stderr=log, env=env
    )


async def test_a_standby_without_redis_for_a_ttl_is_not_ready_and_is_again_once_it_is_back(
    tmp_path: Path,
) -> None:
    own = OwnRedis(tmp_path)
    own.start()
    try:
        client: Any = aioredis.Redis.from_url(own.url)
        try:  # another process leads, for longer than the test
            await client.set(LEASE, "overwatch/1m@elsewhere/1", px=600_000)
        finally:
            await client.aclose()
        env = {**os.environ, TOKEN: TEST_TOKEN, REDIS_URL: own.url}
        standby = start_replica(_args(TTL_MS), env, tmp_path / "overwatch.log")
        async with _replicas(standby):
            assert standby.info["event"] == "standby"
            assert await health(standby.address, READINESS_SERVICE) == SERVING
            own.kill()
            gone = time.monotonic()
            await until(
                lambda: _health_is(standby.address, READINESS_SERVICE, NOT_SERVING),
                WAIT_S, 0.05, "the standby's readiness NOT_SERVING without Redis",
            )  # fmt: skip
            unready = time.monotonic() - gone
            print(f"overwatch standby: not ready {unready:.2f} s after Redis went away")
            # Not at the first failed ask (a blip is no reason): a ttl after the last answer, which
            # came at most a renewal period before Redis went away.
            assert unready > TTL_MS / 1000 * 2 / 3 - 0.05, unready
            assert await health(standby.address, LIVENESS_SERVICE) == SERVING  # alive all along
            own.start()  # back, empty: the lease is free, and the standby leads
            await until(lambda: _serves(standby), WAIT_S, 0.05, "the standby to lead once Redis is back")
            assert await health(standby.address, READINESS_SERVICE) == SERVING
    finally:
        own.kill()
