"""The gateway's gRPC-web bridge as a real process, with a real sim venue registered through
TRADEMESH_GATEWAY and an API key from `trademesh keys create`: third-party gRPC-web clients
(`buf curl --protocol grpcweb`, and a raw aiohttp client speaking the wire format) call the
venue through it."""

from __future__ import annotations

import asyncio
import base64
import json
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import grpc
import httpx2
import pytest
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.integration.gateway_support import (
    Gateway,
    Processes,
    both,
    buf_curl,
    grpcweb_call,
    key_taken,
    list_instances,
    module_database,
    new_key,
    open_stream,
    parse_json_stream,
    text_body,
)
from tests.integration.postgres_server import database_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, metric_samples, until
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.core.platform.rpc.health_probe import check_health
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)
__all__ = ["database_url", "module_database"]  # the fixtures, for pytest

# buf exits with the gRPC code shifted left by three bits when the RPC itself fails.
INVALID_ARGUMENT_EXIT = 3 << 3
DEADLINE_EXCEEDED_EXIT = 4 << 3
PERMISSION_DENIED_EXIT = 7 << 3
UNAUTHENTICATED_EXIT = 16 << 3
MARKET_DATA = "trademesh.marketdata.v1.MarketData"
SUBSCRIBE = f"{MARKET_DATA}/Subscribe"
LIST_INSTRUMENTS = f"{MARKET_DATA}/ListInstruments"
SIM = {"x-trademesh-target": "sim"}
STUDIO_INDEX = "<!doctype html><title>studio test build</title>"


class Mesh:
    def __init__(self, processes: Processes, gateway: Gateway, sim: ServiceProcess, key: str) -> None:
        self.processes = processes
        self.gateway = gateway
        self.sim = sim
        self.key = key

    async def venue_subscribers(self) -> int:
        """The sim's count of open streams, asked natively (not through the gateway)."""
        async with grpc.aio.insecure_channel(self.sim.address) as channel:
            stub = admin_grpc.AdminStub(channel)
            status = await stub.GetStatus(
                admin.GetStatusRequest(),
                metadata=(("authorization", f"Bearer {TEST_TOKEN}"),),
                timeout=CALL_TIMEOUT_S,
            )
        return int(status.subscriber_count)


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory, module_database: str) -> AsyncIterator[Mesh]:
    directory = tmp_path_factory.mktemp("gateway-grpcweb")
    studio = directory / "studio"
    (studio / "assets").mkdir(parents=True)
    (studio / "index.html").write_text(STUDIO_INDEX)
    (studio / "assets" / "app.js").write_text("console.log('studio')")
    processes = Processes(directory, module_database)

    def start() -> tuple[Gateway, ServiceProcess]:
        gateway = processes.gateway("--studio-dir", str(studio))
        return gateway, processes.sim(gateway)

    try:
        # The key is made (its CLI's start) while the gateway and the sim start.
        key, (gateway, sim) = await both(lambda: new_key(module_database, "grpcweb-tests"), start)
        await key_taken(gateway, key)

        async def registered() -> bool | None:
            return True if "sim" in await list_instances(gateway) else None

        await until(registered, 30, what="the sim registered with the gateway")
        yield Mesh(processes, gateway, sim, key)
    finally:
        await processes.stop_all()


async def test_buf_curl_calls_a_unary_venue_method_through_the_gateway(mesh: Mesh) -> None:
    result = await buf_curl(mesh.gateway, LIST_INSTRUMENTS, key=mesh.key, target="sim")
    assert result.returncode == 0, result.stderr
    instruments = json.loads(result.stdout)["instruments"]
    assert {i["symbol"] for i in instruments} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    assert all(i["venue"] == "sim" for i in instruments)


async def test_buf_curl_reads_all_tickers_and_a_page_of_trades_through_the_gateway(mesh: Mesh) -> None:
    result = await buf_curl(mesh.gateway, f"{MARKET_DATA}/GetTickers", key=mesh.key, target="sim")
    assert result.returncode == 0, result.stderr
    tickers = json.loads(result.stdout)["tickers"]
    assert [t["symbol"] for t in tickers] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    request = {"symbol": "BTC/USDT", "limit": 2}
    result = await buf_curl(
        mesh.gateway, f"{MARKET_DATA}/GetTrades", "-d", json.dumps(request), key=mesh.key, target="sim"
    )
    assert result.returncode == 0, result.stderr
    page = json.loads(result.stdout)
    assert 0 < len(page.get("trades", [])) <= 2 or page.get("nextPageToken"), page


