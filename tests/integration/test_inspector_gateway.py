"""Inspector through the gateway, as real processes (gateway, sim venue, inspector, Redis,
PostgreSQL): reachable by buf curl (server reflection on its native port; gRPC-web through the
gateway) and by raw gRPC-web; SubmitIntent with a trade key places an order at the sim, a read
key is refused; SetMode CLOSE_ALL needs the `close_all` scope, trade is not enough; the MCP
tools answer with the numbers of the order placed, and close_all is refused or done by the
key's permission; bad input is INVALID_ARGUMENT with field violations. One mesh for the
module; the tests run in order (close all halts the inspector: it comes last)."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import grpc
import httpx2
import pytest
from google.rpc import error_details_pb2, status_pb2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.integration.gateway_support import (
    BUF,
    Gateway,
    Processes,
    WebAnswer,
    buf_curl,
    create_key,
    grpcweb_call,
    open_stream,
)
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, Venue, best_prices, until
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)
__all__ = ["database_url", "redis_url"]  # fixtures

INSPECTOR = "trademesh.risk.v1.Inspector"
TARGET = {"x-trademesh-target": "inspector"}
OK = grpc.StatusCode.OK.value[0]
DENIED = grpc.StatusCode.PERMISSION_DENIED.value[0]
INVALID = grpc.StatusCode.INVALID_ARGUMENT.value[0]
# buf exits with the gRPC code shifted left by three bits when the RPC itself fails.
NOT_FOUND_EXIT = 5 << 3
UNAUTHENTICATED_EXIT = 16 << 3
SYMBOL = "BTC/USDT"
INSPECTOR_TOOLS = {
    "inspector_state",
    "inspector_positions",
    "inspector_events",
    "inspector_audit",
    "inspector_policies",
    "close_all",
}


@dataclass
class Mesh:
    processes: Processes
    gateway: Gateway
    sim: Venue
    inspector: ServiceProcess
    reader: str
    trader: str
    closer: str


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> AsyncIterator[Mesh]:
    directory = tmp_path_factory.mktemp("inspector-gw")
    async with new_database(database_url, "inspgw") as database, redis_db(redis_url) as bus_url:
        processes = Processes(directory, database)
        try:
            gateway = processes.gateway()
            sim = processes.sim(gateway)
            inspector = processes.mesh_service(
                gateway, "inspector", "--venue", f"sim={sim.address}", "--reconcile-every-s", "2",
                "--executions", "venue",  # no ingest in this mesh: executions straight from the sim
                redis_url=bus_url,
            )  # fmt: skip
            reader = await create_key(database, "risk-reader", ["read"])
            trader = await create_key(database, "risk-trader", ["read", "trade"])
            # The emergency button alone (and read, which MCP needs): it can never open a position.
            closer = await create_key(database, "risk-closer", ["read", "close_all"])
            venue = Venue(sim, directory / "sim-0.log")
            mesh = Mesh(processes, gateway, venue, inspector, reader, trader, closer)
            await until(
                lambda: _reachable(mesh), 60, interval_s=0.5, what="the inspector through the gateway"
            )
            yield mesh
            await venue.close_channels()
        finally:
            await processes.stop_all()


async def _reachable(mesh: Mesh) -> bool | None:
    """Registered with the gateway, its venue followed, and every key in the gateway's cache."""
    for key in (mesh.reader, mesh.trader, mesh.closer):
        answer = await _web(mesh, "GetRiskState", rk.GetRiskStateRequest(), key)
        if answer.code != OK:
            return None
    return True


async def _web(mesh: Mesh, method: str, request: Any, key: str) -> WebAnswer:
    return await grpcweb_call(
        mesh.gateway, f"{INSPECTOR}/{method}", request.SerializeToString(), key=key, headers=TARGET
    )


