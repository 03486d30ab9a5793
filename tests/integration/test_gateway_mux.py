"""The gateway's live-data multiplexer (trademesh.mux.v1.Mux) as a real process: one Open stream
carries several subscriptions to real sim venues, added and removed with unary calls, through a
raw gRPC-web client (aiohttp) and `buf curl --protocol grpcweb`.

The gateway runs with small limits (4 subscriptions per session, 3 sessions per key) so the
limits can be reached; a second sim venue, not registered, is reachable as the fixed route
`other` and stopped by the test of an upstream that ends.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import os
import socket
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator, Callable, Sequence

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from tests.forked_services import run_command
from tests.integration.gateway_support import (
    MUX,
    Gateway,
    MuxStream,
    Processes,
    WebAnswer,
    buf_curl,
    create_key,
    frame,
    grpcweb_call,
    list_instances,
    module_database,
    mux_add,
    mux_remove,
    open_mux,
    open_stream,
    parse_frames,
    parse_json_stream,
    summarize,
)
from tests.integration.postgres_server import database_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, metric_samples, until
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.core.platform.config.env import DATABASE_URL
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.mux.v1 import mux_pb2 as mux
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)
__all__ = ["database_url", "module_database"]  # the fixtures, for pytest

SUBSCRIBE = "trademesh.marketdata.v1.MarketData/Subscribe"
MAX_SUBSCRIPTIONS = 4
MAX_SESSIONS = 3
HOT_SUBSCRIPTIONS = 16
OK, CANCELLED, INVALID_ARGUMENT, NOT_FOUND = 0, 1, 3, 5
ALREADY_EXISTS, PERMISSION_DENIED, RESOURCE_EXHAUSTED, UNAUTHENTICATED = 6, 7, 8, 16


def subscribe(symbol: str, *channels: md.Channel.ValueType) -> bytes:
    return md.SubscribeRequest(symbols=[symbol], channels=list(channels)).SerializeToString()


class Mesh:
    def __init__(
        self,
        processes: Processes,
        gateway: Gateway,
        sim: ServiceProcess,
        other: ServiceProcess,
        keys: list[str],
    ) -> None:
        self.processes = processes
        self.gateway = gateway
        self.sim = sim
        self.other = other
        self.key, self.other_key = keys

    async def add(
        self,
        stream: MuxStream,
        subscription_id: str,
        request: bytes,
        target: str = "sim",
        key: str | None = None,
    ) -> WebAnswer:
        return await mux_add(
            self.gateway, key or self.key, stream.session_id, subscription_id, SUBSCRIBE, request, target
        )

    def metric(self, name: str) -> float:
        with urllib.request.urlopen(f"{self.gateway.url}/metrics", timeout=CALL_TIMEOUT_S) as reply:
            samples = metric_samples(reply.read().decode(), name)
        return sum(samples.values())

    async def sessions_closed(self) -> None:
        async def closed() -> bool | None:
            return True if await asyncio.to_thread(self.metric, "gateway_mux_sessions") == 0 else None

        await until(closed, 15, 0.1, "every mux session of the gateway closed")


async def subscribers(venue: ServiceProcess) -> int:
    """The venue's count of open streams, asked natively (not through the gateway)."""
    async with grpc.aio.insecure_channel(venue.address) as channel:
        status = await admin_grpc.AdminStub(channel).GetStatus(
            admin.GetStatusRequest(),
            metadata=(("authorization", f"Bearer {TEST_TOKEN}"),),
            timeout=CALL_TIMEOUT_S,
        )
    return int(status.subscriber_count)


async def until_subscribers(venue: ServiceProcess, expected: int) -> None:
    async def reached() -> bool | None:
        return True if await subscribers(venue) == expected else None

    await until(reached, 15, 0.1, f"{expected} subscribers at the venue")


