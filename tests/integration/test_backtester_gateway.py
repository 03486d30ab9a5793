"""The backtest hub through the gateway: gRPC-web with a key's scopes (reading with `read`,
starting with `trade`), `buf curl` with the repository's schema, and the MCP tools (a run
started for a trade key, followed to its end, its results read)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.integration.gateway_support import Gateway, Processes, buf_curl, create_key, grpcweb_call
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from tests.integration.test_backtest_cli import SPEC, record
from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.core.backtest.config import LATENCY_MODES
from trademesh.core.domain.model import TIMEFRAME_LABELS
from trademesh.core.platform.service.process import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a gateway, a hub, PostgreSQL
__all__ = ["database_url", "redis_url"]  # fixtures

BACKTEST = "trademesh.backtest.v1.Backtest"
OK, PERMISSION_DENIED = 0, 7
END_NS = SPEC.start_ns + SPEC.steps * SPEC.step_ns


@dataclass
class Mesh:
    processes: Processes
    gateway: Gateway
    hub: ServiceProcess
    reader: str
    trader: str


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> AsyncIterator[Mesh]:
    directory = tmp_path_factory.mktemp("backtester-gw")
    async with new_database(database_url, "backtestgw") as database:
        processes = Processes(directory, database)
        try:
            # The history, the processes and the keys at once: none needs another to start (the
            # gateway reads keys made after its start within seconds; _reachable waits for them).
            recorded = asyncio.create_task(record(database))  # twenty minutes of the sim's walk
            keys = asyncio.gather(
                create_key(database, "bt-reader", ["read"]),
                create_key(database, "bt-trader", ["read", "trade"]),
            )
            gateway = await asyncio.to_thread(processes.gateway)
            hub = await asyncio.to_thread(
                processes.mesh_service, gateway, "backtester", "--database-url", database, redis_url=redis_url
            )
            reader, trader = await keys
            await recorded
            mesh = Mesh(processes, gateway, hub, reader, trader)
            await until(lambda: _reachable(mesh), 60, interval_s=0.5, what="the hub through the gateway")
            yield mesh
        finally:
            await processes.stop_all()


async def _web(mesh: Mesh, method: str, request: Any, key: str) -> Any:
    return await grpcweb_call(mesh.gateway, f"{BACKTEST}/{method}", request.SerializeToString(), key=key)


async def _reachable(mesh: Mesh) -> bool | None:
    for key in (mesh.reader, mesh.trader):
        if (await _web(mesh, "ListStrategies", bt.ListStrategiesRequest(), key)).code != OK:
            return None
    return True


def _options() -> bt.BacktestOptions:
    return bt.BacktestOptions(
        strategies=["trend"], symbols=["BTC/USDT"], start_ns=SPEC.start_ns, end_ns=END_NS, sample_s="60"
    )


async def test_reading_takes_read_and_starting_takes_trade_over_grpcweb(mesh: Mesh) -> None:
    listed = await _web(mesh, "ListStrategies", bt.ListStrategiesRequest(), mesh.reader)
    names = {s.name for s in bt.ListStrategiesResponse.FromString(listed.messages[0]).strategies}
    assert "trend" in names
    refused = await _web(mesh, "StartBacktest", bt.StartBacktestRequest(options=_options()), mesh.reader)
    assert refused.code == PERMISSION_DENIED, refused.message
    runs = await _web(mesh, "ListRuns", bt.ListRunsRequest(), mesh.reader)
    assert runs.code == OK, runs.message


async def test_buf_curl_lists_the_strategies_with_the_repositorys_schema(mesh: Mesh) -> None:
    done = await buf_curl(mesh.gateway, f"{BACKTEST}/ListStrategies", "-d", "{}", key=mesh.reader)
    assert done.returncode == 0, done.stderr
    assert "trend" in {s["name"] for s in json.loads(done.stdout)["strategies"]}


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


@contextlib.asynccontextmanager
async def _session(mesh: Mesh, key: str) -> AsyncIterator[Client]:
    """An MCP session with the gateway, as the key's agent."""
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=60)
    async with http, Client(streamable_http_client(f"{mesh.gateway.url}/mcp", http_client=http)) as client:
        yield client


async def _call(mesh: Mesh, key: str, name: str, arguments: dict[str, Any]) -> Any:
    async with _session(mesh, key) as client:
        return await client.call_tool(name, arguments)


async def test_an_agent_with_a_trade_key_runs_a_backtest_and_reads_its_results(mesh: Mesh) -> None:
    arguments = {
        "strategies": ["trend"],
        "symbols": ["BTC/USDT"],
        "start": _iso(SPEC.start_ns),
        "end": _iso(END_NS),
        "latency": "recorded",  # each order at its live twin's arrival (none here: all keep the model)
    }
    refused = await _call(mesh, mesh.reader, "backtest_start", arguments)
    assert refused.is_error and "trade" in getattr(refused.content[0], "text", "")
    started = await _call(mesh, mesh.trader, "backtest_start", arguments)
    assert not started.is_error, started.content
    run_id = (started.structured_content or {})["run_id"]

    async with _session(mesh, mesh.reader) as agent:  # one session polling, as an agent would

        async def ended() -> dict[str, Any] | None:
            progress = await agent.call_tool("backtest_progress", {"run_id": run_id})
            answer: dict[str, Any] = progress.structured_content or {}
            return answer if answer.get("status") in ("done", "failed", "cancelled") else None

        final = await until(ended, 180, interval_s=0.25, what="the run's end")
    assert final["status"] == "done", final
    result = await _call(mesh, mesh.reader, "backtest_result", {"run_id": run_id, "curve_points": 10})
    answer = result.structured_content or {}
    assert not result.is_error and answer["run"]["run_id"] == run_id
    assert (answer["run"]["latency"], answer["run"]["llm"]) == ("recorded", "off")
    assert {m["strategy"] for m in answer["metrics"]} >= {"trend", "total"}
    assert 2 <= len(answer["curve"]) <= 20 and answer["curve"][0]["equity"]
    bad = await _call(mesh, mesh.reader, "backtest_result", {"run_id": "not-a-run"})
    assert bad.is_error and "run_id" in getattr(bad.content[0], "text", "")


async def test_backtest_start_offers_the_latencies_and_refuses_another(mesh: Mesh) -> None:
    async with _session(mesh, mesh.trader) as client:
        listed = await client.list_tools()
    start = next(tool for tool in listed.tools if tool.name == "backtest_start")
    latency = start.input_schema["properties"]["latency"]
    assert (latency["enum"], latency["default"]) == (list(LATENCY_MODES), "model")
    assert "recorded arrival" in latency["description"]
    bars = start.input_schema["properties"]["bars"]  # the mesh's timeframes, "" each strategy's own
    assert (bars["enum"], bars["default"]) == (["", *TIMEFRAME_LABELS], "")
    arguments = {
        "strategies": ["trend"],
        "start": _iso(SPEC.start_ns),
        "end": _iso(END_NS),
        "latency": "live",
    }
    refused = await _call(mesh, mesh.trader, "backtest_start", arguments)
    text = getattr(refused.content[0], "text", "")
    assert refused.is_error and "invalid argument: options.latency: 'live' is not one of" in text, text
    refused = await _call(
        mesh, mesh.trader, "backtest_start", {**arguments, "latency": "model", "bars": "2m"}
    )
    text = getattr(refused.content[0], "text", "")
    assert refused.is_error and "invalid argument: options.bars: '2m' is not a timeframe" in text, text