async def test_buf_curl_reads_a_server_stream_until_its_grpc_timeout(mesh: Mesh) -> None:
    request = {"symbols": ["BTC/USDT"], "channels": ["CHANNEL_TRADES", "CHANNEL_TICKERS"]}
    result = await buf_curl(
        mesh.gateway, SUBSCRIBE, "-d", json.dumps(request), "--timeout", "3s", key=mesh.key, target="sim"
    )
    # The stream never ends on its own: the client's deadline ends it, passed on as the upstream's.
    assert result.returncode == DEADLINE_EXCEEDED_EXIT, (result.returncode, result.stderr[-500:])
    batches = parse_json_stream(result.stdout)
    events = [event for batch in batches for event in batch.get("events", [])]
    assert len(batches) >= 3, f"only {len(batches)} messages in 3 s"
    assert {event["symbol"] for event in events} == {"BTC/USDT"}
    assert any("trade" in event for event in events)


async def test_an_invalid_argument_from_the_venue_reaches_the_client_with_field_violations(
    mesh: Mesh,
) -> None:
    request = {"symbol": "BTC/USDT", "timeframe": "TIMEFRAME_1_SECOND", "start_ns": "-1"}
    result = await buf_curl(
        mesh.gateway,
        f"{MARKET_DATA}/GetCandles",
        "-d",
        json.dumps(request),
        key=mesh.key,
        target="sim",
    )
    assert result.returncode == INVALID_ARGUMENT_EXIT, (result.returncode, result.stdout, result.stderr)
    error = json.loads(result.stdout or result.stderr)
    assert error["code"] == "invalid_argument"
    assert error["message"] == "start_ns: must not be negative"
    [detail] = error["details"]
    assert detail["type"] == "google.rpc.BadRequest"
    value = base64.b64decode(detail["value"] + "=" * (-len(detail["value"]) % 4))
    violations = error_details_pb2.BadRequest.FromString(value).field_violations
    assert [(v.field, v.description) for v in violations] == [("start_ns", "must not be negative")]


async def test_an_order_through_the_gateway_is_permission_denied_by_the_venue(mesh: Mesh) -> None:
    """The gateway holds the mesh token alone: only the inspector places orders (issue 15)."""
    order = {"symbol": "BTC/USDT", "side": "SIDE_BUY", "type": "ORDER_TYPE_LIMIT", "size": "-1", "price": "1"}
    result = await buf_curl(
        mesh.gateway,
        "trademesh.tradeflow.v1.TradeFlow/PlaceOrder",
        "-d",
        json.dumps(order),
        key=mesh.key,
        target="sim",
    )
    assert result.returncode == PERMISSION_DENIED_EXIT, (result.returncode, result.stdout, result.stderr)
    error = json.loads(result.stdout or result.stderr)
    assert error["code"] == "permission_denied"
    assert error["message"].startswith("PlaceOrder needs the trading credential (TRADEMESH_TRADE_TOKEN)")


@pytest.mark.parametrize("key", [None, "tmk_not-a-key-we-ever-made", "a-mesh-token-is-not-a-key"])
async def test_a_call_without_a_valid_key_is_unauthenticated(mesh: Mesh, key: str | None) -> None:
    result = await buf_curl(mesh.gateway, LIST_INSTRUMENTS, key=key, target="sim")
    assert result.returncode == UNAUTHENTICATED_EXIT, (result.returncode, result.stdout, result.stderr)
    error = json.loads(result.stdout or result.stderr)
    assert error["code"] == "unauthenticated"
    if key is not None:
        assert key not in result.stdout + result.stderr


async def test_the_mesh_token_is_not_a_key_at_the_gateway(mesh: Mesh) -> None:
    answer = await grpcweb_call(
        mesh.gateway,
        LIST_INSTRUMENTS,
        md.ListInstrumentsRequest().SerializeToString(),
        key=TEST_TOKEN,
        headers=SIM,
    )
    assert answer.code == grpc.StatusCode.UNAUTHENTICATED.value[0]
    assert answer.trailers_only and answer.messages == []


async def test_health_answers_without_a_token(mesh: Mesh) -> None:
    request = health_pb2.HealthCheckRequest().SerializeToString()
    answer = await grpcweb_call(mesh.gateway, "grpc.health.v1.Health/Check", request)
    assert (answer.http_status, answer.code) == (200, 0)
    [message] = answer.messages
    assert health_pb2.HealthCheckResponse.FromString(message).status == health_pb2.HealthCheckResponse.SERVING