@pytest.fixture(scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory, module_database: str) -> AsyncIterator[Mesh]:
    processes = Processes(tmp_path_factory.mktemp("gateway-mux"), module_database)
    try:
        keys = [await create_key(module_database, name) for name in ("mux-tests", "mux-other")]
        other = processes.sim(None)
        route = f"other=trademesh.marketdata.v1.MarketData,trademesh.admin.v1.Admin@{other.address}"
        gateway = processes.gateway(
            "--mux-max-subscriptions",
            str(MAX_SUBSCRIPTIONS),
            "--mux-max-sessions-per-key",
            str(MAX_SESSIONS),
            "--upstream",
            route,
        )
        sim = processes.sim(gateway)

        async def registered() -> bool | None:
            return True if "sim" in await list_instances(gateway) else None

        await until(registered, 30, what="the sim registered with the gateway")
        yield Mesh(processes, gateway, sim, other, keys)
    finally:
        await processes.stop_all()


@pytest.fixture
async def stream(mesh: Mesh) -> AsyncIterator[MuxStream]:
    """An open session of the module's key; closed (and seen closed by the gateway) after the test."""
    await mesh.sessions_closed()
    opened = await open_mux(mesh.gateway, mesh.key)
    try:
        yield opened
    finally:
        await opened.close()
        await mesh.sessions_closed()


def data_of(frames: Sequence[mux.OpenResponse], subscription_id: str) -> list[md.SubscribeResponse]:
    return [
        md.SubscribeResponse.FromString(f.data.message)
        for f in frames
        if f.WhichOneof("frame") == "data" and f.data.subscription_id == subscription_id
    ]


def end_of(frames: Sequence[mux.OpenResponse], subscription_id: str) -> mux.End | None:
    ends = [
        f.end for f in frames if f.WhichOneof("frame") == "end" and f.end.subscription_id == subscription_id
    ]
    assert len(ends) <= 1, f"{len(ends)} end frames for {subscription_id}"
    return ends[0] if ends else None


def has_data(*wanted: tuple[str, int]) -> Callable[[Sequence[mux.OpenResponse]], bool]:
    """For collect(): at least n data frames of each (subscription id, n)."""
    return lambda frames: all(len(data_of(frames, sid)) >= n for sid, n in wanted)


def violations(answer: WebAnswer) -> dict[str, str]:
    raw = answer.trailers.get("grpc-status-details-bin") or answer.headers.get("grpc-status-details-bin", "")
    status = status_pb2.Status.FromString(_b64(raw))
    found: dict[str, str] = {}
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.update({v.field: v.description for v in bad.field_violations})
    return found


def _b64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------- subscriptions on one stream


async def test_open_starts_with_the_session_id_and_its_limits(mesh: Mesh, stream: MuxStream) -> None:
    assert len(stream.session_id) >= 20
    assert stream.opened.max_subscriptions == MAX_SUBSCRIPTIONS
    assert stream.opened.max_queued_bytes == 4 * 1024 * 1024
    assert await asyncio.to_thread(mesh.metric, "gateway_mux_sessions") == 1


async def test_two_subscriptions_on_one_stream_arrive_tagged_with_their_own_messages(
    mesh: Mesh, stream: MuxStream
) -> None:
    trades = await mesh.add(stream, "btc-trades", subscribe("BTC/USDT", md.CHANNEL_TRADES))
    book = await mesh.add(stream, "eth-book", subscribe("ETH/USDT", md.CHANNEL_BOOK))
    assert (trades.code, book.code) == (OK, OK), (trades.message, book.message)
    assert mux.AddResponse.FromString(trades.messages[0]).subscription_id == "btc-trades"
    frames = await stream.collect(has_data(("btc-trades", 3), ("eth-book", 3)))
    btc = [e for m in data_of(frames, "btc-trades") for e in m.events]
    eth = [e for m in data_of(frames, "eth-book") for e in m.events]
    assert {(e.symbol, e.WhichOneof("payload")) for e in btc} == {("BTC/USDT", "trade")}
    # The book subscription is the venue's: a snapshot first, then deltas of ETH/USDT only.
    assert eth[0].WhichOneof("payload") == "book_snapshot"
    assert {e.symbol for e in eth} == {"ETH/USDT"}
    assert {e.WhichOneof("payload") for e in eth[1:]} <= {"book_delta", "book_snapshot"}
    assert await subscribers(mesh.sim) == 2
    assert await asyncio.to_thread(mesh.metric, "gateway_mux_subscriptions") == 2


