"""History/GetCoverage through the gateway, on a database holding a Binance month imported by
`trademesh data import` (with a hole) and a minute and a half of its aggTrades: over native gRPC
and by reflection (`buf curl`), over gRPC-web with a read key (`buf curl`), and as the MCP tool
history_coverage, each giving the same range, bar count and hole, and the trades held when asked;
a bad timeframe or venue is INVALID_ARGUMENT naming it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import subprocess
import zipfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import httpx2
import pytest
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.forked_services import run_command
from tests.integration.gateway_support import (
    BUF,
    MESH_AUTH,
    Gateway,
    Processes,
    both,
    buf_curl,
    key_taken,
    module_database,
    new_key,
)
from tests.integration.postgres_server import database_url
from tests.integration.support import CALL_TIMEOUT_S
from trademesh.core.platform.config.env import DATABASE_URL
from trademesh.history.v1 import history_pb2 as pb
from trademesh.history.v1 import history_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL and the gateway as a process
__all__ = ["database_url", "module_database"]  # the fixtures, for pytest

HISTORY = "trademesh.history.v1.History"
MINUTE_MS = 60_000
JAN_2024_MS = 1_704_067_200_000
DAY_MS = 86_400_000
DAYS = 3
# The hole the archive leaves: 2024-01-02 00:00 .. 00:30.
HOLE_MS = (JAN_2024_MS + DAY_MS, JAN_2024_MS + DAY_MS + 30 * MINUTE_MS)
HELD = DAYS * 1440 - 30
TRADES = 90  # aggTrades of SOL/USDT, a second apart from 00:00:01


@dataclass
class Served:
    gateway: Gateway
    key: str


def archive(folder: Path) -> Path:
    lines = [
        f"{ms},100.5,101,99.25,100.75,3.5,{ms + 59_999},352.625,7,1,100,0"
        for ms in range(JAN_2024_MS, JAN_2024_MS + DAYS * 1440 * MINUTE_MS, MINUTE_MS)
        if not HOLE_MS[0] <= ms < HOLE_MS[1]
    ]
    path = folder / "SOLUSDT-1m-2024-01.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("SOLUSDT-1m-2024-01.csv", "\n".join(lines) + "\n")
    path.with_name(path.name + ".CHECKSUM").write_text(
        f"{hashlib.sha256(path.read_bytes()).hexdigest()}  x\n"
    )
    return path


def agg_trades(folder: Path) -> Path:
    """TRADES aggregate trades of SOL/USDT, one a second from 2024-01-01 00:00:01."""
    lines = [
        f"{n},100.{n % 100:02d},0.5,{n},{n},{JAN_2024_MS + n * 1000},false" for n in range(1, TRADES + 1)
    ]
    path = folder / "SOLUSDT-aggTrades-2024-01-01.zip"
    with zipfile.ZipFile(path, "w") as zipped:
        zipped.writestr("SOLUSDT-aggTrades-2024-01-01.csv", "\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory, module_database: str) -> AsyncIterator[Served]:
    directory = tmp_path_factory.mktemp("history")
    env = {**os.environ, DATABASE_URL: module_database}
    files = [str(archive(directory)), str(agg_trades(directory))]
    imported = await asyncio.to_thread(run_command, ["data", "import", *files], env, 120)
    assert imported.returncode == 0, imported.stderr
    processes = Processes(directory, module_database)
    try:
        gateway, key = await both(
            lambda: processes.gateway(), lambda: new_key(module_database, "h", ["read"])
        )
        await key_taken(gateway, key)
        yield Served(gateway, key)
    finally:
        await processes.stop_all()


def expected_series(found: dict[str, object]) -> None:
    assert (found["venue"], found["symbol"], found["timeframe"]) == ("binance", "SOL/USDT", "1m")
    holes = found["hole_count"] if "hole_count" in found else found["holeCount"]  # MCP's, or proto JSON's
    assert int(str(found["bars"])) == HELD and int(str(holes)) == 1


async def test_get_coverage_over_native_grpc_gives_the_range_the_bars_and_the_hole(served: Served) -> None:
    async with grpc.aio.insecure_channel(served.gateway.grpc_address) as channel:
        stub = pb_grpc.HistoryStub(channel)
        reply = await stub.GetCoverage(
            pb.GetCoverageRequest(venue="binance"), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
        )
        assert len(reply.series) == 1
        series = reply.series[0]
        assert (series.venue, series.symbol, series.timeframe, series.bars) == (
            "binance",
            "SOL/USDT",
            "1m",
            HELD,
        )
        assert (series.start_ns, series.end_ns) == (
            JAN_2024_MS * 10**6,
            (JAN_2024_MS + DAYS * DAY_MS) * 10**6,
        )
        assert [(h.start_ns, h.end_ns) for h in series.holes] == [(HOLE_MS[0] * 10**6, HOLE_MS[1] * 10**6)]
        assert (series.missing_bars, series.step_ns) == (30, 60 * 10**9)
        assert list(reply.trades) == []  # not asked for
        with_trades = await stub.GetCoverage(
            pb.GetCoverageRequest(venue="binance", trades=True), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
        )
        assert list(with_trades.series) == list(reply.series)
        assert list(with_trades.trades) == [
            pb.TradesCoverage(
                venue="binance",
                symbol="SOL/USDT",
                first_ns=(JAN_2024_MS + 1000) * 10**6,
                last_ns=(JAN_2024_MS + TRADES * 1000) * 10**6,
                trades=TRADES,
            )
        ]
        framed = await stub.GetCoverage(
            pb.GetCoverageRequest(timeframe="1m", trades=True), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
        )
        assert len(framed.series) == 1 and list(framed.trades) == []  # trades have no timeframe
        elsewhere = await stub.GetCoverage(
            pb.GetCoverageRequest(venue="kraken"), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
        )
        assert list(elsewhere.series) == []
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetCoverage(
                pb.GetCoverageRequest(timeframe="7m"), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
            )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "timeframe" in str(refused.value.details())
    async with grpc.aio.insecure_channel(served.gateway.grpc_address) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as unstorable:  # PostgreSQL's text holds no NUL
            await pb_grpc.HistoryStub(channel).GetCoverage(
                pb.GetCoverageRequest(venue="bin\x00ance"), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
            )
    assert unstorable.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "venue" in str(unstorable.value.details())


async def test_buf_curl_gets_coverage_over_grpc_web_with_a_read_key_and_by_reflection(served: Served) -> None:
    web = await buf_curl(
        served.gateway, f"{HISTORY}/GetCoverage", "-d", '{"symbol": "SOL/USDT"}', key=served.key
    )
    assert web.returncode == 0, web.stderr
    (series,) = json.loads(web.stdout)["series"]
    expected_series(series)
    assert series["holes"] == [{"startNs": str(HOLE_MS[0] * 10**6), "endNs": str(HOLE_MS[1] * 10**6)}]
    refused = await buf_curl(served.gateway, f"{HISTORY}/GetCoverage")
    assert refused.returncode != 0 and "unauthenticated" in refused.stderr.lower()

    url = f"http://{served.gateway.grpc_address}/"
    command = [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
    command += ["-H", f"{MESH_AUTH[0][0]}: {MESH_AUTH[0][1]}"]
    listed = await asyncio.to_thread(
        subprocess.run, [*command, "--list-methods", url], capture_output=True, text=True, timeout=60
    )
    assert f"{HISTORY}/GetCoverage" in listed.stdout.split(), listed.stderr
    native = await asyncio.to_thread(
        subprocess.run, [*command, f"{url}{HISTORY}/GetCoverage"], capture_output=True, text=True, timeout=60
    )
    assert native.returncode == 0, native.stderr
    expected_series(json.loads(native.stdout)["series"][0])


@contextlib.asynccontextmanager
async def mcp_client(gateway: Gateway, key: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=CALL_TIMEOUT_S * 3) as http,
        Client(streamable_http_client(f"{gateway.url}/mcp", http_client=http)) as client,
    ):
        yield client


async def test_the_mcp_tool_history_coverage_gives_the_same_series(served: Served) -> None:
    async with mcp_client(served.gateway, served.key) as client:
        listed = await client.list_tools()
        tool = next(t for t in listed.tools if t.name == "history_coverage")
        assert tool.annotations is not None and tool.annotations.read_only_hint
        result = await client.call_tool("history_coverage", {"symbol": "SOL/USDT"})
        assert not result.is_error, result.content
        found = result.structured_content
    assert found is not None
    (series,) = found["series"]
    expected_series(series)
    assert (series["from"], series["to"]) == ("2024-01-01T00:00:00Z", "2024-01-04T00:00:00Z")
    assert series["holes"] == [{"from": "2024-01-02T00:00:00Z", "to": "2024-01-02T00:30:00Z", "bars": 30}]
    assert "trades" not in found
    async with mcp_client(served.gateway, served.key) as client:
        result = await client.call_tool("history_coverage", {"symbol": "SOL/USDT", "trades": True})
        assert not result.is_error, result.content
        with_trades = result.structured_content
    assert with_trades is not None and with_trades["series"] == found["series"]
    assert with_trades["trades"] == [
        {
            "venue": "binance", "symbol": "SOL/USDT",
            "first": "2024-01-01T00:00:01Z", "last": "2024-01-01T00:01:30Z",
            "first_ns": (JAN_2024_MS + 1000) * 10**6, "last_ns": (JAN_2024_MS + TRADES * 1000) * 10**6,
            "trades": TRADES,
        }
    ]  # fmt: skip
