"""The app registry in a real gateway process, with real venues that register through
TRADEMESH_GATEWAY: they appear, heartbeat, drop out after kill -9 within the TTL, unregister on
SIGTERM, come back after a gateway restart; bad registrations are refused field by field, and
routing needs a target once two instances serve the same service."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from tests.forked_services import run_command
from tests.integration.gateway_support import (
    MESH_AUTH,
    Gateway,
    Processes,
    buf_curl,
    create_key,
    grpcweb_call,
    list_instances,
    module_database,
    open_stream,
    registry_stub,
)
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, until
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.registry.v1 import registry_pb2 as reg

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)
__all__ = ["database_url", "module_database", "redis_url"]  # the fixtures, for pytest

HEARTBEAT_S = 0.5
TTL_S = 2.0
FAST = ("--heartbeat-interval-s", str(HEARTBEAT_S), "--registry-ttl-s", str(TTL_S))
MARKET_DATA = "trademesh.marketdata.v1.MarketData"
LIST_INSTRUMENTS = f"{MARKET_DATA}/ListInstruments"


class Setup:
    def __init__(self, processes: Processes, gateway: Gateway, key: str, directory: Path) -> None:
        self.processes = processes
        self.gateway = gateway
        self.key = key
        self.directory = directory


@pytest.fixture(scope="module")
async def setup(tmp_path_factory: pytest.TempPathFactory, module_database: str) -> AsyncIterator[Setup]:
    directory = tmp_path_factory.mktemp("gateway-registry")
    processes = Processes(directory, module_database)
    try:
        key = await create_key(module_database, "registry-tests")
        yield Setup(processes, processes.gateway(*FAST), key, directory)
    finally:
        await processes.stop_all()


async def wait_registered(gateway: Gateway, name: str, timeout_s: float = 30) -> reg.Instance:
    async def found() -> reg.Instance | None:
        return (await list_instances(gateway)).get(name)

    return await until(found, timeout_s, what=f"{name} registered with the gateway")


async def register(gateway: Gateway, request: reg.RegisterRequest) -> reg.RegisterResponse:
    channel, stub = registry_stub(gateway)
    async with channel:
        reply: reg.RegisterResponse = await stub.Register(request, metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S)
    return reply


@contextlib.asynccontextmanager
async def heartbeating(gateway: Gateway, instance_id: str) -> AsyncIterator[None]:
    """Keeps a registration made by the test alive while the block runs, as a service does: with
    a 2 s ttl, a slow moment of the machine would otherwise expire it mid-test."""
    channel, stub = registry_stub(gateway)

    async def beat() -> None:
        while True:
            await asyncio.sleep(HEARTBEAT_S)
            request = reg.HeartbeatRequest(instance_id=instance_id)
            await stub.Heartbeat(request, metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S)

    async with channel:
        task = asyncio.create_task(beat())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def unregister(gateway: Gateway, instance_id: str) -> None:
    channel, stub = registry_stub(gateway)
    async with channel:
        await stub.Unregister(
            reg.UnregisterRequest(instance_id=instance_id), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
        )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def test_a_venue_registers_heartbeats_and_unregisters_on_sigterm(setup: Setup) -> None:
    sim = setup.processes.sim(setup.gateway)
    instance = await wait_registered(setup.gateway, "sim")
    assert instance.kind == reg.KIND_VENUE and instance.address == sim.address
    assert set(instance.services) == {
        MARKET_DATA,
        "trademesh.tradeflow.v1.TradeFlow",
        "trademesh.admin.v1.Admin",
        "grpc.health.v1.Health",
    }
    assert not instance.configured and instance.instance_id

    async def heartbeat_seen() -> reg.Instance | None:
        now = (await list_instances(setup.gateway))["sim"]
        return now if now.last_heartbeat_ns > instance.last_heartbeat_ns else None

    later = await until(heartbeat_seen, 5 * HEARTBEAT_S, what="a heartbeat")
    assert later.instance_id == instance.instance_id and later.registered_at_ns == instance.registered_at_ns

    assert await setup.processes.stop(sim) == 0
    assert "sim" not in await list_instances(setup.gateway)
    # Gone because it said so, not because its heartbeats stopped.
    assert f"unregistered sim at {sim.address}" in setup.gateway.log()


@pytest.mark.slow  # a fault test (a venue killed or restarted): not in the fast tier
@pytest.mark.exclusive  # measures when the registry drops it, to within 2 s
async def test_a_killed_venue_drops_out_within_the_ttl(setup: Setup) -> None:
    sim = setup.processes.sim(setup.gateway)
    await wait_registered(setup.gateway, "sim")
    sim.process.send_signal(signal.SIGKILL)
    killed = time.monotonic()

    async def gone() -> bool | None:
        return True if "sim" not in await list_instances(setup.gateway) else None

    await until(gone, TTL_S + 5, interval_s=0.1, what="the killed sim to drop out")
    elapsed = time.monotonic() - killed
    assert TTL_S - HEARTBEAT_S - 0.2 < elapsed < TTL_S + 2.0, elapsed
    await setup.processes.stop(sim)


@pytest.mark.slow  # a fault test (the gateway stopped): not in the fast tier
async def test_a_pause_of_the_gateway_longer_than_the_ttl_drops_no_instance(setup: Setup) -> None:
    """The gateway stopped (SIGSTOP) for three ttls: its instances' heartbeats wait in its own
    queue meanwhile, and on waking it keeps them (before, it dropped every one at once, and
    calls through it found no instance until each registered again)."""
    sim = setup.processes.sim(setup.gateway)
    try:
        instance = await wait_registered(setup.gateway, "sim")
        gateway = setup.gateway.service.process
        gateway.send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(3 * TTL_S)  # the fault's length, not a wait on a condition
        finally:
            gateway.send_signal(signal.SIGCONT)
        assert (await list_instances(setup.gateway))["sim"].instance_id == instance.instance_id

        async def heartbeat_seen() -> reg.Instance | None:
            now = (await list_instances(setup.gateway))["sim"]
            return now if now.last_heartbeat_ns > instance.last_heartbeat_ns else None

        later = await until(heartbeat_seen, 5 * HEARTBEAT_S + 5, what="a heartbeat after the pause")
        assert later.instance_id == instance.instance_id
        log = setup.gateway.log()
        assert "the gateway did not run for" in log
        assert f"instance sim at {sim.address} dropped out" not in log
    finally:
        await setup.processes.stop(sim)


@pytest.mark.slow  # a fault test (a venue killed or restarted): not in the fast tier
async def test_a_venue_back_at_the_same_address_is_reachable_at_once(setup: Setup) -> None:
    port = free_port()
    sim = setup.processes.sim(setup.gateway, port=port)
    await wait_registered(setup.gateway, "sim")
    sim.process.send_signal(signal.SIGKILL)
    await asyncio.to_thread(sim.process.wait)
    # Until its entry expires, calls reach for the dead address: the gateway's channel to it fails.
    deadline = time.monotonic() + TTL_S + 2
    while time.monotonic() < deadline:
        answer = await grpcweb_call(setup.gateway, LIST_INSTRUMENTS, b"", key=setup.key)
        if answer.code == grpc.StatusCode.NOT_FOUND.value[0]:
            break
        assert answer.code == grpc.StatusCode.UNAVAILABLE.value[0], answer.message
        await asyncio.sleep(0.2)
    await setup.processes.stop(sim)
    again = setup.processes.sim(setup.gateway, port=port)
    try:
        await wait_registered(setup.gateway, "sim")
        back = time.monotonic()

        async def answered() -> bool | None:
            answer = await grpcweb_call(setup.gateway, LIST_INSTRUMENTS, b"", key=setup.key)
            return True if answer.code == 0 else None

        await until(answered, 10, interval_s=0.1, what="a call to the restarted venue")
        assert time.monotonic() - back < 2.5
    finally:
        await setup.processes.stop(again)


@pytest.mark.slow  # a fault test (the gateway restarted): not in the fast tier
async def test_a_restarted_gateway_is_refilled_and_its_open_streams_end_unavailable(
    setup: Setup, module_database: str
) -> None:
    processes = Processes(setup.directory, module_database)
    grpc_port = str(free_port())
    try:
        gateway = processes.gateway("--grpc-port", grpc_port, *FAST)
        sim = processes.sim(gateway)
        first = await wait_registered(gateway, "sim")
        request = md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_TRADES]).SerializeToString()
        stream = await open_stream(gateway, f"{MARKET_DATA}/Subscribe", request, key=setup.key)
        await stream.messages(1)

        assert await processes.stop(gateway.service) == 0
        _, trailers = await stream.rest()
        await stream.close()
        assert trailers["grpc-status"] == str(grpc.StatusCode.UNAVAILABLE.value[0])
        assert "stopping" in trailers["grpc-message"]

        again = processes.gateway("--grpc-port", grpc_port, *FAST)
        second = await wait_registered(again, "sim", timeout_s=15)
        assert second.address == sim.address and second.instance_id != first.instance_id
        result = await buf_curl(again, LIST_INSTRUMENTS, key=setup.key, target="sim")
        assert result.returncode == 0, result.stderr
    finally:
        await processes.stop_all()


async def test_bad_registrations_are_refused_field_by_field(setup: Setup) -> None:
    request = reg.RegisterRequest(
        name="Not A Name", kind=reg.KIND_UNSPECIFIED, address="nohost", services=["x"]
    )
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await register(setup.gateway, request)
    assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = dict(bad_request_violations(error.value))
    assert set(violations) == {"name", "kind", "address", "services[0]"}
    assert "'Not A Name'" in violations["name"]
    assert "KIND_UNSPECIFIED" in violations["kind"]
    assert "'nohost' is not host:port" in violations["address"]

    wildcard = reg.RegisterRequest(name="svc", kind=reg.KIND_CORE, address="0.0.0.0:5100")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await register(setup.gateway, wildcard)
    assert dict(bad_request_violations(error.value)).keys() == {"address"}


async def test_the_gateways_own_name_cannot_be_taken(setup: Setup) -> None:
    request = reg.RegisterRequest(name="gateway", kind=reg.KIND_CORE, address="127.0.0.1:1")
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await register(setup.gateway, request)
    assert error.value.code() == grpc.StatusCode.ALREADY_EXISTS


async def test_heartbeat_and_unregister_of_an_unknown_instance_are_not_found(setup: Setup) -> None:
    channel, stub = registry_stub(setup.gateway)
    async with channel:
        for call in (
            stub.Heartbeat(
                reg.HeartbeatRequest(instance_id="nope"), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
            ),
            stub.Unregister(
                reg.UnregisterRequest(instance_id="nope"), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
            ),
        ):
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await call
            assert error.value.code() == grpc.StatusCode.NOT_FOUND
            assert "'nope' is not registered" in (error.value.details() or "")


async def test_registering_needs_the_mesh_token(setup: Setup) -> None:
    channel, stub = registry_stub(setup.gateway)
    request = reg.RegisterRequest(name="intruder", kind=reg.KIND_VENUE, address="127.0.0.1:9")
    async with channel:
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await stub.Register(request, timeout=CALL_TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "intruder" not in await list_instances(setup.gateway)


async def test_two_instances_of_a_service_need_a_target(setup: Setup) -> None:
    sim = setup.processes.sim(setup.gateway)
    try:
        await wait_registered(setup.gateway, "sim")
        copy = await register(
            setup.gateway,
            reg.RegisterRequest(
                name="sim-copy", kind=reg.KIND_VENUE, address=sim.address, services=[MARKET_DATA]
            ),
        )
        async with heartbeating(setup.gateway, copy.instance.instance_id):
            answer = await grpcweb_call(setup.gateway, LIST_INSTRUMENTS, b"", key=setup.key)
            assert answer.code == grpc.StatusCode.FAILED_PRECONDITION.value[0]
            assert answer.message == (
                f"2 instances serve {MARKET_DATA} (sim, sim-copy): name one with the header "
                "`x-trademesh-target: <name>`"
            )
            result = await buf_curl(setup.gateway, LIST_INSTRUMENTS, key=setup.key, target="sim-copy")
            assert result.returncode == 0, result.stderr
            assert len(json.loads(result.stdout)["instruments"]) == 3
        await unregister(setup.gateway, copy.instance.instance_id)
        # One left: no target needed again.
        answer = await grpcweb_call(setup.gateway, LIST_INSTRUMENTS, b"", key=setup.key)
        assert answer.code == 0, answer.message
    finally:
        await setup.processes.stop(sim)


async def test_an_unreachable_instance_answers_unavailable(setup: Setup) -> None:
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    ghost = await register(
        setup.gateway,
        reg.RegisterRequest(name="ghost", kind=reg.KIND_VENUE, address=address, services=[MARKET_DATA]),
    )
    try:
        async with heartbeating(setup.gateway, ghost.instance.instance_id):
            answer = await grpcweb_call(
                setup.gateway, LIST_INSTRUMENTS, b"", key=setup.key, headers={"x-trademesh-target": "ghost"}
            )
        assert answer.code == grpc.StatusCode.UNAVAILABLE.value[0]
        assert f"upstream {address} is unreachable" in answer.message
    finally:
        await unregister(setup.gateway, ghost.instance.instance_id)


@pytest.mark.slow  # a gateway and a venue of its own: not in the fast tier
async def test_a_configured_upstream_routes_without_registration(setup: Setup, module_database: str) -> None:
    processes = Processes(setup.directory, module_database)
    try:
        sim = processes.sim(None)  # does not register anywhere
        gateway = processes.gateway("--upstream", f"fixed={MARKET_DATA},grpc.health.v1.Health@{sim.address}")
        instance = (await list_instances(gateway))["fixed"]
        assert instance.configured and instance.address == sim.address
        result = await buf_curl(gateway, LIST_INSTRUMENTS, key=setup.key)
        assert result.returncode == 0, result.stderr
    finally:
        await processes.stop_all()


async def test_a_bad_upstream_flag_names_the_value(setup: Setup) -> None:
    args = ["gateway", "--upstream", "sim=MarketData@localhost"]
    done = await asyncio.to_thread(run_command, args, timeout_s=60)
    assert done.returncode == 2
    assert "'sim=MarketData@localhost'" in done.stderr and "services[0]" in done.stderr
    assert "address" in done.stderr


async def test_a_mesh_service_registers_as_core_and_is_reachable_without_a_target(
    setup: Setup, redis_url: str
) -> None:
    async with redis_db(redis_url) as url:
        bridge = setup.processes.mesh_service(setup.gateway, "bridge", redis_url=url)
        try:
            instance = await wait_registered(setup.gateway, "bridge")
            assert instance.kind == reg.KIND_CORE and instance.address == bridge.address
            assert "trademesh.livedata.v1.LiveData" in instance.services
            method = "trademesh.livedata.v1.LiveData/ListStreams"
            result = await buf_curl(setup.gateway, method, key=setup.key)
            assert result.returncode == 0, result.stderr
            assert json.loads(result.stdout).get("subscriberCount", 0) == 0
        finally:
            await setup.processes.stop(bridge)
    assert "bridge" not in await list_instances(setup.gateway)


async def replicas(gateway: Gateway, name: str) -> list[reg.Instance]:
    """Every live instance named `name` (ListServices lists each replica)."""
    channel, stub = registry_stub(gateway)
    async with channel:
        reply = await stub.ListServices(reg.ListServicesRequest(), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S)
    return [instance for instance in reply.instances if instance.name == name]


@pytest.mark.slow  # a fault test (a replica killed): not in the fast tier
async def test_two_replicas_of_one_name_are_both_listed_without_flapping(
    setup: Setup, redis_url: str
) -> None:
    """Two processes of one service name register at once: both listed, each heartbeat answered
    (none registers again) over several intervals; one killed -9 drops out, the other stays."""
    async with redis_db(redis_url) as url:
        first = setup.processes.mesh_service(setup.gateway, "bridge", redis_url=url)
        second = setup.processes.mesh_service(setup.gateway, "bridge", redis_url=url)
        try:

            async def both() -> list[reg.Instance] | None:
                found = await replicas(setup.gateway, "bridge")
                return found if len(found) == 2 else None

            listed = await until(both, 30, what="both replicas registered")
            assert {i.address for i in listed} == {first.address, second.address}
            await asyncio.sleep(4 * HEARTBEAT_S)
            after = await replicas(setup.gateway, "bridge")
            assert {i.instance_id for i in after} == {i.instance_id for i in listed}
            assert all(a.last_heartbeat_ns > b.registered_at_ns for a, b in zip(after, listed, strict=True))
            for process in (first, second):
                log = setup.processes.log_path(process).read_text()
                assert log.count("registered bridge (") == 1, log
                assert "does not know us" not in log, log

            first.process.send_signal(signal.SIGKILL)
            killed = time.monotonic()

            async def one_left() -> list[reg.Instance] | None:
                found = await replicas(setup.gateway, "bridge")
                return found if len(found) == 1 else None

            left = await until(one_left, TTL_S + 5, interval_s=0.1, what="the killed replica to drop out")
            print(f"the killed replica dropped out after {time.monotonic() - killed:.2f} s")
            assert left[0].address == second.address
            assert left[0].instance_id in {i.instance_id for i in listed}
        finally:
            await setup.processes.stop(first)
            await setup.processes.stop(second)