async def test_remove_ends_one_subscription_and_not_the_other(mesh: Mesh, stream: MuxStream) -> None:
    for sid, symbol in (("a", "BTC/USDT"), ("b", "SOL/USDT")):
        assert (await mesh.add(stream, sid, subscribe(symbol, md.CHANNEL_TRADES, md.CHANNEL_BOOK))).code == OK
    await stream.collect(has_data(("a", 1), ("b", 1)))
    removed = await mux_remove(mesh.gateway, mesh.key, stream.session_id, "a")
    assert removed.code == OK and mux.RemoveResponse.FromString(removed.messages[0]).removed
    frames = await stream.collect(lambda fs: end_of(fs, "a") is not None)
    end = end_of(frames, "a")
    assert end is not None and end.code == CANCELLED and "removed" in end.message
    # After its end frame, only b's frames come; the venue keeps b's stream only.
    after = await stream.collect(has_data(("b", 5)))
    assert data_of(after, "a") == [] and end_of(after, "b") is None
    await until_subscribers(mesh.sim, 1)
    again = await mux_remove(mesh.gateway, mesh.key, stream.session_id, "a")
    assert again.code == OK and not mux.RemoveResponse.FromString(again.messages[0]).removed
    # An ended id may be used again.
    assert (await mesh.add(stream, "a", subscribe("BTC/USDT", md.CHANNEL_TRADES))).code == OK
    await stream.collect(has_data(("a", 1)))


async def test_an_upstream_error_ends_that_subscription_only_with_its_status_and_details(
    mesh: Mesh, stream: MuxStream
) -> None:
    assert (await mesh.add(stream, "good", subscribe("BTC/USDT", md.CHANNEL_TRADES))).code == OK
    # Add answers at once; the venue's refusal of the request becomes the subscription's end.
    assert (await mesh.add(stream, "bad", subscribe("BTCUSDT", md.CHANNEL_TRADES))).code == OK
    frames = await stream.collect(lambda fs: end_of(fs, "bad") is not None and len(data_of(fs, "good")) >= 2)
    end = end_of(frames, "bad")
    assert end is not None and end.code == INVALID_ARGUMENT, end
    details = status_pb2.Status.FromString(end.details)
    bad = error_details_pb2.BadRequest()
    assert details.details[0].Unpack(bad) and bad.field_violations[0].field.startswith("symbols")
    assert end_of(frames, "good") is None
    await stream.collect(has_data(("good", 2)))


async def test_an_upstream_that_stops_ends_its_subscription_and_the_others_go_on(
    mesh: Mesh, stream: MuxStream
) -> None:
    assert (await mesh.add(stream, "sim", subscribe("BTC/USDT", md.CHANNEL_TRADES))).code == OK
    assert (
        await mesh.add(stream, "other", subscribe("ETH/USDT", md.CHANNEL_TRADES), target="other")
    ).code == OK
    await stream.collect(has_data(("sim", 1), ("other", 1)))
    await mesh.processes.stop(mesh.other)  # SIGTERM: the venue ends its streams, then stops
    frames = await stream.collect(lambda fs: end_of(fs, "other") is not None)
    end = end_of(frames, "other")
    assert end is not None and end.code in (OK, 14), end  # ended cleanly, or UNAVAILABLE
    assert end_of(frames, "sim") is None
    await stream.collect(has_data(("sim", 3)))
    # Subscribing to it again is refused at once, per subscription: the stream lives on.
    again = await mesh.add(stream, "other-2", subscribe("ETH/USDT", md.CHANNEL_TRADES), target="other")
    frames = await stream.collect(lambda fs: end_of(fs, "other-2") is not None)
    end = end_of(frames, "other-2")
    assert again.code == OK and end is not None and end.code == 14 and "unreachable" in end.message, end