async def test_the_open_health_route_takes_4_kib_and_other_routes_1_mib(mesh: Mesh) -> None:
    """Limits per route: Health needs no token, so anyone's body reaches it; it takes 4 KiB."""
    health = health_pb2.HealthCheckRequest(service="x" * 5000).SerializeToString()
    answer = await grpcweb_call(mesh.gateway, "grpc.health.v1.Health/Check", health)
    assert answer.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], answer.message
    assert answer.message == "request body of 5008 bytes is larger than 4101 bytes"
    big = md.ListInstrumentsRequest(symbols=["BTC/USDT"] * 200_000).SerializeToString()
    assert len(big) > 1024 * 1024
    answer = await grpcweb_call(mesh.gateway, LIST_INSTRUMENTS, big, key=mesh.key, headers=SIM)
    assert answer.code == grpc.StatusCode.RESOURCE_EXHAUSTED.value[0], answer.message
    assert answer.message.endswith("is larger than 1048581 bytes")


async def test_a_declared_body_over_the_limit_is_refused_before_it_is_sent(mesh: Mesh) -> None:
    """Content-Length says 4 MB, 10 bytes come: the answer does not wait for the rest."""
    reader, writer = await asyncio.open_connection("127.0.0.1", mesh.gateway.service.port)
    try:
        writer.write(
            b"POST /grpc.health.v1.Health/Check HTTP/1.1\r\nhost: gateway\r\n"
            b"content-type: application/grpc-web+proto\r\ncontent-length: 4000000\r\n\r\n" + b"\0" * 10
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CALL_TIMEOUT_S)
    finally:
        writer.close()
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"grpc-status: 8" in head.lower(), head


async def test_an_mcp_body_over_256_kib_is_413_and_without_a_token_401(mesh: Mesh) -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"pad": "x" * 300_000}}
    headers = {"accept": "application/json, text/event-stream"}
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{mesh.gateway.url}/mcp", json=call, headers=headers) as reply:
            assert reply.status == 401, "the token is checked before the body is read"
        headers["authorization"] = f"Bearer {mesh.key}"
        async with session.post(f"{mesh.gateway.url}/mcp", json=call, headers=headers) as reply:
            assert reply.status == 413
            assert (await reply.json())["error"]["message"] == "request body larger than 262144 bytes"


async def test_the_gateway_answers_health_on_its_native_grpc_port_too(mesh: Mesh) -> None:
    assert await check_health(mesh.gateway.grpc_address) == "SERVING"
    assert await check_health(mesh.gateway.grpc_address, "trademesh.registry.v1.Registry") == "SERVING"


async def test_mcp_is_mounted_and_refuses_a_call_without_a_token(mesh: Mesh) -> None:
    call = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
    headers = {"accept": "application/json, text/event-stream"}
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{mesh.gateway.url}/mcp", json=call, headers=headers) as reply,
    ):
        assert reply.status == 401
        assert "missing bearer token" in (await reply.json())["error"]["message"]


async def test_mcp_takes_posts_only_a_get_or_delete_is_method_not_allowed(mesh: Mesh) -> None:
    """Stateless MCP has no stream to open or resume and no session to end: a GET once held an
    SSE stream open for ever, and a GET with Last-Event-ID (no event store) was HTTP 500."""
    headers = {"authorization": f"Bearer {mesh.key}", "accept": "text/event-stream"}
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for method, extra in [("GET", {}), ("GET", {"last-event-id": "1"}), ("DELETE", {})]:
            async with session.request(
                method, f"{mesh.gateway.url}/mcp", headers={**headers, **extra}
            ) as reply:
                assert reply.status == 405, (method, extra, reply.status)
                assert reply.headers["allow"] == "POST"
    assert "ASGI callable returned without starting response" not in mesh.gateway.log()


async def test_mcp_is_made_at_its_first_requests_once_for_those_that_come_together(
    mesh: Mesh, tmp_path: Path
) -> None:
    """A gateway serves before it makes its MCP app (the SDK and the tools' schemas: most of its
    start); its first requests, at once, share the one it makes then (trademesh.gateway.mcp.lazy)."""
    processes = Processes(tmp_path, mesh.processes.database_url)
    try:
        gateway = processes.gateway()
        assert "MCP ready" not in gateway.log()
        listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        headers = {"authorization": f"Bearer {mesh.key}", "accept": "application/json, text/event-stream"}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CALL_TIMEOUT_S * 3)) as session:

            async def tools() -> set[str]:
                async with session.post(f"{gateway.url}/mcp", json=listing, headers=headers) as reply:
                    assert reply.status == 200, await reply.text()
                    return {tool["name"] for tool in (await reply.json())["result"]["tools"]}

            listed = await asyncio.gather(*(tools() for _ in range(4)))
        assert {"list_venues", "instruments"} <= listed[0] and all(names == listed[0] for names in listed)
        assert gateway.log().count("MCP ready") == 1
    finally:
        await processes.stop_all()


