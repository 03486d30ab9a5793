"""The services board over a real mesh (gateway, sim venue, ingest, bars, each exporting
metrics) and Debian's Alertmanager: Services/List and Watch over native gRPC (and `buf curl`
by reflection), over gRPC-web (`buf curl` with a read key), and the MCP tool services_overview
give every registered instance SERVING with its version, the venue's and ingest's events/s once
the sim trades, the bars' bus lag, and an alert posted to Alertmanager on the instance it
names; a stopped service leaves the board."""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import grpc
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.integration.alertmanager import alertmanager, post_alert
from tests.integration.gateway_support import (
    BUF,
    MESH_AUTH,
    Gateway,
    Processes,
    at_once,
    both,
    buf_curl,
    key_taken,
    module_database,
    new_key,
    parse_json_stream,
)
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, until
from trademesh.core.platform.rpc.registration import package_version
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.services.v1 import services_pb2 as pb
from trademesh.services.v1 import services_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a whole mesh: not in the fast tier
__all__ = ["database_url", "module_database", "redis_url"]  # the fixtures, for pytest

SERVICES = "trademesh.services.v1.Services"
MESH = {"gateway", "sim", "ingest", "bars"}
FAST = ("--heartbeat-interval-s", "0.5", "--registry-ttl-s", "2", "--board-every-s", "0.5")
# A start of the mesh, the sim's first trades, two rounds of the board: well within.
WITHIN_S = 30.0


@dataclass
class Board:
    gateway: Gateway
    key: str
    alertmanager_url: str
    processes: Processes
    bars: ServiceProcess


@pytest.fixture(scope="module")
async def board(
    tmp_path_factory: pytest.TempPathFactory, module_database: str, redis_url: str
) -> AsyncIterator[Board]:
    directory = tmp_path_factory.mktemp("board")
    processes = Processes(directory, module_database)
    metrics = ("--metrics-port", "0")
    try:
        async with redis_db(redis_url) as bus, alertmanager(directory) as am_url:
            gateway, key = await both(
                lambda: processes.gateway(*FAST, "--alertmanager-url", am_url),
                lambda: new_key(module_database, "board", ["read"]),
            )
            _, _, bars = await at_once(
                lambda: processes.sim(gateway, None, 0, *metrics),
                lambda: processes.mesh_service(gateway, "ingest", *metrics, redis_url=bus),
                lambda: processes.mesh_service(gateway, "bars", *metrics, redis_url=bus),
            )
            await key_taken(gateway, key)
            yield Board(gateway, key, am_url, processes, bars)
    finally:
        await processes.stop_all()


async def list_snapshot(gateway: Gateway) -> pb.Snapshot:
    async with grpc.aio.insecure_channel(gateway.grpc_address) as channel:
        reply = await pb_grpc.ServicesStub(channel).List(
            pb.ListRequest(), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
        )
    return reply.snapshot


def by_name(snapshot: pb.Snapshot) -> dict[str, pb.ServiceStatus]:
    return {status.name: status for status in snapshot.services}


async def snapshot_where(
    gateway: Gateway, check: Callable[[dict[str, pb.ServiceStatus]], bool], what: str
) -> dict[str, pb.ServiceStatus]:
    async def found() -> dict[str, pb.ServiceStatus] | None:
        services = by_name(await list_snapshot(gateway))
        return services if check(services) else None

    return await until(found, WITHIN_S, 0.2, what)


def _live(services: dict[str, pb.ServiceStatus]) -> bool:
    return (
        set(services) >= MESH
        and all(services[name].health == pb.HEALTH_SERVING for name in MESH)
        and all(services[name].events_per_s.value > 0 for name in ("sim", "ingest"))
        and services["bars"].bus_lag.present
    )


async def test_every_instance_is_listed_serving_with_its_version_and_its_figures(board: Board) -> None:
    services = await snapshot_where(board.gateway, _live, "the mesh serving, trading and consuming")
    version = package_version()
    assert {services[name].version for name in MESH} == {version}
    for name in MESH:
        status = services[name]
        assert status.instance_id and status.address and status.metrics_port > 0, name
        assert 0 < status.registered_at_ns <= status.last_heartbeat_ns, name
        assert status.errors_per_s.present and status.errors_per_s.value >= 0, name
    assert services["sim"].events_per_s.present and services["ingest"].events_per_s.present
    assert services["bars"].bus_lag.value >= 0
    # The venue and ingest consume no bus group: their lag is absent, not zero.
    assert not services["sim"].bus_lag.present and "not a bus consumer" in services["sim"].bus_lag.why


async def test_an_alert_posted_to_alertmanager_shows_on_the_instance_it_names_and_the_rest_mesh_wide(
    board: Board,
) -> None:
    await post_alert(board.alertmanager_url, {"alertname": "VenueQuiet", "venue": "sim"}, "no trades")
    await post_alert(board.alertmanager_url, {"alertname": "BusSlow", "severity": "warning"})

    async def shown() -> pb.Snapshot | None:
        snapshot = await list_snapshot(board.gateway)
        sim = by_name(snapshot).get("sim")
        if sim is None or not sim.alerts or not snapshot.mesh_alerts:
            return None
        return snapshot

    snapshot = await until(shown, WITHIN_S, 0.2, "the alerts on the board")
    services = by_name(snapshot)
    assert [(a.name, a.summary) for a in services["sim"].alerts] == [("VenueQuiet", "no trades")]
    assert services["sim"].alerts[0].starts_at_ns > 0
    assert all(not services[name].alerts for name in MESH - {"sim"})
    assert [(a.name, a.severity) for a in snapshot.mesh_alerts] == [("BusSlow", "warning")]
    assert snapshot.alerts_configured and snapshot.alerts_error == ""