# ---------------------------------------------------------------- who may do what


async def test_another_credential_cannot_add_to_or_remove_from_a_session(
    mesh: Mesh, stream: MuxStream
) -> None:
    added = await mesh.add(stream, "mine", subscribe("BTC/USDT", md.CHANNEL_TRADES), key=mesh.other_key)
    assert added.code == PERMISSION_DENIED and "another credential" in added.message
    assert (await mesh.add(stream, "mine", subscribe("BTC/USDT", md.CHANNEL_TRADES))).code == OK
    removed = await mux_remove(mesh.gateway, mesh.other_key, stream.session_id, "mine")
    assert removed.code == PERMISSION_DENIED
    # A Studio session token of the same key is another credential too.
    login = await asyncio.to_thread(_login, mesh.gateway, mesh.key)
    assert (await mesh.add(stream, "x", subscribe("BTC/USDT"), key=login)).code == PERMISSION_DENIED
    await stream.collect(has_data(("mine", 2)))  # still flowing
    assert await asyncio.to_thread(mesh.metric, "gateway_mux_subscriptions") == 1


def _login(gateway: Gateway, key: str) -> str:
    request = urllib.request.Request(f"{gateway.url}/api/login", data=json.dumps({"key": key}).encode())
    with urllib.request.urlopen(request, timeout=CALL_TIMEOUT_S) as reply:
        token: str = json.loads(reply.read())["token"]
    return token


async def test_an_unknown_session_is_not_found_and_no_credential_is_unauthenticated(mesh: Mesh) -> None:
    answer = await mux_add(mesh.gateway, mesh.key, "no-such-session", "a", SUBSCRIBE, b"", "sim")
    assert answer.code == NOT_FOUND and "Mux/Open" in answer.message
    answer = await mux_remove(mesh.gateway, mesh.key, "no-such-session", "a")
    assert answer.code == NOT_FOUND
    unauthenticated = await grpcweb_call(mesh.gateway, f"{MUX}/Open", b"")
    assert unauthenticated.code == UNAUTHENTICATED and unauthenticated.trailers_only


async def test_bad_input_is_invalid_argument_naming_every_bad_field(mesh: Mesh, stream: MuxStream) -> None:
    add = mux.AddRequest(session_id="", subscription_id="has space", method="Subscribe", target="Not A Name")
    answer = await grpcweb_call(mesh.gateway, f"{MUX}/Add", add.SerializeToString(), key=mesh.key)
    assert answer.code == INVALID_ARGUMENT
    assert set(violations(answer)) == {"session_id", "subscription_id", "method", "target"}
    assert "'has space'" in violations(answer)["subscription_id"]
    unary = await mux_add(
        mesh.gateway,
        mesh.key,
        stream.session_id,
        "u",
        "trademesh.marketdata.v1.MarketData/ListInstruments",
        b"",
    )
    assert unary.code == INVALID_ARGUMENT and "unary" in violations(unary)["method"]
    itself = await mux_add(mesh.gateway, mesh.key, stream.session_id, "m", f"{MUX}/Open", b"")
    assert itself.code == INVALID_ARGUMENT
    garbage = await grpcweb_call(mesh.gateway, f"{MUX}/Add", b"\xff\xff\xff", key=mesh.key)
    assert garbage.code == INVALID_ARGUMENT and "body" in violations(garbage)
    remove = mux.RemoveRequest(session_id=stream.session_id, subscription_id="")
    answer = await grpcweb_call(mesh.gateway, f"{MUX}/Remove", remove.SerializeToString(), key=mesh.key)
    assert answer.code == INVALID_ARGUMENT and set(violations(answer)) == {"subscription_id"}
    assert await asyncio.to_thread(mesh.metric, "gateway_mux_subscriptions") == 0


