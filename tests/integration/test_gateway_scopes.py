"""Per-key scopes (issue 12, item 10) on a real gateway process with a real sim venue: what a
read, trade or admin key may call over gRPC-web, through a Studio session, through the Mux and
at /mcp; keys made with the real CLI (`trademesh keys create NAME --scope ...`)."""

from __future__ import annotations

import asyncio
import functools
import json
import os
import subprocess
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import grpc
import pytest

from tests.forked_services import run_command
from tests.integration.gateway_support import (
    Gateway,
    Processes,
    WebAnswer,
    at_once,
    grpcweb_call,
    list_instances,
    module_database,
    mux_add,
    new_key,
    open_mux,
    open_stream,
)
from tests.integration.postgres_server import database_url
from tests.integration.support import CALL_TIMEOUT_S, limit_order, until
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.config.env import DATABASE_URL
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.mux.v1 import mux_pb2 as mux
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)
__all__ = ["database_url", "module_database"]  # the fixtures, for pytest

ADMIN = "trademesh.admin.v1.Admin"
TRADEFLOW = "trademesh.tradeflow.v1.TradeFlow"
MARKETDATA = "trademesh.marketdata.v1.MarketData"
DENIED = grpc.StatusCode.PERMISSION_DENIED.value[0]
OK = grpc.StatusCode.OK.value[0]
SIM = {"x-trademesh-target": "sim"}
KEYS = {
    "scopes-reader": ["read"],
    "scopes-trader": ["read", "trade"],
    "scopes-narrowed": ["read"],
    "scopes-mcp-trade": ["trade"],
    "scopes-operator": ["admin"],
}


@dataclass
class Mesh:
    processes: Processes
    gateway: Gateway
    database_url: str
    # Key by name, all made before the gateway started (so it knows them at once).
    keys: dict[str, str]

    @property
    def reader(self) -> str:
        return self.keys["scopes-reader"]

    @property
    def trader(self) -> str:
        return self.keys["scopes-trader"]


async def started(processes: Processes) -> Gateway:
    gateway = processes.gateway()
    processes.sim(gateway)

    async def registered() -> bool | None:
        return True if "sim" in await list_instances(gateway) else None

    await until(registered, 30, what="the sim registered with the gateway")
    return gateway


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory, module_database: str) -> AsyncIterator[Mesh]:
    processes = Processes(tmp_path_factory.mktemp("gateway-scopes"), module_database)
    try:
        made = await at_once(*(functools.partial(new_key, module_database, n, s) for n, s in KEYS.items()))
        keys = dict(zip(KEYS, made, strict=True))
        yield Mesh(processes, await started(processes), module_database, keys)
    finally:
        await processes.stop_all()


async def call(mesh: Mesh, method: str, request: bytes, key: str) -> WebAnswer:
    return await grpcweb_call(mesh.gateway, method, request, key=key, headers=SIM)


def drain() -> bytes:
    return admin.DrainRequest().SerializeToString()


def resting_order(client_order_id: str) -> bytes:
    order = limit_order("BTC/USDT", common.SIDE_BUY, "0.001", "30000", client_order_id=client_order_id)
    return order.SerializeToString()


def assert_denied(answer: WebAnswer, scope: str, key_name: str) -> None:
    assert answer.code == DENIED, (answer.code, answer.message)
    assert f"needs the '{scope}' scope" in answer.message and f"API key '{key_name}'" in answer.message


async def sim_status(mesh: Mesh, key: str) -> admin.GetStatusResponse:
    answer = await call(mesh, f"{ADMIN}/GetStatus", admin.GetStatusRequest().SerializeToString(), key)
    assert answer.code == OK, answer.message
    return admin.GetStatusResponse.FromString(answer.messages[0])


async def test_a_read_key_reads_market_data_and_status_but_cannot_trade_or_operate(mesh: Mesh) -> None:
    listed = await call(
        mesh, f"{MARKETDATA}/ListInstruments", md.ListInstrumentsRequest().SerializeToString(), mesh.reader
    )
    assert listed.code == OK, listed.message
    symbols = {i.symbol for i in md.ListInstrumentsResponse.FromString(listed.messages[0]).instruments}
    assert "BTC/USDT" in symbols
    assert (await sim_status(mesh, mesh.reader)).state == admin.VENUE_STATE_RUNNING

    assert_denied(await call(mesh, f"{ADMIN}/Drain", drain(), mesh.reader), "admin", "scopes-reader")
    placed = await call(mesh, f"{TRADEFLOW}/PlaceOrder", resting_order("scopes-read-1"), mesh.reader)
    assert_denied(placed, "trade", "scopes-reader")
    heartbeat = admin.HeartbeatRequest(ttl_ms=1000).SerializeToString()
    assert_denied(await call(mesh, f"{ADMIN}/Heartbeat", heartbeat, mesh.reader), "trade", "scopes-reader")
    amend = tf.AmendOrderRequest(client_order_id="scopes-read-1", size="1").SerializeToString()
    assert_denied(await call(mesh, f"{TRADEFLOW}/AmendOrder", amend, mesh.reader), "trade", "scopes-reader")
    # Refused at the gateway: the venue saw no order and still runs.
    status = await sim_status(mesh, mesh.reader)
    assert status.state == admin.VENUE_STATE_RUNNING and not status.dead_man.armed
    await assert_no_order(mesh, "scopes-read-1")