async def test_an_mcp_client_lists_the_tools_and_calls_one_through_the_gateway(mesh: Mesh) -> None:
    # The whole path: the gateway process, its key check, the registry resolving the sim.
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {mesh.key}"}, timeout=30) as http,
        Client(streamable_http_client(f"{mesh.gateway.url}/mcp", http_client=http)) as client,
    ):
        tools = {tool.name for tool in (await client.list_tools()).tools}
        venues = await client.call_tool("list_venues", {})
        instruments = await client.call_tool("instruments", {"venue": "sim"})
    assert {"list_venues", "instruments", "order_book_top", "positions"} <= tools
    assert not venues.is_error and "sim" in json.dumps(venues.structured_content)
    assert not instruments.is_error, instruments.content
    symbols = {i["symbol"] for i in (instruments.structured_content or {})["instruments"]}
    assert symbols == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}


async def test_health_of_a_named_instance_goes_to_that_instance(mesh: Mesh) -> None:
    request = health_pb2.HealthCheckRequest(service="trademesh.marketdata.v1.MarketData").SerializeToString()
    answer = await grpcweb_call(mesh.gateway, "grpc.health.v1.Health/Check", request, headers=SIM)
    assert answer.code == 0, answer.message
    # The gateway itself does not serve MarketData: only the sim can say SERVING for it.
    status = health_pb2.HealthCheckResponse.FromString(answer.messages[0]).status
    assert status == health_pb2.HealthCheckResponse.SERVING


async def test_text_mode_takes_a_body_in_several_base64_chunks_and_answers_in_base64(mesh: Mesh) -> None:
    # ListInstrumentsRequest is empty: its 5-byte frame goes as three padded chunks ("AA==AA==AAA=").
    body = text_body(md.ListInstrumentsRequest().SerializeToString(), chunks=3)
    assert body.count(b"==") >= 2
    answer = await grpcweb_call(
        mesh.gateway, LIST_INSTRUMENTS, b"", key=mesh.key, text=True, headers=SIM, body=body
    )
    assert answer.code == 0, answer.message
    assert answer.headers["content-type"] == "application/grpc-web-text+proto"
    [message] = answer.messages
    reply = md.ListInstrumentsResponse.FromString(message)
    assert {i.symbol for i in reply.instruments} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}


async def test_text_mode_request_split_into_padded_chunks_reaches_the_venue_intact(mesh: Mesh) -> None:
    # A Subscribe request long enough to split: a chunk boundary inside the message itself.
    request = md.SubscribeRequest(symbols=["SOL/USDT"], channels=[md.CHANNEL_TRADES]).SerializeToString()
    body = text_body(request, chunks=4)
    assert body.count(b"=") >= 2, "the body should hold padding inside"
    answer = await grpcweb_call(
        mesh.gateway,
        SUBSCRIBE,
        b"",
        key=mesh.key,
        text=True,
        headers={**SIM, "grpc-timeout": "1500m"},
        body=body,
    )
    assert answer.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0], answer.message
    symbols = {e.symbol for m in answer.messages for e in md.SubscribeResponse.FromString(m).events}
    assert symbols == {"SOL/USDT"}


async def test_grpc_timeout_becomes_the_upstream_deadline(mesh: Mesh) -> None:
    request = md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_TRADES]).SerializeToString()
    started = asyncio.get_running_loop().time()
    answer = await grpcweb_call(
        mesh.gateway, SUBSCRIBE, request, key=mesh.key, headers={**SIM, "grpc-timeout": "1S"}
    )
    elapsed = asyncio.get_running_loop().time() - started
    assert answer.code == grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
    assert answer.messages, "messages came before the deadline"
    assert 0.9 < elapsed < 5, elapsed