async def test_mesh_internal_methods_stay_refused_through_the_mux(mesh: Mesh, stream: MuxStream) -> None:
    for name in ("Register", "Heartbeat", "Unregister"):
        method = f"trademesh.registry.v1.Registry/{name}"
        answer = await mux_add(mesh.gateway, mesh.key, stream.session_id, name.lower(), method, b"")
        assert answer.code == PERMISSION_DENIED and "mesh-internal" in answer.message


async def test_routing_errors_are_answered_by_add(mesh: Mesh, stream: MuxStream) -> None:
    nobody = await mesh.add(stream, "x", subscribe("BTC/USDT", md.CHANNEL_TRADES), target="nosuchvenue")
    assert nobody.code == NOT_FOUND and "sim" in nobody.message  # names the instances that serve it
    method = "trademesh.nothing.v1.Nothing/Watch"
    unknown = await mux_add(mesh.gateway, mesh.key, stream.session_id, "y", method, b"")
    assert unknown.code == NOT_FOUND and "no live instance serves" in unknown.message


# ---------------------------------------------------------------- limits


async def test_too_many_subscriptions_is_resource_exhausted_and_a_live_id_already_exists(
    mesh: Mesh, stream: MuxStream
) -> None:
    for index in range(MAX_SUBSCRIPTIONS):
        assert (await mesh.add(stream, f"s{index}", subscribe("BTC/USDT", md.CHANNEL_TRADES))).code == OK
    more = await mesh.add(stream, "one-more", subscribe("BTC/USDT", md.CHANNEL_TRADES))
    assert more.code == RESOURCE_EXHAUSTED and f"{MAX_SUBSCRIPTIONS} live subscriptions" in more.message
    again = await mesh.add(stream, "s0", subscribe("BTC/USDT", md.CHANNEL_TRADES))
    assert again.code == ALREADY_EXISTS
    assert (await mux_remove(mesh.gateway, mesh.key, stream.session_id, "s0")).code == OK
    assert (await mesh.add(stream, "one-more", subscribe("BTC/USDT", md.CHANNEL_TRADES))).code == OK


async def test_too_many_sessions_of_one_key_is_resource_exhausted(mesh: Mesh) -> None:
    await mesh.sessions_closed()
    streams = [await open_mux(mesh.gateway, mesh.key) for _ in range(MAX_SESSIONS)]
    try:
        refused = await grpcweb_call(mesh.gateway, f"{MUX}/Open", b"", key=mesh.key)
        assert refused.code == RESOURCE_EXHAUSTED and "mux-tests" in refused.message
        # Another key has its own allowance.
        other = await open_mux(mesh.gateway, mesh.other_key)
        await other.close()
        await streams.pop().close()

        async def reopened() -> bool | None:
            attempt = await open_stream(mesh.gateway, f"{MUX}/Open", b"", key=mesh.key)
            refused = attempt.reply.headers.get("grpc-status") is not None
            await attempt.close()
            return None if refused else True

        await until(reopened, 15, 0.2, "a session closed by its client freed its place")
    finally:
        for opened in streams:
            await opened.close()
        await mesh.sessions_closed()


# ---------------------------------------------------------------- ends


async def test_a_client_that_goes_away_cancels_every_upstream_call(mesh: Mesh) -> None:
    await mesh.sessions_closed()
    stream = await open_mux(mesh.gateway, mesh.key)
    try:
        for sid, symbol in (("a", "BTC/USDT"), ("b", "ETH/USDT"), ("c", "SOL/USDT")):
            assert (
                await mesh.add(stream, sid, subscribe(symbol, md.CHANNEL_TRADES, md.CHANNEL_BOOK))
            ).code == OK
        await stream.collect(has_data(("a", 1), ("b", 1), ("c", 1)))
        assert await subscribers(mesh.sim) == 3
    finally:
        await stream.close()  # the connection drops mid-stream, as when a tab closes
    await until_subscribers(mesh.sim, 0)
    await mesh.sessions_closed()
    assert await asyncio.to_thread(mesh.metric, "gateway_mux_subscriptions") == 0