def _violations(answer: WebAnswer) -> dict[str, str]:
    """The field violations of a gRPC-web error's grpc-status-details-bin."""
    raw = answer.trailers.get("grpc-status-details-bin") or answer.headers.get("grpc-status-details-bin", "")
    status = status_pb2.Status.FromString(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    found: dict[str, str] = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found |= {v.field: v.description for v in bad.field_violations}
    return found


async def _intent(mesh: Mesh, size: str = "0.01") -> am.Intent:
    """A market buy of BTC/USDT with a stop-loss 2% under the ask and a take-profit 2% over."""
    _, ask = await best_prices(mesh.sim.stubs(), SYMBOL)
    return am.Intent(
        venue="sim", symbol=SYMBOL, side=common.SIDE_BUY, size=size, entry_type=tf.ORDER_TYPE_MARKET,
        entry_price=str(ask), stop_loss=str((ask * Decimal("0.98")).quantize(Decimal(1))),
        take_profit=str((ask * Decimal("1.02")).quantize(Decimal(1))),
    )  # fmt: skip


def _native_buf(address: str, *args: str) -> subprocess.CompletedProcess[str]:
    """buf curl over native gRPC, the schema by server reflection alone."""
    command = [str(BUF), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--timeout", "20s"]
    command += ["-H", f"Authorization: Bearer {TEST_TOKEN}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


async def test_buf_curl_finds_the_inspector_by_reflection_and_through_the_gateway(mesh: Mesh) -> None:
    listed = await asyncio.to_thread(
        _native_buf, mesh.inspector.address, "--list-methods", f"http://{mesh.inspector.address}"
    )
    assert listed.returncode == 0, listed.stderr
    assert {f"{INSPECTOR}/{m}" for m in ("SubmitIntent", "SetMode", "GetRiskState", "ListPositions")} <= set(
        listed.stdout.split()
    )
    native = await asyncio.to_thread(
        _native_buf, mesh.inspector.address, f"http://{mesh.inspector.address}/{INSPECTOR}/GetRiskState"
    )
    assert native.returncode == 0, native.stderr
    assert json.loads(native.stdout)["state"] == "RISK_STATE_ACTIVE"

    # Through the gateway (gRPC-web, the schema of proto/), with a read key.
    state = await buf_curl(mesh.gateway, f"{INSPECTOR}/GetRiskState", key=mesh.reader, target="inspector")
    assert state.returncode == 0, state.stderr
    got = json.loads(state.stdout)
    assert got["state"] == "RISK_STATE_ACTIVE" and Decimal(got["equity"]) == Decimal(100_000)
    positions = await buf_curl(
        mesh.gateway,
        f"{INSPECTOR}/ListPositions",
        "-d",
        '{"venue": "sim"}',
        key=mesh.reader,
        target="inspector",
    )
    assert positions.returncode == 0, positions.stderr
    policies = await buf_curl(mesh.gateway, f"{INSPECTOR}/GetPolicies", key=mesh.reader, target="inspector")
    assert policies.returncode == 0 and "max_notional" in json.loads(policies.stdout)["toml"], policies.stderr


async def test_a_read_key_cannot_submit_and_a_trade_key_places_an_order_at_the_sim(mesh: Mesh) -> None:
    intent = await _intent(mesh)
    refused = await _web(mesh, "SubmitIntent", rk.SubmitIntentRequest(intent=intent), mesh.reader)
    assert refused.code == DENIED, refused.message
    assert "SubmitIntent needs the 'trade' scope" in refused.message and "'risk-reader'" in refused.message

    answer = await _web(mesh, "SubmitIntent", rk.SubmitIntentRequest(intent=intent), mesh.trader)
    assert answer.code == OK, answer.message
    done = rk.SubmitIntentResponse.FromString(answer.messages[0])
    assert done.action == rk.RISK_ACTION_ALLOW, done.reasons
    assert done.client_order_id and done.intent_id.startswith("manual-")
    order = await mesh.sim.stubs().tf.GetOrder(
        tf.GetOrderRequest(client_order_id=done.client_order_id), timeout=CALL_TIMEOUT_S
    )
    assert order.order.client_order_id == done.client_order_id and order.order.side == common.SIDE_BUY
    assert Decimal(order.order.size) == Decimal("0.01")

    async def protected() -> rk.PositionView | None:
        reply = await _web(mesh, "ListPositions", rk.ListPositionsRequest(venue="sim"), mesh.reader)
        views = rk.ListPositionsResponse.FromString(reply.messages[0]).positions if reply.code == OK else []
        # The whole order filled (it may fill in parts), protected by both orders.
        found = [v for v in views if v.symbol == SYMBOL and Decimal(v.size) == Decimal("0.01")]
        found = [v for v in found if len(v.protective) == 2]
        return found[0] if found else None

    view = await until(protected, 30, interval_s=0.5, what="the position with its stop-loss and take-profit")
    assert Decimal(view.size) == Decimal("0.01") and not view.legacy
    assert {p.role for p in view.protective} == {"stop_loss", "take_profit"}


async def test_bad_input_is_invalid_argument_with_field_violations_through_the_gateway(mesh: Mesh) -> None:
    bad = am.Intent(
        venue="sim", symbol=SYMBOL, side=common.SIDE_BUY, size="-1", entry_type=tf.ORDER_TYPE_LIMIT
    )
    answer = await _web(mesh, "SubmitIntent", rk.SubmitIntentRequest(intent=bad), mesh.trader)
    assert answer.code == INVALID, answer.message
    assert {"intent.size", "intent.entry_price"} <= set(_violations(answer))
    events = await _web(mesh, "ListRiskEvents", rk.ListRiskEventsRequest(page_size=501), mesh.reader)
    assert events.code == INVALID and "page_size" in _violations(events), events.message
    no_reason = await _web(mesh, "SetMode", rk.SetModeRequest(mode=rk.MODE_STAND_DOWN), mesh.trader)
    assert no_reason.code == INVALID and set(_violations(no_reason)) == {"reason"}, no_reason.message
    audit = await _web(mesh, "GetAudit", rk.GetAuditRequest(limit=5000, venue="Not A Venue"), mesh.reader)
    assert audit.code == INVALID and set(_violations(audit)) >= {"venue"}, audit.message
    # Still serving.
    assert (await _web(mesh, "GetRiskState", rk.GetRiskStateRequest(), mesh.reader)).code == OK


def _connected(mesh: Mesh, key: str) -> Any:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    return http, Client(streamable_http_client(f"{mesh.gateway.url}/mcp", http_client=http))


async def _tool(mesh: Mesh, key: str, name: str, **arguments: Any) -> Any:
    http, client = _connected(mesh, key)
    async with http, client:
        return await client.call_tool(name, arguments)


async def test_the_mcp_tools_show_the_order_with_real_numbers(mesh: Mesh) -> None:
    http, client = _connected(mesh, mesh.reader)
    async with http, client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        state = await client.call_tool("inspector_state", {})
        positions = await client.call_tool("inspector_positions", {"venue": "sim"})
        events = await client.call_tool("inspector_events", {"action": "allow", "limit": 5})
        audit = await client.call_tool("inspector_audit", {"venue": "sim"})
        policies = await client.call_tool("inspector_policies", {})
        bad = await client.call_tool("inspector_events", {"venue": "Not A Venue", "limit": 0})
    assert set(listed) >= INSPECTOR_TOOLS
    for name in INSPECTOR_TOOLS - {"close_all"}:
        annotations = listed[name].annotations
        assert annotations is not None and annotations.read_only_hint, name
    button = listed["close_all"]
    assert button.annotations is not None and button.annotations.destructive_hint
    assert not button.annotations.read_only_hint and button.input_schema["required"] == ["reason"]
    assert "holding the `close_all` permission" in " ".join((button.description or "").split())

    for result in (state, positions, events, audit, policies):
        assert not result.is_error, result.content
    got = state.structured_content or {}
    assert got["state"] == "active" and Decimal(got["gross_exposure"]["value"]) > 0
    assert got["gross_exposure"]["limit"] == "60000" and got["open_orders"]["value"]
    held = [p for p in (positions.structured_content or {})["positions"] if p["symbol"] == SYMBOL]
    assert held and Decimal(held[0]["size"]) == Decimal("0.01") and held[0]["mark"]
    assert {o["role"] for o in held[0]["protective_orders"]} == {"stop_loss", "take_profit"}
    allowed = (events.structured_content or {})["events"]
    assert allowed and allowed[0]["action"] == "allow" and allowed[0]["values"]["notional"]
    orders = (audit.structured_content or {})["orders"]
    entry = next(o for o in orders if o["role"] == "entry")
    assert entry["side"] == "buy" and Decimal(entry["filled_size"]) == Decimal("0.01") and entry["fill_rate"]
    status = {s["key"]: s for s in (policies.structured_content or {})["status"]}
    assert status["orders.max_notional"]["limit"] == "10000"
    text = str(bad.content)
    assert bad.is_error and "invalid argument" in text and "venue" in text and "limit" in text


def _stood_down_then_resumed(actions: list[int]) -> bool:
    if rk.RISK_ACTION_STAND_DOWN not in actions:
        return False
    return rk.RISK_ACTION_RESUME in actions[actions.index(rk.RISK_ACTION_STAND_DOWN) :]


async def test_close_all_is_refused_to_a_trade_key_over_grpcweb_and_mcp(mesh: Mesh) -> None:
    close_all = rk.SetModeRequest(mode=rk.MODE_CLOSE_ALL, reason="test: a trade key tries")
    refused = await _web(mesh, "SetMode", close_all, mesh.trader)
    assert refused.code == DENIED, refused.message
    assert "SetMode with mode MODE_CLOSE_ALL needs the 'close_all' scope" in refused.message
    assert "'risk-trader' has read, trade" in refused.message
    # The same key may stand down and resume: trading, not the emergency button. A read key
    # watches it happen (a server stream over gRPC-web: its headers come with the first event,
    # so the commands go until they do).
    opening = asyncio.create_task(
        open_stream(mesh.gateway, f"{INSPECTOR}/WatchRiskEvents", b"", key=mesh.reader, headers=TARGET)
    )

    async def commanded() -> bool | None:
        for mode in (rk.MODE_STAND_DOWN, rk.MODE_RESUME):
            done = await _web(mesh, "SetMode", rk.SetModeRequest(mode=mode, reason="test"), mesh.trader)
            assert done.code == OK, done.message
        await asyncio.wait({opening}, timeout=0.5)
        return True if opening.done() else None

    await until(commanded, 30, interval_s=0.2, what="the watch stream's first event")
    watch = opening.result()
    await commanded()  # once more, wholly after the stream is open
    seen: list[int] = []
    try:
        while not _stood_down_then_resumed(seen):
            for raw in await watch.messages(1):
                seen += [e.action for e in rk.WatchRiskEventsResponse.FromString(raw).events]
    finally:
        await watch.close()
    # A key with close_all but not trade may not stand down.
    standing = await _web(
        mesh, "SetMode", rk.SetModeRequest(mode=rk.MODE_STAND_DOWN, reason="x"), mesh.closer
    )
    assert standing.code == DENIED and "needs the 'trade' scope" in standing.message

    for key, name in ((mesh.reader, "risk-reader"), (mesh.trader, "risk-trader")):
        result = await _tool(mesh, key, "close_all", reason="test: no permission")
        text = getattr(result.content[0], "text", "")
        assert result.is_error and ": permission denied: " in text, text
        assert "'close_all' scope" in text and f"'{name}'" in text
    missing = await _tool(mesh, mesh.closer, "close_all", reason="  ")
    assert missing.is_error and "reason" in str(missing.content)
    state = (await _web(mesh, "GetRiskState", rk.GetRiskStateRequest(), mesh.reader)).messages[0]
    assert rk.GetRiskStateResponse.FromString(state).state == rk.RISK_STATE_ACTIVE, "nothing closed"


async def test_close_all_by_a_key_with_the_permission_flattens_the_sim(mesh: Mesh) -> None:
    """Over MCP with the close_all key: every order cancelled, the position flattened, HALTED;
    then over gRPC-web with the same key (again: allowed, nothing left to close)."""
    result = await _tool(mesh, mesh.closer, "close_all", reason="test: the emergency button")
    assert not result.is_error, result.content
    answer = result.structured_content or {}
    assert answer["state"] == "halted"
    assert "close_all" in {e["action"] for e in answer["events"]}
    stubs = mesh.sim.stubs()

    async def flat() -> bool | None:
        opened = await stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
        reply = await _web(mesh, "ListPositions", rk.ListPositionsRequest(venue="sim"), mesh.reader)
        views = rk.ListPositionsResponse.FromString(reply.messages[0]).positions
        sizes = [Decimal(v.size) for v in views if v.symbol == SYMBOL]
        return True if not opened.orders and all(s == 0 for s in sizes) else None

    await until(flat, 30, interval_s=0.5, what="no open order at the sim, the BTC/USDT position flat")
    again = await _web(
        mesh, "SetMode", rk.SetModeRequest(mode=rk.MODE_CLOSE_ALL, reason="again"), mesh.closer
    )
    assert again.code == OK, again.message
    assert rk.SetModeResponse.FromString(again.messages[0]).state == rk.RISK_STATE_HALTED
    events = await _tool(mesh, mesh.reader, "inspector_events", action="close_all")
    assert [e["policy"] for e in (events.structured_content or {})["events"]][:2] == ["operator", "operator"]
