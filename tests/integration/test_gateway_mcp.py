"""MCP tools at /mcp (trademesh.gateway.mcp) over a real mesh: an MCP client over streamable HTTP calls them.

Real processes (a sim venue, ingest, recorder, bars, bridge), real Redis and PostgreSQL, a real
API key made with `trademesh keys create` and checked by the gateway's GatewayAuth. The MCP app
is served in-process by uvicorn, as the gateway serves it; until the app registry is wired in,
a fixed table of addresses stands in for the Resolver.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx2
import pytest
import uvicorn
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.types import CallToolResult
from starlette.applications import Starlette
from starlette.routing import Route

from tests.forked_services import run_command
from tests.integration.gateway_support import both, run_at_once
from tests.integration.mesh import WARM_HISTORY_S, MeshProcesses, redis_db, venue_link
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import (
    CALL_TIMEOUT_S,
    TEST_TOKEN,
    Venue,
    best_prices,
    limit_order,
    start_venue,
    stop_venue,
    until,
)
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.config.env import DATABASE_URL, TOKEN
from trademesh.core.platform.errors import FailedPrecondition, NotFound
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.gateway.auth.authenticator import GatewayAuth
from trademesh.gateway.mcp import GatewayMcp
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)
__all__ = ["database_url", "redis_url"]  # fixtures, for pytest

ADMIN = "trademesh.admin.v1.Admin"
MARKETDATA = "trademesh.marketdata.v1.MarketData"
TRADEFLOW = "trademesh.tradeflow.v1.TradeFlow"
LIVEDATA = "trademesh.livedata.v1.LiveData"
PATCH = "trademesh.patch.v1.Patch"
EXAMPLE_PATCHES = {
    "trend/sim/BTC/USDT",
    "trend/sim/ETH/USDT",
    "mean_reversion/sim/BTC/USDT",
    "order_flow/sim/BTC/USDT",
}
TOOLS = {
    "list_venues",
    "venue_status",
    "instruments",
    "market_prices",
    "latest_bars",
    "gap_markers",
    "recent_signals",
    "list_strategies",
    "strategy_status",
    "pause_strategy",
    "resume_strategy",
    "regimes",
    "screen",
    "supervisor_state",
    "supervisor_decide",
    "order_book_top",
    "open_orders",
    "positions",
    "leverage",
    "balances",
    "account",
    "advisor_decide",
    "advisor_decision",
    "advisor_decisions",
    "advisor_watch",
    "advisor_calibration",
    "advisor_model",
    "inspector_state",
    "inspector_positions",
    "inspector_events",
    "inspector_audit",
    "inspector_policies",
    "inspector_resume",
    "set_capital",
    "tighten_policy",
    "close_all",
    "ledger_balances",
    "ledger_transfers",
    "ledger_pnl",
    "ledger_verify",
    "ledger_trace",
    "backtest_strategies",
    "backtest_start",
    "backtest_progress",
    "backtest_runs",
    "backtest_result",
    "logs_tail",
    "history_coverage",
}
# The tools that act, each for a key holding its scope (close_all: tests/integration/
# test_inspector_gateway.py; backtest_start: test_backtester_gateway.py; pause_strategy,
# resume_strategy, inspector_resume: test_telegram.py; set_capital, tighten_policy,
# supervisor_decide: test_supervisor.py): the others only read.
ACTING = {
    "close_all",
    "backtest_start",
    "pause_strategy",
    "resume_strategy",
    "inspector_resume",
    "set_capital",
    "tighten_policy",
    "supervisor_decide",
}


class Addresses:
    """A Resolver over a table {service: {instance: host:port}}, as the registry answers."""

    def __init__(self) -> None:
        self.table: dict[str, dict[str, str]] = {}

    def add(self, name: str, address: str, *services: str) -> None:
        for service in services:
            self.table.setdefault(service, {})[name] = address

    def remove(self, name: str) -> None:
        for instances in self.table.values():
            instances.pop(name, None)

    def resolve(self, service: str, target: str | None) -> str:
        instances = self.table.get(service, {})
        if target is not None and target in instances:
            return instances[target]
        if target is None and len(instances) == 1:
            return next(iter(instances.values()))
        if target is None and instances:
            raise FailedPrecondition(f"several instances serve {service}: name one")
        raise NotFound(f"no live instance {target!r} serves {service}")

    def names(self, service: str) -> list[str]:
        return sorted(self.table.get(service, {}))


@dataclass
class Mesh:
    venue: Venue
    resolver: Addresses
    auth: GatewayAuth
    key: str
    url: str


def _closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def serving(gateway_mcp: GatewayMcp) -> AsyncIterator[str]:
    """The MCP app mounted at /mcp of a Starlette app on uvicorn, as the gateway mounts it."""

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        async with gateway_mcp.lifespan():
            yield

    route = Route("/mcp", gateway_mcp.asgi(), methods=["POST"])
    app = Starlette(routes=[route], lifespan=lifespan)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    task = asyncio.create_task(server.serve())

    async def started() -> bool | None:
        assert not task.done(), "uvicorn stopped"
        return True if server.started else None

    await until(started, CALL_TIMEOUT_S, what="uvicorn serving")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.should_exit = True
        await task


async def create_key(database: str, name: str) -> str:
    """`trademesh keys create NAME`: the key is the one line it prints on stdout."""
    return await asyncio.to_thread(_new_key, database, name)


def _new_key(database: str, name: str) -> str:
    """create_key's work, blocking: a key of the CLI's default scope."""
    done = run_command(["keys", "create", name], {**os.environ, DATABASE_URL: database}, timeout_s=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, database_url: str
) -> AsyncIterator[Mesh]:
    directory = tmp_path_factory.mktemp("mcp")
    async with contextlib.AsyncExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        patch.setenv(TOKEN, TEST_TOKEN)  # the mesh token the gateway adds to its calls
        database = await stack.enter_async_context(new_database(database_url, "mcp"))
        venue = await stack.enter_async_context(_venue(directory))
        processes = MeshProcesses(directory, await stack.enter_async_context(redis_db(redis_url)), database)
        stack.push_async_callback(processes.stop_all)

        def service(name: str) -> Callable[[], ServiceProcess]:
            return lambda: processes.start(name, *venue_link(name, venue.address))

        # The services at once, and the key made (its CLI's start) meanwhile.
        key, (*_, detector, bridge) = await both(
            lambda: _new_key(database, "mcp-agent"),
            lambda: run_at_once(
                *(service(name) for name in ("ingest", "recorder", "bars", "detector", "bridge"))
            ),
        )
        auth = await GatewayAuth.open(database, b"mcp-test-session-secret-0123456789")
        stack.push_async_callback(auth.close)
        resolver = Addresses()
        resolver.add("sim", venue.address, ADMIN, MARKETDATA, TRADEFLOW)
        resolver.add("bridge", bridge.address, LIVEDATA)
        resolver.add("detector", detector.address, PATCH)
        url = await stack.enter_async_context(serving(GatewayMcp(resolver, auth, database)))
        yield Mesh(venue, resolver, auth, key, url)


@contextlib.asynccontextmanager
async def _venue(directory: Path) -> AsyncIterator[Venue]:
    # A minute of candles: the detector's examples warm from GetCandles at once.
    venue, log_file = start_venue(directory, f"history_s = {WARM_HISTORY_S}\n", "sim")
    try:
        yield venue
    finally:
        await stop_venue(venue, log_file)


@contextlib.asynccontextmanager
async def connected(url: str, key: str) -> AsyncIterator[Client]:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30) as http,
        Client(streamable_http_client(url, http_client=http)) as client,
    ):
        yield client


async def call(mesh: Mesh, tool: str, **arguments: Any) -> CallToolResult:
    """One tool call from a client of its own (an MCP client lives in one task; tests and fixtures
    run in several)."""
    async with connected(mesh.url, mesh.key) as client:
        return await client.call_tool(tool, arguments)


async def answer(mesh: Mesh, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await call(mesh, tool, **arguments)
    assert not result.is_error, result.content
    found: dict[str, Any] | None = result.structured_content
    assert found is not None
    return found


async def refusal(mesh: Mesh, tool: str, **arguments: Any) -> str:
    """The text of a tool error (an is_error result, not a crash of the call)."""
    result = await call(mesh, tool, **arguments)
    assert result.is_error, result.structured_content
    text: str = getattr(result.content[0], "text", "")
    assert not text.endswith(f"Error executing tool {tool}"), "a crash, not a tool error"
    return text


def assert_decimal(text: Any) -> Decimal:
    assert isinstance(text, str), f"{text!r} is not a decimal string"
    return Decimal(text)


async def test_the_tools_listed_are_the_read_only_ones_and_close_all(mesh: Mesh) -> None:
    async with connected(mesh.url, mesh.key) as client:
        listed = await client.list_tools()
    assert {tool.name for tool in listed.tools} == TOOLS
    documented = (Path(__file__).parents[2] / "docs" / "gateway.md").read_text()
    assert [t for t in sorted(TOOLS) if f"| `{t}` |" not in documented] == []  # docs/gateway.md's table
    for tool in listed.tools:
        assert tool.annotations is not None, tool.name
        assert tool.annotations.read_only_hint is (tool.name not in ACTING), tool.name
        assert tool.description and "\n    " not in tool.description, tool.name
    bars = next(tool for tool in listed.tools if tool.name == "latest_bars")
    timeframe = bars.input_schema["properties"]["timeframe"]
    assert timeframe["enum"] == ["1s", "1m", "5m", "15m", "1h", "4h", "1d", "1w"]


async def test_instruments_are_the_venues_own(mesh: Mesh) -> None:
    got = await answer(mesh, "instruments", venue="sim")
    stubs = mesh.venue.stubs()
    listed = await stubs.md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
    assert {i["symbol"] for i in got["instruments"]} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    by_symbol = {i["symbol"]: i for i in got["instruments"]}
    for instrument in listed.instruments:
        mine = by_symbol[instrument.symbol]
        assert (mine["tick_size"], mine["lot_size"], mine["kind"]) == (
            instrument.tick_size,
            instrument.lot_size,
            "spot",
        )


async def test_venue_status_says_the_sim_is_running_and_connected(mesh: Mesh) -> None:
    assert await answer(mesh, "list_venues") == {"venues": ["sim"]}
    status = await answer(mesh, "venue_status", venue="sim")
    assert status["venue"] == "sim" and status["state"] == "running"
    # What it can do beyond the contract's core: stops held, amendments in place, a pushed account.
    assert (status["stop_orders"], status["amend"], status["account_feed"]) == (True, "native", "push")
    assert status["streams"] and {s["state"] for s in status["streams"]} == {"connected"}
    trades = [s for s in status["streams"] if s["channel"] == "trades"]
    assert {s["symbol"] for s in trades} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    assert all(s["events_total"] > 0 and s["last_event_age_ms"] is not None for s in trades)
    every = await answer(mesh, "venue_status")
    assert [v["venue"] for v in every["venues"]] == ["sim"]


@pytest.fixture(scope="module")
async def recorded(mesh: Mesh) -> dict[str, Any]:
    """latest_bars of BTC/USDT at 1s once the mesh has recorded three such bars."""

    async def three_bars() -> dict[str, Any] | None:
        arguments = {"venue": "sim", "symbol": "BTC/USDT", "timeframe": "1s"}
        result = await call(mesh, "latest_bars", **arguments)
        if result.is_error or result.structured_content is None:
            return None  # the recorder has not written a bar yet
        found: dict[str, Any] = result.structured_content
        return found if len(found["bars"]) >= 3 else None

    return await until(three_bars, 90, 0.5, "three 1s bars of BTC/USDT recorded")


async def test_latest_bars_come_from_the_recorder_with_decimal_string_prices(
    mesh: Mesh, recorded: dict[str, Any]
) -> None:
    got = recorded
    assert (got["venue"], got["symbol"], got["timeframe"]) == ("sim", "BTC/USDT", "1s")
    times = [bar["open_time_ns"] for bar in got["bars"]]
    assert times == sorted(times) and len(set(times)) == len(times)
    assert all(t % 1_000_000_000 == 0 for t in times)
    for bar in got["bars"]:
        low, high = assert_decimal(bar["low"]), assert_decimal(bar["high"])
        assert low <= assert_decimal(bar["open"]) <= high and low <= assert_decimal(bar["close"]) <= high
        assert assert_decimal(bar["volume"]) > 0 and bar["trade_count"] > 0
        assert bar["open_time"].endswith("Z")
    limited = await answer(mesh, "latest_bars", venue="sim", symbol="BTC/USDT", timeframe="1s", limit=2)
    assert len(limited["bars"]) == 2 and limited["bars"][-1]["open_time_ns"] >= times[-1]


async def test_recent_signals_come_from_the_recorder_with_each_rules_attribution(mesh: Mesh) -> None:
    """The detector runs the example strategies on the sim; its signals reach the recorder."""

    async def some() -> dict[str, Any] | None:
        result = await call(mesh, "recent_signals")
        if result.is_error or result.structured_content is None:
            return None  # the recorder has not made its signals table yet
        found: dict[str, Any] = result.structured_content
        return found if found["signals"] else None

    got = await until(some, 120, 0.5, "a signal recorded")
    times = [s["ts_signal_ns"] for s in got["signals"]]
    assert times == sorted(times, reverse=True), "newest first"
    first = got["signals"][0]
    assert first["strategy"] in {"trend", "mean_reversion", "order_flow"} and first["venue"] == "sim"
    assert first["direction"] in {"long", "short", "flat"}
    assert 0 <= assert_decimal(first["conviction"]) <= 1
    fired = sum(assert_decimal(rule["weight"]) for rule in first["rules"] if rule["fired"])
    assert fired == assert_decimal(first["score"]) >= assert_decimal(first["threshold"])
    only = await answer(mesh, "recent_signals", strategy=first["strategy"], limit=1)
    assert [s["strategy"] for s in only["signals"]] == [first["strategy"]]
    none = await answer(mesh, "recent_signals", strategy="no_such_strategy")
    assert none["signals"] == []
    refused = await refusal(mesh, "recent_signals", strategy="Trend!" + "x" * 5000)
    assert "strategy" in refused and len(refused) < 300


async def test_strategies_are_listed_per_detector_with_their_live_status(mesh: Mesh) -> None:
    async def all_active() -> dict[str, Any] | None:
        listed = await answer(mesh, "list_strategies")
        [detector] = listed["detectors"]
        states = {p["patch"]: p["state"] for p in detector.get("patches", [])}
        return detector if states == dict.fromkeys(EXAMPLE_PATCHES, "active") else None

    detector = await until(all_active, 90, 0.5, "the example patches active")
    assert detector["detector"] == "detector"
    trend = next(p for p in detector["patches"] if p["patch"] == "trend/sim/BTC/USDT")
    assert trend["markets"] == ["sim:BTC/USDT"] and trend["version"] > 0
    status = await answer(mesh, "strategy_status", patch="trend/sim/BTC/USDT")
    [one] = status["strategies"]
    assert (one["patch"], one["state"], one["warm"]) == ("trend/sim/BTC/USDT", "active", True)
    assert one["version"] == trend["version"] and one["errors"] == []
    every = await answer(mesh, "strategy_status")
    assert {s["patch"] for s in every["strategies"]} == EXAMPLE_PATCHES
    unknown = await refusal(mesh, "strategy_status", patch="nothing/here")
    assert "no detector runs a patch 'nothing/here'" in unknown
    long = await refusal(mesh, "strategy_status", patch="x" * 10_000)
    assert "patch" in long and len(long) < 300


async def test_order_book_top_has_bids_below_asks(mesh: Mesh) -> None:
    async def book() -> dict[str, Any] | None:
        result = await call(mesh, "order_book_top", venue="sim", symbol="ETH/USDT", depth=3)
        return None if result.is_error else result.structured_content

    got = await until(book, 30, 0.5, "the bridge's book of ETH/USDT")
    bids = [assert_decimal(level["price"]) for level in got["bids"]]
    asks = [assert_decimal(level["price"]) for level in got["asks"]]
    assert len(bids) == 3 and len(asks) == 3
    assert bids == sorted(bids, reverse=True) and asks == sorted(asks)
    assert bids[0] < asks[0]
    assert assert_decimal(got["spread"]) == asks[0] - bids[0]
    assert all(assert_decimal(level["size"]) > 0 for level in got["bids"] + got["asks"])


async def test_open_orders_and_positions_show_the_venues_state(mesh: Mesh) -> None:
    stubs = mesh.venue.stubs()
    bid, _ = await best_prices(stubs, "SOL/USDT")
    price = str((bid / 2).quantize(Decimal("0.001")))
    placed = await stubs.tf.PlaceOrder(
        limit_order("SOL/USDT", common.SIDE_BUY, "1", price), timeout=CALL_TIMEOUT_S
    )
    try:
        got = await answer(mesh, "open_orders", venue="sim", symbol="SOL/USDT")
        (order,) = [o for o in got["orders"] if o["order_id"] == placed.order.order_id]
        assert (order["side"], order["type"], order["status"]) == ("buy", "limit", "open")
        assert order["price"] == placed.order.price and order["size"] == placed.order.size
        other = await answer(mesh, "open_orders", venue="sim", symbol="BTC/USDT")
        assert placed.order.order_id not in {o["order_id"] for o in other["orders"]}
    finally:
        await stubs.tf.CancelOrder(
            tf.CancelOrderRequest(order_id=placed.order.order_id), timeout=CALL_TIMEOUT_S
        )
    after = await answer(mesh, "open_orders", venue="sim")
    assert placed.order.order_id not in {o["order_id"] for o in after["orders"]}
    positions = await answer(mesh, "positions", venue="sim")
    venue_side = await stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
    assert [(p["symbol"], p["size"]) for p in positions["positions"]] == [
        (p.symbol, p.size) for p in venue_side.positions
    ]


async def test_account_is_the_venues_account_stream_snapshot_as_its_read_rpcs_answer(mesh: Mesh) -> None:
    stubs = mesh.venue.stubs()
    bid, _ = await best_prices(stubs, "SOL/USDT")
    price = str((bid / 2).quantize(Decimal("0.001")))
    placed = await stubs.tf.PlaceOrder(
        limit_order("SOL/USDT", common.SIDE_BUY, "1", price), timeout=CALL_TIMEOUT_S
    )
    try:  # an order resting: part of the quote balance locked
        got = await answer(mesh, "account", venue="sim")
        balances = await stubs.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S)
        positions = await stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
    finally:
        await stubs.tf.CancelOrder(
            tf.CancelOrderRequest(order_id=placed.order.order_id), timeout=CALL_TIMEOUT_S
        )
    assert (got["venue"], got["exchange"], got["account"]) == ("sim", "sim", None)
    assert got["balances"] == [
        {
            "asset": b.asset,
            "free": b.free,
            "locked": b.locked,
            "total": b.total,
            "position_margin": b.position_margin or None,  # none for the sim's spot assets
        }
        for b in balances.balances
    ]
    usdt = next(b for b in got["balances"] if b["asset"] == "USDT")
    assert assert_decimal(usdt["locked"]) >= Decimal(price)  # the order's 1 SOL at `price`
    assert assert_decimal(usdt["free"]) + Decimal(usdt["locked"]) == Decimal(usdt["total"])
    assert [(p["symbol"], p["size"]) for p in got["positions"]] == [
        (p.symbol, p.size) for p in positions.positions
    ]
    assert isinstance(got["as_of_ns"], int) and got["as_of_ns"] > 0  # the sim stamps its account


async def test_account_names_an_accounts_venue_and_refuses_bad_input_naming_it(mesh: Mesh) -> None:
    # An account's venue instance (docs/accounts.md) is `<exchange>.<account>`: here the same sim
    # process registered under that name, as a venue started with --account registers.
    mesh.resolver.add("sim.desk-a", mesh.venue.address, TRADEFLOW)
    try:
        got = await answer(mesh, "account", venue="sim", account="desk-a")
        same = await answer(mesh, "account", venue="sim.desk-a")
    finally:
        mesh.resolver.remove("sim.desk-a")
    assert (got["venue"], got["exchange"], got["account"]) == ("sim.desk-a", "sim", "desk-a")
    assert (same["venue"], same["account"]) == ("sim.desk-a", "desk-a")
    assert got["balances"] and {b["asset"] for b in got["balances"]} == {b["asset"] for b in same["balances"]}
    bad = await refusal(mesh, "account", venue="sim", account="Desk_A")
    assert "invalid argument" in bad and "account" in bad and "'Desk_A' is not an account name" in bad
    twice = await refusal(mesh, "account", venue="sim.desk-a", account="desk-b")
    assert "'desk-b' given, but the venue 'sim.desk-a' names its account already" in twice
    gone = await refusal(mesh, "account", venue="sim", account="desk-z")
    assert "'sim.desk-z' is not a live venue" in gone and "live venues: sim" in gone
    assert "'nowhere'" in await refusal(mesh, "account", venue="nowhere")
    long = await refusal(mesh, "account", venue="sim", account="a" * 100_000)
    assert "is not an account name" in long and len(long) < 400, len(long)


async def test_bad_input_is_a_tool_error_naming_the_value(mesh: Mesh, recorded: dict[str, Any]) -> None:
    assert "'nowhere'" in await refusal(mesh, "instruments", venue="nowhere")
    assert "'nowhere'" in await refusal(mesh, "venue_status", venue="nowhere")
    assert "'BTCUSDT'" in await refusal(mesh, "order_book_top", venue="sim", symbol="BTCUSDT")
    assert "'DOGE/USDT'" in await refusal(mesh, "order_book_top", venue="sim", symbol="DOGE/USDT")
    assert "'DOGE/USDT'" in await refusal(mesh, "open_orders", venue="sim", symbol="DOGE/USDT")
    assert "'7m'" in await refusal(mesh, "latest_bars", venue="sim", symbol="BTC/USDT", timeframe="7m")
    limit = await refusal(mesh, "latest_bars", venue="sim", symbol="BTC/USDT", limit=5000)
    assert "limit" in limit and "5000" in limit
    depth = await refusal(mesh, "order_book_top", venue="sim", symbol="BTC/USDT", depth=0)
    assert "depth" in depth and "0 is out of range" in depth
    assert "'nowhere'" in await refusal(mesh, "latest_bars", venue="nowhere", symbol="BTC/USDT")
    assert "'XYZ/USDT'" in await refusal(mesh, "latest_bars", venue="sim", symbol="XYZ/USDT")


@pytest.mark.parametrize("venue", ["si\x00m", "x" * 100_000, "Sim", ""])
async def test_latest_bars_refuses_a_venue_that_cannot_be_one_without_echoing_it(
    mesh: Mesh, venue: str
) -> None:
    """A NUL was "PostgreSQL unavailable" and 100k characters came back whole: the name is
    checked as the bus names venues, before the database is asked."""
    text = await refusal(mesh, "latest_bars", venue=venue, symbol="BTC/USDT")
    assert "venue" in text and "is not a venue name" in text, text
    assert "unavailable" not in text
    assert len(text) < 300, len(text)


async def test_an_upstream_that_is_down_is_named_in_the_error(mesh: Mesh) -> None:
    dead = f"127.0.0.1:{_closed_port()}"
    mesh.resolver.add("gone", dead, ADMIN, MARKETDATA, TRADEFLOW)
    try:
        text = await refusal(mesh, "positions", venue="gone")
        assert f"{TRADEFLOW} of 'gone' at {dead} is unavailable" in text
        every = await answer(mesh, "venue_status")
        states = {v["venue"]: v.get("state", v.get("error")) for v in every["venues"]}
        assert states["sim"] == "running" and f"{ADMIN} of 'gone'" in states["gone"]
    finally:
        mesh.resolver.remove("gone")
    bridge = mesh.resolver.table[LIVEDATA]["bridge"]
    mesh.resolver.table[LIVEDATA]["bridge"] = dead
    try:
        text = await refusal(mesh, "order_book_top", venue="sim", symbol="BTC/USDT")
        assert f"{LIVEDATA} at {dead} is unavailable" in text
    finally:
        mesh.resolver.table[LIVEDATA]["bridge"] = bridge


async def test_the_supervisors_tools_say_when_no_supervisor_is_registered(mesh: Mesh) -> None:
    supervisor = "trademesh.supervisor.v1.Supervisor"
    assert supervisor not in mesh.resolver.table
    text = await refusal(mesh, "supervisor_state")
    assert "not found: " in text and f"serves {supervisor}" in text, text
    # The key (read) is refused a decision before the Supervisor is looked for.
    decided = await refusal(mesh, "supervisor_decide", proposal_id="p1", decision="approve", reason="go")
    assert "permission denied: " in decided and "needs the 'trade' scope" in decided, decided


async def test_a_database_without_the_recorders_tables_says_so(mesh: Mesh, database_url: str) -> None:
    async with (
        new_database(database_url, "mcp") as empty,
        serving(GatewayMcp(mesh.resolver, mesh.auth, empty)) as url,
    ):
        elsewhere = Mesh(mesh.venue, mesh.resolver, mesh.auth, mesh.key, url)
        text = await refusal(elsewhere, "latest_bars", venue="sim", symbol="BTC/USDT")
    assert "failed precondition: the database has no bars table yet" in text


async def test_a_mesh_token_the_venue_refuses_is_an_operators_error(mesh: Mesh) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(TOKEN, "not-the-mesh-token")
        text = await refusal(mesh, "instruments", venue="sim")
    assert (
        f"{MARKETDATA} of 'sim'" in text and "refused the gateway's mesh token: check TRADEMESH_TOKEN" in text
    )
    assert "not-the-mesh-token" not in text


async def test_a_database_that_is_down_is_named_without_its_password(mesh: Mesh) -> None:
    url = f"postgresql://postgres:hunter2@127.0.0.1:{_closed_port()}/trademesh"
    async with serving(GatewayMcp(mesh.resolver, mesh.auth, url)) as mcp_url:
        elsewhere = Mesh(mesh.venue, mesh.resolver, mesh.auth, mesh.key, mcp_url)
        text = await refusal(elsewhere, "latest_bars", venue="sim", symbol="BTC/USDT")
        assert "PostgreSQL at postgresql://postgres:***@127.0.0.1" in text and "unavailable" in text
        assert "hunter2" not in text


async def test_no_or_an_unknown_token_is_refused(mesh: Mesh) -> None:
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
    async with httpx2.AsyncClient() as http:
        for authorization in (None, "Bearer not-a-key", f"Bearer tmk_{'0' * 43}", f"Basic {mesh.key}"):
            sent = headers if authorization is None else {**headers, "Authorization": authorization}
            response = await http.post(mesh.url, json=listing, headers=sent)
            assert response.status_code == 401, authorization
            body = response.json()
            assert body["error"]["message"] and mesh.key not in response.text
            assert response.headers["www-authenticate"].startswith("Bearer")
        allowed = await http.post(
            mesh.url, json=listing, headers={**headers, "Authorization": f"Bearer {mesh.key}"}
        )
        assert allowed.status_code == 200, allowed.text
        assert {tool["name"] for tool in allowed.json()["result"]["tools"]} == TOOLS


async def test_a_plain_json_rpc_post_calls_a_tool(mesh: Mesh) -> None:
    """What docs/gateway.md shows with curl: one POST, no MCP session, a JSON answer."""
    book = {"name": "order_book_top", "arguments": {"venue": "sim", "symbol": "BTC/USDT", "depth": 1}}
    headers = {
        "Authorization": f"Bearer {mesh.key}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    async with httpx2.AsyncClient() as http:
        response = await http.post(
            mesh.url,
            json={"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": book},
            headers=headers,
        )
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    result = response.json()["result"]
    assert result["isError"] is False, result
    top = result["structuredContent"]
    assert Decimal(top["bids"][0]["price"]) < Decimal(top["asks"][0]["price"])
    with pytest.raises(ExceptionGroup) as refused:
        async with connected(mesh.url, "not-a-key") as client:
            await client.list_tools()
    assert refused.group_contains(MCPError, match="invalid bearer token")


@pytest.mark.parametrize("depth", [100, 3000])
async def test_a_request_nested_past_the_bound_is_a_json_rpc_400_before_any_tool(
    mesh: Mesh, depth: int
) -> None:
    # 100 deep passed the MCP library's own bound and reached the tool; 3,000 deep, a parse error.
    nested = "[" * depth + "]" * depth
    body = (
        '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", '
        f'"params": {{"name": "venue_status", "arguments": {{"venue": {nested}}}}}}}'
    )
    headers = {
        "Authorization": f"Bearer {mesh.key}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    async with httpx2.AsyncClient(timeout=30) as http:
        answer = await http.post(mesh.url, content=body, headers=headers)
    assert answer.status_code == 400, answer.text[:300]
    assert answer.json()["error"]["message"] == "request body nested deeper than 64 levels"