async def test_revoking_the_key_ends_its_sessions(mesh: Mesh, module_database: str) -> None:
    key = await create_key(module_database, "mux-revoked")
    await key_known(mesh.gateway, key)
    stream = await open_mux(mesh.gateway, key)
    try:
        request = subscribe("BTC/USDT", md.CHANNEL_TRADES)
        added = await mux_add(mesh.gateway, key, stream.session_id, "a", SUBSCRIBE, request, "sim")
        assert added.code == OK
        await stream.collect(has_data(("a", 1)))
        await asyncio.to_thread(_revoke, module_database, "mux-revoked")
        _, trailers = await asyncio.wait_for(stream.stream.rest(), 20)
        assert trailers["grpc-status"] == str(UNAUTHENTICATED), trailers
        assert "revoked" in urllib.parse.unquote(trailers.get("grpc-message", ""))
    finally:
        await stream.close()
    await until_subscribers(mesh.sim, 0)


async def key_known(gateway: Gateway, key: str) -> None:
    """Waits until the gateway knows a key made a moment ago (it re-reads keys at most once a
    second on a miss, and every 2 s anyway)."""

    async def known() -> bool | None:
        request = reg.ListServicesRequest().SerializeToString()
        answer = await grpcweb_call(gateway, "trademesh.registry.v1.Registry/ListServices", request, key=key)
        return True if answer.code == OK else None

    await until(known, 15, 0.2, "the new key known to the gateway")


def _revoke(database: str, name: str) -> None:
    done = run_command(["keys", "revoke", name], {**os.environ, DATABASE_URL: database}, timeout_s=60)
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------- third-party clients


async def test_buf_curl_opens_a_session_and_adds_a_subscription(mesh: Mesh, stream: MuxStream) -> None:
    opened = await buf_curl(mesh.gateway, f"{MUX}/Open", "--timeout", "2s", key=mesh.key)
    first = parse_json_stream(opened.stdout)[0]
    assert first["opened"]["maxSubscriptions"] == MAX_SUBSCRIPTIONS and first["opened"]["sessionId"]
    request = {
        "sessionId": stream.session_id,
        "subscriptionId": "from-buf",
        "method": SUBSCRIBE,
        "target": "sim",
        "request": _b64encode(subscribe("BTC/USDT", md.CHANNEL_TRADES)),
    }
    added = await buf_curl(mesh.gateway, f"{MUX}/Add", "-d", json.dumps(request), key=mesh.key)
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout) == {"subscriptionId": "from-buf"}
    frames = await stream.collect(has_data(("from-buf", 1)))
    assert data_of(frames, "from-buf")[0].events[0].symbol == "BTC/USDT"


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------- a client that reads too slowly


