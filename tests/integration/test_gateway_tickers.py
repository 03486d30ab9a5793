"""MarketData/GetTickers (every instrument's latest ticker at once) reaching users: a real gateway
process and a real sim venue registered with it. Over gRPC-web with a `read` key (`buf curl
--protocol grpcweb`, targeted at the venue), natively at the venue by server reflection (`buf curl
--protocol grpc`, no schema), and as the gateway's MCP tool market_prices through the MCP client:
each gives every instrument's last, bid and ask as exact decimal strings. An unknown or malformed
symbol is INVALID_ARGUMENT naming symbols[i]; a key without `read` is PERMISSION_DENIED."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx2
import pytest
from google.rpc import error_details_pb2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.integration.gateway_support import (
    BUF,
    MESH_AUTH,
    Gateway,
    Processes,
    both,
    buf_curl,
    key_taken,
    list_instances,
    module_database,
    new_key,
)
from tests.integration.postgres_server import database_url
from tests.integration.support import CALL_TIMEOUT_S, until
from trademesh.core.platform.service.process import ServiceProcess

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL and processes
__all__ = ["database_url", "module_database"]  # the fixtures, for pytest

MARKET_DATA = "trademesh.marketdata.v1.MarketData"
GET_TICKERS = f"{MARKET_DATA}/GetTickers"
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]  # the sim's, in ListInstruments' order
INVALID_ARGUMENT_EXIT = 3 << 3
PERMISSION_DENIED_EXIT = 7 << 3


@dataclass
class Served:
    gateway: Gateway
    sim: ServiceProcess
    read_key: str
    trade_key: str


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory, module_database: str) -> AsyncIterator[Served]:
    processes = Processes(tmp_path_factory.mktemp("tickers"), module_database)

    def start() -> tuple[Gateway, ServiceProcess]:
        gateway = processes.gateway()
        return gateway, processes.sim(gateway)

    try:
        # The keys are made (their CLI's starts) while the gateway and the sim start.
        keys, (gateway, sim) = await both(
            lambda: (
                new_key(module_database, "tickers-read", ["read"]),
                new_key(module_database, "tickers-trade", ["trade"]),
            ),
            start,
        )
        read_key, trade_key = keys
        await key_taken(gateway, read_key)
        await key_taken(gateway, trade_key)

        async def registered() -> bool | None:
            return True if "sim" in await list_instances(gateway) else None

        await until(registered, 30, what="the sim registered with the gateway")
        yield Served(gateway, sim, read_key, trade_key)
    finally:
        await processes.stop_all()


def _exact(text: str) -> Decimal:
    """A decimal string as the wire carries it: exact, finite, positive."""
    assert isinstance(text, str) and text == text.strip(), text
    value = Decimal(text)
    assert value.is_finite() and value > 0, text
    return value


def _check_prices(rows: list[dict[str, Any]], bid: str, ask: str, last: str) -> None:
    """Every row with an exact bid below its ask and a last price."""
    for row in rows:
        assert _exact(row[bid]) < _exact(row[ask]), row
        _exact(row[last])


async def _web_tickers(
    served: Served, request: dict[str, Any] | None = None
) -> subprocess.CompletedProcess[str]:
    args = ("-d", json.dumps(request)) if request is not None else ()
    return await buf_curl(served.gateway, GET_TICKERS, *args, key=served.read_key, target="sim")


async def test_buf_curl_reads_every_price_through_the_gateway_with_a_read_key(served: Served) -> None:
    async def all_priced() -> list[dict[str, Any]] | None:
        result = await _web_tickers(served)
        assert result.returncode == 0, result.stderr
        tickers = json.loads(result.stdout).get("tickers", [])
        return tickers if [t["symbol"] for t in tickers] == SYMBOLS else None

    tickers = await until(all_priced, 30, 0.5, "a ticker of each of the sim's symbols")
    _check_prices([t["ticker"] for t in tickers], "bestBid", "bestAsk", "lastPrice")
    assert all(int(t["tsEventNs"]) > 0 for t in tickers)

    one = await _web_tickers(served, {"symbols": ["ETH/USDT"]})
    assert one.returncode == 0, one.stderr
    assert [t["symbol"] for t in json.loads(one.stdout)["tickers"]] == ["ETH/USDT"]


async def test_an_unknown_symbol_is_invalid_argument_naming_its_place(served: Served) -> None:
    result = await _web_tickers(served, {"symbols": ["BTC/USDT", "DOGE/USDT"]})
    assert result.returncode == INVALID_ARGUMENT_EXIT, (result.returncode, result.stdout, result.stderr)
    error = json.loads(result.stdout or result.stderr)
    assert error["code"] == "invalid_argument"
    [detail] = error["details"]
    assert detail["type"] == "google.rpc.BadRequest"
    value = base64.b64decode(detail["value"] + "=" * (-len(detail["value"]) % 4))
    violations = error_details_pb2.BadRequest.FromString(value).field_violations
    assert [v.field for v in violations] == ["symbols[1]"]
    assert "DOGE/USDT" in violations[0].description


async def test_a_key_without_read_is_permission_denied(served: Served) -> None:
    result = await buf_curl(served.gateway, GET_TICKERS, key=served.trade_key, target="sim")
    assert result.returncode == PERMISSION_DENIED_EXIT, (result.returncode, result.stdout, result.stderr)
    error = json.loads(result.stdout or result.stderr)
    assert error["code"] == "permission_denied"
    assert f"{GET_TICKERS} needs the 'read' scope" in error["message"]


async def test_native_grpc_at_the_venue_by_reflection(served: Served) -> None:
    if not BUF.exists():
        pytest.fail(f"{BUF} is missing: `./dev test` installs it (npm package @bufbuild/buf)")
    url = f"http://{served.sim.address}/"
    command = [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge"]
    command += ["-H", f"{MESH_AUTH[0][0]}: {MESH_AUTH[0][1]}"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=60, check=False)

    listed = await asyncio.to_thread(run, "--list-methods", url)
    assert GET_TICKERS in listed.stdout.split(), listed.stderr
    native = await asyncio.to_thread(
        run, "-d", '{"symbols": ["SOL/USDT", "BTC/USDT"]}', f"{url}{GET_TICKERS}"
    )
    assert native.returncode == 0, native.stderr
    tickers = json.loads(native.stdout)["tickers"]
    assert [t["symbol"] for t in tickers] == ["BTC/USDT", "SOL/USDT"]  # the venue's order
    _check_prices([t["ticker"] for t in tickers], "bestBid", "bestAsk", "lastPrice")


@contextlib.asynccontextmanager
async def mcp_client(gateway: Gateway, key: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=CALL_TIMEOUT_S * 3) as http,
        Client(streamable_http_client(f"{gateway.url}/mcp", http_client=http)) as client,
    ):
        yield client


async def test_the_mcp_tool_market_prices_gives_every_last_bid_and_ask(served: Served) -> None:
    async with mcp_client(served.gateway, served.read_key) as client:
        listed = await client.list_tools()
        tool = next(t for t in listed.tools if t.name == "market_prices")
        assert tool.annotations is not None and tool.annotations.read_only_hint

        async def all_priced() -> dict[str, Any] | None:
            result = await client.call_tool("market_prices", {"venue": "sim"})
            assert not result.is_error, result.content
            found = result.structured_content
            assert found is not None
            return found if [p["symbol"] for p in found["prices"]] == SYMBOLS else None

        found = await until(all_priced, 30, 0.5, "market_prices of each of the sim's symbols")
        assert found["venue"] == "sim"
        _check_prices(found["prices"], "bid", "ask", "last")
        for price in found["prices"]:
            assert price["time"].endswith("Z") and price["ts_event_ns"] > 0
            _exact(price["bid_size"]), _exact(price["ask_size"])
            _exact(price["open_24h"])  # the sim's price 24 h ago: its first trade's, within a day

        some = await client.call_tool("market_prices", {"venue": "sim", "symbols": ["SOL/USDT"]})
        assert not some.is_error, some.content
        assert some.structured_content is not None
        assert [p["symbol"] for p in some.structured_content["prices"]] == ["SOL/USDT"]

        async def refusal(arguments: dict[str, Any]) -> str:
            result = await client.call_tool("market_prices", arguments)
            assert result.is_error, result.content
            text = "".join(getattr(part, "text", "") for part in result.content)
            assert len(text) < 500, text
            return text

        malformed = await refusal({"venue": "sim", "symbols": ["BTC/USDT", "BTCUSDT"]})
        assert "invalid argument" in malformed and "symbols[1]" in malformed and "'BTCUSDT'" in malformed
        unknown = await refusal({"venue": "sim", "symbols": ["DOGE/USDT"]})
        assert "invalid argument" in unknown and "symbols[0]" in unknown and "DOGE/USDT" in unknown
        nowhere = await refusal({"venue": "nowhere"})
        assert "'nowhere' is not a live venue" in nowhere and "live venues: sim" in nowhere
        many = await refusal({"venue": "sim", "symbols": ["BTC/USDT"] * 1001})
        assert "symbols" in many and "at most 1000" in many