async def test_a_malformed_grpc_timeout_is_invalid_argument_naming_the_header(mesh: Mesh) -> None:
    request = md.ListInstrumentsRequest().SerializeToString()
    answer = await grpcweb_call(
        mesh.gateway, LIST_INSTRUMENTS, request, key=mesh.key, headers={**SIM, "grpc-timeout": "soon"}
    )
    assert answer.trailers_only
    assert answer.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert answer.message.startswith("grpc-timeout: 'soon' is not")
    details = status_pb2.Status.FromString(base64.b64decode(answer.headers["grpc-status-details-bin"]))
    violation = error_details_pb2.BadRequest()
    assert details.details[0].Unpack(violation)
    assert violation.field_violations[0].field == "grpc-timeout"


@pytest.mark.parametrize(
    ("text", "body"),
    [
        (False, b"\x00\x00\x00\x00\x09abc"),  # a frame that says 9 bytes and holds 3
        (False, b"\x80\x00\x00\x00\x00"),  # a trailer frame where the request should be
        (True, b"AAAA*not base64*"),
    ],
)
async def test_a_malformed_body_is_invalid_argument_and_the_gateway_keeps_serving(
    mesh: Mesh, text: bool, body: bytes
) -> None:
    answer = await grpcweb_call(
        mesh.gateway, LIST_INSTRUMENTS, b"", key=mesh.key, text=text, headers=SIM, body=body
    )
    assert answer.code == grpc.StatusCode.INVALID_ARGUMENT.value[0], answer.message
    assert answer.message, "the client is told what was wrong"
    good = await grpcweb_call(
        mesh.gateway,
        LIST_INSTRUMENTS,
        md.ListInstrumentsRequest().SerializeToString(),
        key=mesh.key,
        headers=SIM,
    )
    assert good.code == 0 and good.messages


@pytest.mark.parametrize("header", ["x-request-id", "x-user-agent"])
@pytest.mark.parametrize("value", ["caf\u00e9", "a\tb", "x" * 300])
async def test_a_header_grpc_metadata_cannot_carry_is_invalid_argument_naming_it(
    mesh: Mesh, header: str, value: str
) -> None:
    """Non-ASCII bytes, a tab (a control character) or an overlong value: refused by name (it was HTTP 500
    and a traceback), never forwarded, never echoed; the next call is served."""
    request = md.ListInstrumentsRequest().SerializeToString()
    answer = await grpcweb_call(
        mesh.gateway, LIST_INSTRUMENTS, request, key=mesh.key, headers={**SIM, header: value}
    )
    assert answer.http_status == 200
    assert answer.code == grpc.StatusCode.INVALID_ARGUMENT.value[0], answer.message
    assert answer.message.startswith(f"{header}: must be printable ASCII"), answer.message
    assert value not in answer.message
    good = await grpcweb_call(mesh.gateway, LIST_INSTRUMENTS, request, key=mesh.key, headers=SIM)
    assert good.code == 0 and good.messages


async def test_a_service_nobody_serves_is_not_found_by_name(mesh: Mesh) -> None:
    answer = await grpcweb_call(mesh.gateway, "trademesh.nothing.v1.Nothing/Get", b"", key=mesh.key)
    assert answer.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "no live instance serves trademesh.nothing.v1.Nothing" in answer.message


async def test_an_unknown_target_is_not_found_and_lists_the_instances_serving_it(mesh: Mesh) -> None:
    answer = await grpcweb_call(
        mesh.gateway, LIST_INSTRUMENTS, b"", key=mesh.key, headers={"x-trademesh-target": "binance"}
    )
    assert answer.code == grpc.StatusCode.NOT_FOUND.value[0]
    assert "'binance'" in answer.message and "instances serving it: sim" in answer.message


async def test_bidi_streaming_methods_are_unimplemented_with_a_reason(mesh: Mesh) -> None:
    answer = await grpcweb_call(
        mesh.gateway, "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", b"", key=mesh.key
    )
    assert answer.code == grpc.StatusCode.UNIMPLEMENTED.value[0]
    assert "unary and server-streaming calls only" in answer.message


async def test_registration_is_not_reachable_over_grpc_web(mesh: Mesh) -> None:
    answer = await grpcweb_call(mesh.gateway, "trademesh.registry.v1.Registry/Register", b"", key=mesh.key)
    assert answer.code == grpc.StatusCode.PERMISSION_DENIED.value[0]


async def test_list_services_over_grpc_web_shows_the_venue(mesh: Mesh) -> None:
    result = await buf_curl(
        mesh.gateway,
        "trademesh.registry.v1.Registry/ListServices",
        "-d",
        '{"kind": "KIND_VENUE"}',
        key=mesh.key,
    )
    assert result.returncode == 0, result.stderr
    [instance] = json.loads(result.stdout)["instances"]
    assert (instance["name"], instance["address"]) == ("sim", mesh.sim.address)
    assert "trademesh.tradeflow.v1.TradeFlow" in instance["services"]