class SlowClient:
    """A Mux/Open stream on a raw socket with a tiny receive buffer, read only when asked: the
    gateway's writes back up at once, as to a stalled tab, instead of filling megabytes of
    kernel buffers first."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.body = b""

    @classmethod
    async def open(cls, gateway: Gateway, key: str) -> SlowClient:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", gateway.service.port))
        reader, writer = await asyncio.open_connection(sock=sock, limit=1024)
        body = frame(b"")
        head = (
            f"POST /{MUX}/Open HTTP/1.1\r\nHost: 127.0.0.1\r\ncontent-type: application/grpc-web+proto\r\n"
            f"x-grpc-web: 1\r\nauthorization: Bearer {key}\r\ncontent-length: {len(body)}\r\n\r\n"
        )
        writer.write(head.encode() + body)
        await writer.drain()
        head_text = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), CALL_TIMEOUT_S)).decode()
        assert head_text.startswith("HTTP/1.1 200") and "chunked" in head_text.lower(), head_text
        return cls(reader, writer)

    async def frames(self, done: Callable[[Sequence[mux.OpenResponse]], bool]) -> list[mux.OpenResponse]:
        """Reads (de-chunking the body) until `done(frames)`."""
        found: list[mux.OpenResponse] = []
        while not done(found):
            size = int((await asyncio.wait_for(self.reader.readline(), CALL_TIMEOUT_S)).strip(), 16)
            assert size > 0, f"the stream ended after {summarize(found)}"
            self.body += await asyncio.wait_for(self.reader.readexactly(size + 2), CALL_TIMEOUT_S)
            self.body = self.body[:-2]
            messages, trailers, self.body = parse_frames(self.body)
            assert not trailers, trailers
            found += [mux.OpenResponse.FromString(m) for m in messages]
        return found

    def close(self) -> None:
        self.writer.close()


async def test_a_slow_client_loses_the_subscriptions_that_overflow_and_keeps_its_session(
    mesh: Mesh,
) -> None:
    services = "trademesh.marketdata.v1.MarketData,trademesh.tradeflow.v1.TradeFlow,trademesh.admin.v1.Admin"
    queue_bytes = 16 * 1024
    gateway = mesh.processes.gateway(
        "--mux-max-queued-bytes", str(queue_bytes), "--upstream", f"sim={services}@{mesh.sim.address}"
    )
    slow = await SlowClient.open(gateway, mesh.key)
    hot = [f"hot-{index}" for index in range(HOT_SUBSCRIPTIONS)]
    try:
        opened = (await slow.frames(lambda fs: len(fs) >= 1))[0].opened
        assert opened.max_queued_bytes == queue_bytes
        add = functools.partial(mux_add, gateway, mesh.key, opened.session_id)
        executions = "trademesh.tradeflow.v1.TradeFlow/StreamExecutions"
        quiet = tf.StreamExecutionsRequest().SerializeToString()
        assert (await add("quiet", executions, quiet, "sim")).code == OK
        # The same busy market many times over: megabytes a second, as a tab with many panels.
        book = md.SubscribeRequest(
            symbols=["BTC/USDT", "ETH/USDT", "SOL/USDT"], channels=[md.CHANNEL_BOOK, md.CHANNEL_TRADES]
        ).SerializeToString()
        for subscription_id in hot:
            assert (await add(subscription_id, SUBSCRIBE, book, "sim")).code == OK

        def overflowed() -> bool | None:
            with urllib.request.urlopen(f"{gateway.url}/metrics", timeout=CALL_TIMEOUT_S) as reply:
                text = reply.read().decode()
            ended = metric_samples(text, "gateway_mux_subscriptions_ended_total")
            return True if ended.get('{grpc_code="RESOURCE_EXHAUSTED"}', 0) >= 1 else None

        # Nothing is read meanwhile: the session's queue fills and subscriptions are cut.
        await until(lambda: asyncio.to_thread(overflowed), 60, 0.2, "a subscription cut for falling behind")
        frames = await slow.frames(lambda fs: any(end_of(fs, sid) is not None for sid in hot))
        ends = [end for end in (end_of(frames, sid) for sid in hot) if end is not None]
        assert ends and all(e.code == RESOURCE_EXHAUSTED and "fell behind" in e.message for e in ends), ends
        assert end_of(frames, "quiet") is None
        # The session lives on: the quiet subscription, and a new one that delivers once read.
        for subscription_id in hot:
            await mux_remove(gateway, mesh.key, opened.session_id, subscription_id)
        assert (await add("again", SUBSCRIBE, subscribe("BTC/USDT", md.CHANNEL_TRADES), "sim")).code == OK
        later = await slow.frames(lambda fs: len(data_of(fs, "again")) >= 1)
        assert end_of(later, "quiet") is None and end_of(later, "again") is None
    finally:
        slow.close()
        await mesh.processes.stop(gateway.service)
    await until_subscribers(mesh.sim, 0)
