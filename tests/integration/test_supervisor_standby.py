"""`trademesh up`'s supervisor keeps a standby replica (issue 56, item 12): a single writer whose
lease another process holds prints a standby line, never the serving line, until it leads; the
supervisor counts it started once its readiness says so, and does not kill it at the serving
timeout (it did, every 60 s). A real Overwatch process (the simplest single writer: Redis alone),
supervised as `up` supervises its children, with the serving timeout made short."""

from __future__ import annotations

import asyncio
import contextlib
import io
import signal
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2

from tests.integration.mesh import redis_db
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from tests.integration.test_leader_failover import health
from trademesh.core.cli.mesh.supervisor import Child, ChildSpec
from trademesh.core.platform.config.env import REDIS_URL, TOKEN
from trademesh.core.platform.replicas.leader import leader_lease_name
from trademesh.core.platform.replicas.lease import lease_key
from trademesh.core.platform.rpc.server import READINESS_SERVICE
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.overwatch.v1 import overwatch_pb2_grpc as ow_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # real child processes
__all__ = ["redis_url"]  # the fixture, for pytest

LEASE = lease_key(leader_lease_name("overwatch", "1m", "{regimes.1m}"))
SERVING_TIMEOUT_S = 3.0
# A Python start on a busy machine, well under the 60 s the old supervisor waited for a serving line.
START_S = 30.0
WAIT_S = 60.0
AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)


def _spec(bus_url: str) -> ChildSpec:
    args = ["overwatch", "--port", "0", "--metrics-port", "-1", "--leader-ttl-ms", "900"]
    return ChildSpec("overwatch", lambda info: args, {TOKEN: TEST_TOKEN, REDIS_URL: bus_url})


async def _serves(child: Child) -> bool | None:
    async with grpc.aio.insecure_channel(child.address) as channel:
        try:
            await ow_grpc.OverwatchStub(channel).GetBoard(
                ow.GetBoardRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
            )
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            return None
    return True


async def _exits_within(child: Child, timeout_s: float) -> bool:
    assert child.process is not None
    try:
        await asyncio.wait_for(asyncio.shield(child.process.wait()), timeout_s)
    except TimeoutError:
        return False
    return True


async def test_a_standby_child_is_kept_past_the_serving_timeout_and_restarted_as_a_standby(
    redis_url: str,
) -> None:
    async with redis_db(redis_url) as bus_url:
        client: Any = aioredis.Redis.from_url(bus_url)
        await client.set(LEASE, "overwatch/1m@elsewhere/1", px=600_000)  # another process leads
        out = io.StringIO()
        child = Child(_spec(bus_url), 10, out)
        child.serving_timeout_s = SERVING_TIMEOUT_S
        stop = asyncio.Event()
        supervising: asyncio.Task[None] | None = None
        try:
            await asyncio.wait_for(child.start(), START_S)
            assert child.standing_by, child.info
            ready = await health(child.grpc_address, READINESS_SERVICE)
            assert ready == health_pb2.HealthCheckResponse.SERVING  # ready as a standby
            assert not await _exits_within(child, 2 * SERVING_TIMEOUT_S), out.getvalue()
            assert child.restarts == 0

            supervising = asyncio.create_task(child.supervise(stop))
            first = child.pid
            assert child.process is not None
            child.process.send_signal(signal.SIGKILL)
            restarted = "standing by on"

            async def again() -> bool | None:
                return True if child.pid != first and restarted in out.getvalue() else None

            await until(again, WAIT_S, 0.1, "the standby restarted, as a standby")
            assert not await _exits_within(child, 2 * SERVING_TIMEOUT_S), out.getvalue()
            assert child.restarts == 1

            await client.delete(LEASE)  # the other process gone: the standby leads and serves
            await until(lambda: _serves(child), WAIT_S, 0.1, "the standby to lead")
        finally:
            stop.set()
            if supervising is not None:
                supervising.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await supervising
            code = await child.stop()
            await client.aclose()
        assert code == 0, out.getvalue()