async def test_watch_streams_snapshots_at_its_interval_and_refuses_one_out_of_bounds(board: Board) -> None:
    async with grpc.aio.insecure_channel(board.gateway.grpc_address) as channel:
        stub = pb_grpc.ServicesStub(channel)
        stream = stub.Watch(pb.WatchRequest(interval_ms=500), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S * 2)
        taken = []
        async for reply in stream:
            taken.append(reply.snapshot.taken_at_ns)
            if len(taken) == 4:
                break
        stream.cancel()
        assert set(by_name(reply.snapshot)) >= MESH
        assert taken[-1] > taken[0]  # later rounds, live
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            async for _ in stub.Watch(pb.WatchRequest(interval_ms=100), metadata=MESH_AUTH, timeout=5):
                pass
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "interval_ms: 100 is not 500..60000" in (refused.value.details() or "")


async def test_buf_curl_lists_the_board_over_grpc_web_with_a_read_key_and_by_reflection(board: Board) -> None:
    await snapshot_where(board.gateway, _live, "the mesh live")
    web = await buf_curl(board.gateway, f"{SERVICES}/List", key=board.key)
    assert web.returncode == 0, web.stderr
    listed = {s["name"]: s for s in json.loads(web.stdout)["snapshot"]["services"]}
    assert set(listed) >= MESH
    assert listed["sim"]["health"] == "HEALTH_SERVING" and listed["sim"]["version"] == package_version()
    refused = await buf_curl(board.gateway, f"{SERVICES}/List")
    assert refused.returncode != 0 and "unauthenticated" in refused.stderr.lower()

    reflected = await _buf_native(board.gateway, "--list-methods")
    assert f"{SERVICES}/List" in reflected.split() and f"{SERVICES}/Watch" in reflected.split()
    streamed = await _buf_native(
        board.gateway, "-d", '{"interval_ms": 500}', "--timeout", "2s", method="Watch"
    )
    snapshots = parse_json_stream(streamed)
    assert len(snapshots) >= 2
    assert {s["name"] for s in snapshots[-1]["snapshot"]["services"]} >= MESH


async def _buf_native(gateway: Gateway, *args: str, method: str = "") -> str:
    """`buf curl` over native gRPC to the gateway's gRPC port, the schema by reflection."""
    if not BUF.exists():
        pytest.fail(f"{BUF} is missing: `./dev test` installs it (npm package @bufbuild/buf)")
    url = f"http://{gateway.grpc_address}/" + (f"{SERVICES}/{method}" if method else "")
    command = [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", *args]
    command += ["-H", f"{MESH_AUTH[0][0]}: {MESH_AUTH[0][1]}", url]
    done = await asyncio.to_thread(subprocess.run, command, capture_output=True, text=True, timeout=60)
    # A Watch ended by --timeout exits with DEADLINE_EXCEEDED after what it printed.
    assert done.returncode in (0, 4 << 3), done.stderr
    return done.stdout


@contextlib.asynccontextmanager
async def mcp_client(gateway: Gateway, key: str) -> AsyncIterator[Client]:
    async with (
        # The gateway loads its MCP app on the first request (the SDK's import: seconds on a
        # loaded machine), beyond httpx's 5 s default.
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=CALL_TIMEOUT_S * 3) as http,
        Client(streamable_http_client(f"{gateway.url}/mcp", http_client=http)) as client,
    ):
        yield client


async def test_the_mcp_tool_services_overview_gives_the_same_board_as_json(board: Board) -> None:
    await snapshot_where(board.gateway, _live, "the mesh live")
    async with mcp_client(board.gateway, board.key) as client:
        listed = await client.list_tools()
        tool = next(t for t in listed.tools if t.name == "services_overview")
        assert tool.annotations is not None and tool.annotations.read_only_hint

        async def trading() -> dict[str, Any] | None:
            result = await client.call_tool("services_overview", {})
            assert not result.is_error, result.content
            found: dict[str, Any] | None = result.structured_content
            assert found is not None
            services = {s["name"]: s for s in found["services"]}
            sim = services.get("sim", {}).get("events_per_s", {})
            # A rate between two reads: a loaded machine may skip a step of the sim now and then.
            return services if sim.get("present") and sim["value"] > 0 else None

        services = await until(trading, WITHIN_S, 0.2, "the sim trading, through MCP")
    assert set(services) >= MESH, services
    assert services["sim"]["health"] == "HEALTH_SERVING", services["sim"]
    assert services["sim"]["version"] == package_version()
    assert services["bars"]["bus_lag"]["present"] is True, services["bars"]


async def test_a_stopped_service_leaves_the_board(board: Board) -> None:
    # Last in the module: the others read bars.
    await snapshot_where(board.gateway, lambda s: "bars" in s, "bars on the board")
    await board.processes.stop(board.bars)
    services = await snapshot_where(board.gateway, lambda s: "bars" not in s, "bars gone from the board")
    assert {"gateway", "sim", "ingest"} <= set(services)
