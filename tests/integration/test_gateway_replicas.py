"""Replicas of the gateway share one registry through the bus (trademesh.gateway.registry.shared): each
lists, routes and renews the instances registered at the others; a removal at one is a removal
at all; a bus restarted empty is written again. First the registry states over a real Redis with
the clocks in the test's hands, then two real gateway processes and a real venue."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import grpc
import pytest
from redis.asyncio import Redis

from tests.integration.gateway_support import (
    Gateway,
    Processes,
    create_key,
    grpcweb_call,
    key_taken,
    list_instances,
    module_database,
)
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.core.platform.bus.redis import open_redis
from trademesh.gateway.registry import REGISTRY_SERVICE, RegistryState, SharedRegistry
from trademesh.gateway.registry.shared import GATEWAYS_KEY, REGISTRY_KEY
from trademesh.gateway.registry.targets import target_groups
from trademesh.registry.v1 import registry_pb2 as reg

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["database_url", "module_database", "redis_url"]  # the fixtures, for pytest

TTL_S = 10.0
ADMIN = "trademesh.admin.v1.Admin"


class Clock:
    """Both clocks of a registry state, moved by the test."""

    def __init__(self) -> None:
        self.now_s = 1000.0

    def monotonic(self) -> float:
        return self.now_s

    def wall_ns(self) -> int:
        return int(self.now_s * 1e9)


@pytest.fixture
async def bus(redis_url: str) -> AsyncIterator[str]:
    async with redis_db(redis_url) as url:
        yield url


def replica(clock: Clock, url: str) -> SharedRegistry:
    state = RegistryState(TTL_S, monotonic=clock.monotonic, wall_ns=clock.wall_ns)
    return SharedRegistry(state, open_redis(url), wall_ns=clock.wall_ns)


async def test_replicas_learn_renew_and_drop_each_others_instances(bus: str) -> None:
    clock = Clock()
    a, b = replica(clock, bus), replica(clock, bus)
    try:
        entry = a.state.register("sim", reg.KIND_VENUE, "10.0.0.1:5070", [ADMIN])
        await a.wrote(entry)
        assert b.state.instances() == []
        await b.sync()
        [learnt] = b.state.instances()
        assert (learnt.instance_id, learnt.address) == (entry.instance_id, "10.0.0.1:5070")
        assert b.state.resolve(ADMIN, None) == "10.0.0.1:5070"
        # Its heartbeats now reach b (a load balancer moved its connection): a keeps it too.
        for _ in range(3):
            clock.now_s += TTL_S * 0.9
            await b.wrote(b.state.heartbeat(entry.instance_id))
            await a.sync()
        assert [e.instance_id for e in a.state.instances()] == [entry.instance_id]
        # Unregistered at b: gone at a on its next merge, not written back.
        b.state.unregister(entry.instance_id)
        await b.removed(entry.instance_id)
        await a.sync()
        await b.sync()
        assert a.state.instances() == [] and b.state.instances() == []
    finally:
        await a.redis.aclose()
        await b.redis.aclose()


async def test_a_bus_restarted_empty_is_written_again_and_the_old_swept(bus: str) -> None:
    clock = Clock()
    a, b = replica(clock, bus), replica(clock, bus)
    raw = Redis.from_url(bus)
    try:
        entry = a.state.register("ingest", reg.KIND_CORE, "10.0.0.2:5100", [ADMIN])
        await a.wrote(entry)
        await raw.flushdb()  # the bus restarted empty
        await a.sync()
        await b.sync()
        assert [e.instance_id for e in b.state.instances()] == [entry.instance_id]
        # Registered again at b before it learnt of the first (same name, same address): one stays.
        again = b.state.register("ingest", reg.KIND_CORE, "10.0.0.2:5100", [ADMIN])
        await b.wrote(again, [entry.instance_id])
        await a.sync()
        assert [e.instance_id for e in a.state.instances()] == [again.instance_id]
        # No heartbeat for twice the ttl: expired everywhere, then swept from the bus.
        clock.now_s += 2 * TTL_S + 1
        await a.sync()
        assert a.state.instances() == [] and await raw.hlen(REGISTRY_KEY) == 0
    finally:
        await a.redis.aclose()
        await b.redis.aclose()
        await raw.aclose()


def gateway_replica(clock: Clock, url: str, host: str) -> SharedRegistry:
    """A replica with its own entry, as the gateway configures it: dialled at the loopback,
    reached by others (and scraped) at `host`."""
    shared = replica(clock, url)
    shared.state.configure(
        "gateway", reg.KIND_GATEWAY, "127.0.0.1:8082", [REGISTRY_SERVICE], own=True, metrics=(host, 8081)
    )
    return shared


async def test_replicas_list_each_other_and_route_their_own_services_to_themselves(bus: str) -> None:
    clock = Clock()
    a, b = gateway_replica(clock, bus, "10.0.0.1"), gateway_replica(clock, bus, "10.0.0.2")
    try:
        for shared in (a, b, a):
            await shared.sync()
        for me, other in ((a, "10.0.0.2"), (b, "10.0.0.1")):
            gateways = me.state.instances(kind=reg.KIND_GATEWAY)
            assert sorted(e.address for e in gateways) == sorted(["127.0.0.1:8082", f"{other}:8082"])
            targets = [group["targets"] for group in target_groups(me.state.instances())]
            assert sorted(targets) == [["10.0.0.1:8081"], ["10.0.0.2:8081"]]
            assert me.state.resolve(REGISTRY_SERVICE, None) == "127.0.0.1:8082"  # itself, never a peer
        # b stops: it leaves, and a lists it no more on its next merge.
        await b.leave()
        await a.sync()
        assert [e.address for e in a.state.instances(kind=reg.KIND_GATEWAY)] == ["127.0.0.1:8082"]
        # b merges again (it lives), then dies: a drops it after the ttl, and the bus is swept.
        await b.sync()
        await a.sync()
        assert len(a.state.instances(kind=reg.KIND_GATEWAY)) == 2
        clock.now_s += 2 * TTL_S + 1
        await a.sync()
        assert [e.address for e in a.state.instances(kind=reg.KIND_GATEWAY)] == ["127.0.0.1:8082"]
        raw = Redis.from_url(bus)
        assert await raw.hkeys(GATEWAYS_KEY) == [a.state.own_entry().instance_id.encode()]  # type: ignore[union-attr]
        await raw.aclose()
    finally:
        await a.redis.aclose()
        await b.redis.aclose()


async def test_two_gateway_processes_list_and_route_each_others_venue(
    tmp_path: Path, module_database: str, bus: str
) -> None:
    processes = Processes(tmp_path, module_database)
    # A ttl long beside the bus's merges (every 0.5 s): a removal seen sooner is the tombstone's.
    fast = ("--heartbeat-interval-s", "0.5", "--registry-ttl-s", "6", "--shared-registry", "--redis-url", bus)
    try:
        key = await create_key(module_database, "replicas")
        first, second = processes.gateway(*fast), processes.gateway(*fast)
        sim = processes.sim(first)

        async def listed() -> reg.Instance | None:
            return (await list_instances(second)).get("sim")

        found = await until(listed, 10, interval_s=0.05, what="the sim listed by the other gateway")
        assert found.address == (await list_instances(first))["sim"].address
        # A call through the other replica reaches the venue.
        answer = await grpcweb_call(second, f"{ADMIN}/GetStatus", b"", key=key)
        assert answer.code == grpc.StatusCode.OK.value[0], answer.message
        # Its heartbeats (to the first) renew it at the second.
        renewed = await until(
            lambda: _heartbeat_after(second, found.last_heartbeat_ns), 5, interval_s=0.1,
            what="a heartbeat at the first gateway seen at the second",
        )  # fmt: skip
        assert renewed.instance_id == found.instance_id
        # It stops and unregisters at the first: gone at the second too, long before its ttl.
        await processes.stop(sim)

        async def gone() -> bool | None:
            return True if "sim" not in await list_instances(second) else None

        await until(gone, 3, interval_s=0.05, what="the sim dropped by the other gateway")
        # Prometheus, asking either replica, finds both gateways.
        read = await create_key(module_database, "replicas-read", ["read"])
        await key_taken(second, read)
        both_addresses = {f"127.0.0.1:{first.service.port}", f"127.0.0.1:{second.service.port}"}

        async def both_gateways() -> bool | None:
            groups = await _targets(second, read)
            found = {t for g in groups if g["labels"]["service"] == "gateway" for t in g["targets"]}
            return True if found == both_addresses else None

        await until(both_gateways, 5, interval_s=0.1, what="both gateways among the second's targets")
        await processes.stop(first.service)

        async def first_gone() -> bool | None:
            groups = await _targets(second, read)
            found = {t for g in groups if g["labels"]["service"] == "gateway" for t in g["targets"]}
            return True if found == {f"127.0.0.1:{second.service.port}"} else None

        await until(first_gone, 3, interval_s=0.1, what="the stopped gateway off the second's targets")
    finally:
        await processes.stop_all()


async def _targets(gateway: Gateway, key: str) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http,
        http.get(f"{gateway.url}/prometheus/targets", headers=headers) as reply,
    ):
        assert reply.status == 200, await reply.text()
        groups: list[dict[str, Any]] = await reply.json()
        return groups


async def _heartbeat_after(gateway: Gateway, after_ns: int) -> reg.Instance | None:
    instance = (await list_instances(gateway)).get("sim")
    return instance if instance is not None and instance.last_heartbeat_ns > after_ns else None