async def test_a_read_key_streams_the_account_through_the_gateway(mesh: Mesh) -> None:
    request = tf.StreamAccountRequest().SerializeToString()
    stream = await open_stream(
        mesh.gateway, f"{TRADEFLOW}/StreamAccount", request, key=mesh.reader, headers=SIM
    )
    try:
        first = tf.StreamAccountResponse.FromString((await stream.messages(1))[0])
    finally:
        await stream.close()
    assert first.snapshot and "USDT" in {b.asset for b in first.balances}


async def assert_no_order(mesh: Mesh, client_order_id: str) -> None:
    request = tf.ListOpenOrdersRequest().SerializeToString()
    listed = await call(mesh, f"{TRADEFLOW}/ListOpenOrders", request, mesh.reader)
    assert listed.code == OK, listed.message
    orders = tf.ListOpenOrdersResponse.FromString(listed.messages[0]).orders
    assert client_order_id not in {order.client_order_id for order in orders}


def assert_venue_refused(answer: WebAnswer, rpc: str) -> None:
    """Past the gateway's scope check, refused by the venue: the gateway holds the mesh token, not
    the trading credential (only the inspector places and cancels orders, issue 15)."""
    assert answer.code == DENIED, (answer.code, answer.message)
    assert answer.message.startswith(f"{rpc} needs the trading credential (TRADEMESH_TRADE_TOKEN)")
    assert "scope" not in answer.message


async def test_a_trade_key_passes_the_gateway_but_the_venue_refuses_its_orders(mesh: Mesh) -> None:
    placed = await call(mesh, f"{TRADEFLOW}/PlaceOrder", resting_order("scopes-trade-1"), mesh.trader)
    assert_venue_refused(placed, "PlaceOrder")
    cancel = tf.CancelOrderRequest(client_order_id="scopes-trade-1").SerializeToString()
    assert_venue_refused(await call(mesh, f"{TRADEFLOW}/CancelOrder", cancel, mesh.trader), "CancelOrder")
    cancel_all = tf.CancelAllOrdersRequest().SerializeToString()
    answer = await call(mesh, f"{TRADEFLOW}/CancelAllOrders", cancel_all, mesh.trader)
    assert_venue_refused(answer, "CancelAllOrders")
    amend = tf.AmendOrderRequest(client_order_id="scopes-trade-1", size="1").SerializeToString()
    assert_venue_refused(await call(mesh, f"{TRADEFLOW}/AmendOrder", amend, mesh.trader), "AmendOrder")
    await assert_no_order(mesh, "scopes-trade-1")

    assert_denied(await call(mesh, f"{ADMIN}/Drain", drain(), mesh.trader), "admin", "scopes-trader")
    remove = admin.RemoveSubscriptionsRequest(
        subscriptions=[admin.Subscription(symbol="BTC/USDT", channel=md.CHANNEL_TRADES)]
    ).SerializeToString()
    answer = await call(mesh, f"{ADMIN}/RemoveSubscriptions", remove, mesh.trader)
    assert_denied(answer, "admin", "scopes-trader")
    assert (await sim_status(mesh, mesh.trader)).state == admin.VENUE_STATE_RUNNING


async def test_a_heartbeat_through_the_gateway_is_refused_by_the_venue(mesh: Mesh) -> None:
    for ttl_ms in (1, 60_000):  # refused before the request is read: a bad ttl or a good one
        heartbeat = admin.HeartbeatRequest(ttl_ms=ttl_ms).SerializeToString()
        assert_venue_refused(await call(mesh, f"{ADMIN}/Heartbeat", heartbeat, mesh.trader), "Heartbeat")
    assert not (await sim_status(mesh, mesh.trader)).dead_man.armed


async def test_an_unclassified_method_needs_admin(mesh: Mesh) -> None:
    answer = await call(mesh, "acme.rockets.v1.Rockets/Launch", b"", mesh.trader)
    assert_denied(answer, "admin", "scopes-trader")


async def login(gateway: Gateway, key: str) -> str:
    """A Studio session token from POST /api/login, once the gateway knows the key."""

    async def attempt() -> str | None:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)) as http,
            http.post(f"{gateway.url}/api/login", json={"key": key}) as reply,
        ):
            if reply.status == 401:  # a key made a moment ago: the gateway reads it within 1 s
                return None
            assert reply.status == 200, await reply.text()
            token: str = (await reply.json())["token"]
        return token

    return await until(attempt, 5.0, interval_s=0.3, what="a login with the new key")


