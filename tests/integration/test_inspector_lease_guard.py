"""The inspector's fence beside its journal (trademesh.core.inspector.lease_guard), on a real Redis: a leader
whose lease another holds now publishes no risk event and is deposed; within the lease's known
life a check costs no round trip; past it (a freeze: the clock moved on) the lease is read again;
a lease that lapsed with nobody taking it is taken back. The clock is injected: a freeze is the
clock moving on while nothing ran."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import redis_db
from tests.integration.redis_server import redis_url
from trademesh.core.inspector.lease_guard import LeaseGuard
from trademesh.core.inspector.risk_log import RiskLog
from trademesh.core.platform.bus.names import RISK
from trademesh.core.platform.replicas.leader import Leadership, LeadershipLost
from trademesh.risk.v1 import inspector_pb2 as rk

pytestmark = [pytest.mark.integration]
__all__ = ["redis_url"]  # the fixture, for pytest

TTL_MS = 3000


class Clock:
    """The monotonic clock, as the guard reads it: moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def notice() -> rk.RiskEvent:
    reason = "an order open at the venue that the inspector did not place"
    return rk.RiskEvent(action=rk.RISK_ACTION_NOTICE, policy="reconcile.unknown_order", reason=reason)


class Standby:
    """What of a service's context Leadership.take uses."""

    def __init__(self) -> None:
        self.stop = asyncio.Event()

    async def standby(self, reason: str, **announce: Any) -> None:
        raise AssertionError(f"the lease is free in the test's own database: {reason}")


async def leading(client: Any) -> Leadership:
    leadership = Leadership(client, "inspector", "guarded", TTL_MS)
    assert await leadership.take(Standby())
    return leadership


async def test_a_leader_whose_lease_another_holds_publishes_nothing_and_is_deposed(redis_url: str) -> None:
    async with redis_db(redis_url) as url:
        client: Any = aioredis.Redis.from_url(url)
        try:
            clock = Clock()
            leadership = await leading(client)
            guard = LeaseGuard(client, leadership, clock)
            log = RiskLog(client, "inspector", fence=guard.check)
            await log.publish([notice()], [], 1)  # ours: published
            assert await client.xlen(RISK) == 1
            # Frozen past the ttl; the lease lapsed and another process took it.
            clock.now += TTL_MS / 1000 + 1
            await client.set(leadership.lease.key, "inspector/other@host:1:abc/99", px=60_000)
            with pytest.raises(LeadershipLost, match="other@host"):
                await log.publish([notice()], [], 2)
            assert await client.xlen(RISK) == 1  # nothing more
            # The leadership is deposed: its keeping ends at once, as the service's does.
            with pytest.raises(LeadershipLost):
                await asyncio.wait_for(leadership.keep(asyncio.Event()), 5.0)
        finally:
            await client.aclose()


async def test_a_check_reads_the_lease_only_once_its_known_life_has_run_out(redis_url: str) -> None:
    async with redis_db(redis_url) as url:
        client: Any = aioredis.Redis.from_url(url)
        try:
            clock = Clock()
            guard = LeaseGuard(client, await leading(client), clock)
            await asyncio.gather(*(guard.check() for _ in range(20)))
            assert guard.reads == 1  # concurrent checks share one read
            clock.now += TTL_MS / 1000 * 0.8  # within the ttl less the margin: no read
            await guard.check()
            assert guard.reads == 1
            clock.now += TTL_MS / 1000 * 0.2  # past it: read again (and still ours)
            await guard.check()
            assert guard.reads == 2
        finally:
            await client.aclose()


async def test_a_lease_that_lapsed_unheld_is_taken_back(redis_url: str) -> None:
    async with redis_db(redis_url) as url:
        client: Any = aioredis.Redis.from_url(url)
        try:
            clock = Clock()
            leadership = await leading(client)
            guard = LeaseGuard(client, leadership, clock)
            await client.delete(leadership.lease.key)  # lapsed while frozen; nobody took it
            clock.now += TTL_MS / 1000 + 1
            await guard.check()
            assert await client.get(leadership.lease.key) == leadership.lease.token.encode()  # type: ignore[union-attr]
        finally:
            await client.aclose()