async def test_a_client_that_leaves_mid_stream_cancels_the_upstream_call(mesh: Mesh) -> None:
    assert await mesh.venue_subscribers() == 0
    request = md.SubscribeRequest(symbols=["ETH/USDT"], channels=[md.CHANNEL_BOOK]).SerializeToString()
    streams = [
        await open_stream(mesh.gateway, SUBSCRIBE, request, key=mesh.key, headers=SIM) for _ in range(3)
    ]
    for stream in streams:
        [first, *_] = await stream.messages(2)
        assert md.SubscribeResponse.FromString(first).events[0].symbol == "ETH/USDT"
    assert await mesh.venue_subscribers() == 3
    for stream in streams:
        await stream.close()

    async def none_left() -> bool | None:
        return True if await mesh.venue_subscribers() == 0 else None

    await until(none_left, 10, what="the venue's streams to end after the clients left")
    open_streams = metric_samples(await metrics(mesh.gateway), "gateway_grpcweb_open_streams")
    assert open_streams[f'{{grpc_method="Subscribe",grpc_service="{MARKET_DATA}"}}'] == 0


async def test_cors_preflight_allows_the_grpc_web_headers(mesh: Mesh) -> None:
    headers = {
        "origin": "http://studio.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization,content-type,x-grpc-web,x-trademesh-target",
    }
    async with (
        aiohttp.ClientSession() as session,
        session.options(f"{mesh.gateway.url}/{LIST_INSTRUMENTS}", headers=headers) as reply,
    ):
        assert reply.status == 204
        assert reply.headers["access-control-allow-origin"] == "http://studio.example"
        allowed = {h.strip() for h in reply.headers["access-control-allow-headers"].split(",")}
        assert {
            "authorization",
            "content-type",
            "x-grpc-web",
            "x-trademesh-target",
            "grpc-timeout",
        } <= allowed
        assert "grpc-status" in reply.headers["access-control-expose-headers"]


async def test_a_cross_origin_call_exposes_the_status_headers(mesh: Mesh) -> None:
    answer = await grpcweb_call(
        mesh.gateway,
        LIST_INSTRUMENTS,
        md.ListInstrumentsRequest().SerializeToString(),
        key=mesh.key,
        headers={**SIM, "origin": "http://studio.example"},
    )
    assert answer.code == 0
    assert answer.headers["access-control-allow-origin"] == "http://studio.example"
    assert "grpc-message" in answer.headers["access-control-expose-headers"]


async def test_a_request_that_is_not_grpc_web_is_refused_with_415(mesh: Mesh) -> None:
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{mesh.gateway.url}/{LIST_INSTRUMENTS}", data=b"{}", headers={"content-type": "application/json"}
        ) as reply,
    ):
        assert reply.status == 415
        assert "application/grpc-web" in await reply.text()


async def test_metrics_count_calls_by_service_method_and_code(mesh: Mesh) -> None:
    await grpcweb_call(mesh.gateway, LIST_INSTRUMENTS, b"", key=mesh.key, headers=SIM)
    text = await metrics(mesh.gateway)
    calls = metric_samples(text, "gateway_grpcweb_calls_total")
    assert calls[f'{{grpc_code="OK",grpc_method="ListInstruments",grpc_service="{MARKET_DATA}"}}'] >= 1
    assert "gateway_grpcweb_latency_seconds_bucket" in text


async def test_studio_files_are_served_without_a_token_with_spa_fallback(mesh: Mesh) -> None:
    async with aiohttp.ClientSession() as session:
        for path in ("/", "/venues/sim"):
            async with session.get(mesh.gateway.url + path) as reply:
                assert (reply.status, await reply.text()) == (200, STUDIO_INDEX), path
        async with session.get(mesh.gateway.url + "/assets/app.js") as reply:
            assert reply.status == 200 and "studio" in await reply.text()
        async with session.get(mesh.gateway.url + "/assets/missing.js") as reply:
            assert reply.status == 404


async def metrics(gateway: Gateway) -> str:
    def get() -> str:
        with urllib.request.urlopen(f"{gateway.url}/metrics", timeout=CALL_TIMEOUT_S) as response:
            body: bytes = response.read()
        return body.decode()

    return await asyncio.to_thread(get)