async def test_a_studio_session_of_a_read_key_is_limited_like_its_key(mesh: Mesh) -> None:
    session = await login(mesh.gateway, mesh.reader)
    assert (await sim_status(mesh, session)).state == admin.VENUE_STATE_RUNNING
    placed = await call(mesh, f"{TRADEFLOW}/PlaceOrder", resting_order("scopes-session-1"), session)
    assert_denied(placed, "trade", "scopes-reader")
    assert_denied(await call(mesh, f"{ADMIN}/Drain", drain(), session), "admin", "scopes-reader")
    await assert_no_order(mesh, "scopes-session-1")


async def test_the_mux_subscribes_only_to_what_the_sessions_key_may_call(mesh: Mesh) -> None:
    session = await login(mesh.gateway, mesh.reader)
    stream = await open_mux(mesh.gateway, session)
    try:
        request = md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_TRADES]).SerializeToString()
        added = await mux_add(
            mesh.gateway, session, stream.session_id, "md", f"{MARKETDATA}/Subscribe", request, "sim"
        )
        assert added.code == OK, added.message
        refused = await mux_add(
            mesh.gateway, session, stream.session_id, "x", "acme.rockets.v1.Rockets/Watch", b""
        )
        assert_denied(refused, "admin", "scopes-reader")
        frames = await stream.collect(lambda found: any(f.WhichOneof("frame") == "data" for f in found))
        assert all(f.data.subscription_id == "md" for f in frames if f.WhichOneof("frame") == "data")
    finally:
        await stream.close()


def keys_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run_command(["keys", *args], {**os.environ, DATABASE_URL: database_url}, timeout_s=60)


def ended(frames: Sequence[mux.OpenResponse], subscription_id: str) -> mux.End | None:
    ends = [
        f.end for f in frames if f.WhichOneof("frame") == "end" and f.end.subscription_id == subscription_id
    ]
    return ends[0] if ends else None


async def test_narrowing_a_key_ends_its_sessions_subscriptions_and_calls(mesh: Mesh) -> None:
    session = await login(mesh.gateway, mesh.keys["scopes-narrowed"])
    stream = await open_mux(mesh.gateway, session)
    try:
        request = md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_TRADES]).SerializeToString()
        added = await mux_add(
            mesh.gateway, session, stream.session_id, "md", f"{MARKETDATA}/Subscribe", request, "sim"
        )
        assert added.code == OK, added.message
        narrowed = await asyncio.to_thread(
            keys_cli, mesh.database_url, "scopes", "scopes-narrowed", "--scope", "trade"
        )
        assert narrowed.returncode == 0, narrowed.stderr
        frames = await stream.collect(lambda found: ended(found, "md") is not None, timeout_s=20)
        end = ended(frames, "md")
        assert end is not None and end.code == DENIED
        assert "no longer has the 'read' scope" in end.message
    finally:
        await stream.close()
    assert_denied(
        await call(mesh, f"{ADMIN}/GetStatus", admin.GetStatusRequest().SerializeToString(), session),
        "read",
        "scopes-narrowed",
    )


async def mcp_tools(gateway: Gateway, key: str) -> tuple[int, dict[str, object]]:
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {
        "Authorization": f"Bearer {key}",
        "Accept": "application/json, text/event-stream",
        "Content-Type": "application/json",
    }
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)) as http,
        http.post(f"{gateway.url}/mcp", data=json.dumps(listing), headers=headers) as reply,
    ):
        return reply.status, await reply.json(content_type=None)


async def test_mcp_needs_the_read_scope(mesh: Mesh) -> None:
    trade_only = mesh.keys["scopes-mcp-trade"]
    status, body = await mcp_tools(mesh.gateway, trade_only)
    assert status == 403, body
    assert "lacks the 'read' scope" in str(body["error"]) and trade_only not in json.dumps(body)
    status, body = await mcp_tools(mesh.gateway, mesh.reader)
    assert status == 200 and "result" in body, body


async def test_an_admin_key_drains_a_venue(mesh: Mesh, tmp_path: Path) -> None:
    # A mesh of its own: draining the module's sim would change what the other tests see.
    processes = Processes(tmp_path, mesh.database_url)
    try:
        gateway = await started(processes)
        operator = mesh.keys["scopes-operator"]
        drained = await grpcweb_call(gateway, f"{ADMIN}/Drain", drain(), key=operator, headers=SIM)
        assert drained.code == OK, drained.message
        # admin alone does not read: GetStatus needs `read`.
        status = await grpcweb_call(
            gateway,
            f"{ADMIN}/GetStatus",
            admin.GetStatusRequest().SerializeToString(),
            key=mesh.reader,
            headers=SIM,
        )
        assert status.code == OK, status.message
        assert admin.GetStatusResponse.FromString(status.messages[0]).state == admin.VENUE_STATE_DRAINING
    finally:
        await processes.stop_all()
