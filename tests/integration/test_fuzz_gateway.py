"""Fuzz the gateway's HTTP edge (issue 12, "in CI from now on"): gRPC-web, login, MCP, /metrics
and Studio's files, through a real gateway process with a sim venue and a bridge behind it.

For every method the venue, the bridge and the gateway's registry serve (from reflection), and
the gateway's own multiplexer, hypothesis builds gRPC-web calls (tests.integration.web_fuzz):
requests of the method's input type or raw bytes, framed well or badly (wrong lengths, the
compressed or trailers flag, two frames, none), binary or base64 text, with odd content-types,
header values and paths; Mux subscriptions of any method, target and request; clients that
hang up mid-request. Requests are written byte for byte on a socket (tests.integration.raw_http,
raw_h2), so nothing a client library would refuse to send goes untested.

No answer may be an HTTP 5xx, a gRPC UNKNOWN (2) or INTERNAL (13), or an MCP tool crash; after
each test the gateway is SERVING, its memory grew by less than a bound, its log has no
traceback, and every metric label names a served method (or other/other). A thousand distinct
garbage method names, over gRPC-web and on the native gRPC port, add no Prometheus series.
"""

from __future__ import annotations

import asyncio
import json
import re
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_scale import scaled
from tests.integration.fuzz_pools import NESTED_JSON
from tests.integration.fuzz_support import (
    Method,
    body_strategy,
    json_values,
    methods_of,
    read_rss_kib,
    sample,
)
from tests.integration.gateway_support import (
    MESH_AUTH,
    Gateway,
    Processes,
    both,
    key_taken,
    list_instances,
    new_key,
    run_at_once,
)
from tests.integration.mcp_fuzz import tool_outcome
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.raw_h2 import grpc_call
from tests.integration.raw_http import (
    RawAnswer,
    RawStream,
    abandon,
    grpcweb_frames,
    grpcweb_status,
    request,
    send,
)
from tests.integration.redis_server import redis_url
from tests.integration.support import metric_samples, until
from tests.integration.web_fuzz import (
    CONTENT_TYPES,
    ODD_TARGETS,
    WebCall,
    framed,
    odd_header,
    path_part,
    spliced,
    web_call,
)
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.logs.v1 import logs_pb2, logs_pb2_grpc
from trademesh.mux.v1 import mux_pb2

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)

__all__ = ["database_url", "redis_url"]  # fixtures

# Through the gateway, the effect would end the fuzzing itself: a drained venue refuses the rest.
SKIPPED = {"/trademesh.admin.v1.Admin/Drain"}
EXAMPLES_PER_METHOD = scaled(30)
# gRPC-web calls on their way at once (the gateway takes many more from one key).
CALLS_AT_ONCE = 8
EXAMPLES_PER_EDGE = scaled(400)
# The gateway's resident memory may grow this much over the whole module (caches warming up;
# a whole run grows it by about 4 MiB).
RSS_GROWTH_KIB = 64 * 1024
GARBAGE_CALLS = scaled(1000)
# grpc-status values no answer may carry: UNKNOWN, INTERNAL.
FORBIDDEN_CODES = {2, 13}


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )


@dataclass(frozen=True)
class Target:
    """A method and the instance that serves it ("" for the gateway's own services)."""

    instance: str
    method: Method


@dataclass
class Mesh:
    gateway: Gateway
    key: str
    targets: list[Target]
    rss_kib: int
    # Each target's request strategy, made once for the module (made at every draw, it cost
    # hypothesis more than the call it drew).
    bodies: dict[Target, st.SearchStrategy[bytes]] = field(init=False)

    def __post_init__(self) -> None:
        self.bodies = {target: body_strategy(target.method) for target in self.targets}

    @property
    def port(self) -> int:
        return self.gateway.service.port

    def calls(self, targets: st.SearchStrategy[Target]) -> st.SearchStrategy[tuple[Target, bytes]]:
        """A target drawn from `targets`, and a request of its method."""
        return targets.flatmap(lambda target: st.tuples(st.just(target), self.bodies[target]))


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> AsyncIterator[Mesh]:
    directory = tmp_path_factory.mktemp("fuzz-gateway")
    studio = directory / "studio"
    (studio / "assets").mkdir(parents=True)
    (studio / "index.html").write_text("<!doctype html><title>studio</title>")
    (studio / "assets" / "app.js").write_text("console.log('studio')")
    async with new_database(database_url, "fuzzgw") as database, redis_db(redis_url) as bus:
        processes = Processes(directory, database)

        def start() -> tuple[Gateway, ServiceProcess, ServiceProcess]:
            # With the bus: Logs/Tail reads its `logs` stream (many following tails of one key).
            gateway = processes.gateway("--studio-dir", str(studio), "--redis-url", bus)
            sim, bridge = run_at_once(
                lambda: processes.sim(gateway),
                lambda: processes.mesh_service(gateway, "bridge", redis_url=bus),
            )
            return gateway, sim, bridge

        try:
            # The key is made (its CLI's start) while the mesh starts.
            key, (gateway, sim, bridge) = await both(lambda: new_key(database, "fuzz"), start)
            await _registered(gateway, {"sim", "bridge"})
            await _heartbeat_counted(gateway)
            await key_taken(gateway, key)
            targets = await asyncio.to_thread(_targets, gateway, sim, bridge)
            yield Mesh(gateway, key, targets, read_rss_kib(gateway.service.process.pid))
        finally:
            await processes.stop_all()


async def _registered(gateway: Gateway, names: set[str]) -> None:
    async def check() -> bool | None:
        return True if names <= set(await list_instances(gateway)) else None

    await until(check, 30, what=f"{names} registered with the gateway")


async def _heartbeat_counted(gateway: Gateway) -> None:
    """Until the registry's Heartbeat has its series: the services' first heartbeat comes an
    interval after they register, and a series it adds mid-test would be taken for one the
    test's odd calls made (a run of that test alone failed so)."""

    async def check() -> bool | None:
        answer = await asyncio.to_thread(request, gateway.service.port, b"GET", b"/metrics")
        return True if b'grpc_method="Heartbeat"' in answer.body else None

    await until(check, 30, what="a heartbeat counted by the gateway")


def _targets(gateway: Gateway, sim: ServiceProcess, bridge: ServiceProcess) -> list[Target]:
    found = [Target("sim", m) for m in methods_of(sim.address)]
    found += [Target("bridge", m) for m in methods_of(bridge.address)]
    found += [Target("gateway", m) for m in methods_of(gateway.grpc_address)]
    mux = mux_pb2.DESCRIPTOR.services_by_name["Mux"]
    found += [Target("", Method(f"/{mux.full_name}/{m.name}", m)) for m in mux.methods]
    return [t for t in found if t.method.path not in SKIPPED]


# ---------------------------------------------------------------- requests and answers


def _stream_answered(answer: RawAnswer) -> bool:
    """An open stream has told enough once it has a status or a first whole frame."""
    return grpcweb_status(answer) is not None or bool(grpcweb_frames(answer))


def _post(
    mesh: Mesh, path: bytes, headers: list[tuple[bytes, bytes]], body: bytes, method: bytes = b"POST"
) -> RawAnswer:
    return request(mesh.port, method, path, headers, body, enough=_stream_answered)


def _check(answer: RawAnswer, what: object) -> None:
    assert answer.status < 500, f"HTTP {answer.status} to {what}: {answer.body[:300]!r}"
    grpc_answer = (answer.header("content-type") or b"").startswith(b"application/grpc")
    code = grpcweb_status(answer) if grpc_answer else None
    assert code not in FORBIDDEN_CODES, f"grpc-status {code} ({answer.header('grpc-message')!r}) to {what}"


def _web_headers(mesh: Mesh, instance: str, content_type: str) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"content-type", content_type.encode("latin-1")),
        (b"x-grpc-web", b"1"),
        (b"authorization", f"Bearer {mesh.key}".encode()),
    ]
    if instance:
        headers.append((b"x-trademesh-target", instance.encode()))
    return headers


def _replace(headers: list[tuple[bytes, bytes]], name: bytes, value: bytes) -> list[tuple[bytes, bytes]]:
    return [*(h for h in headers if h[0] != name), (name, value)]


# ---------------------------------------------------------------- health, memory, the log


def _gateway_fine(mesh: Mesh) -> None:
    """SERVING (natively and over gRPC-web), no stream left open, labels from the closed set,
    memory within the bound, no traceback or error logged."""
    with grpc.insecure_channel(mesh.gateway.grpc_address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    body = health_pb2.HealthCheckRequest().SerializeToString()
    answer = _post(
        mesh,
        b"/grpc.health.v1.Health/Check",
        [(b"content-type", b"application/grpc-web+proto"), (b"x-trademesh-target", b"gateway")],
        framed(body),
    )
    [(flag, message), *_] = grpcweb_frames(answer)
    assert flag == 0 and health_pb2.HealthCheckResponse.FromString(message).status == reply.SERVING
    _until_no_streams_open(mesh)
    unknown = _labelled_methods(mesh) - {t.method.path for t in mesh.targets} - {"/other/other"}
    assert not unknown, f"metric labels name methods nobody serves: {sorted(unknown)[:10]}"
    grown = read_rss_kib(mesh.gateway.service.process.pid) - mesh.rss_kib
    assert grown < RSS_GROWTH_KIB, f"the gateway's memory grew by {grown} KiB"
    log = mesh.gateway.log()
    assert "Traceback" not in log, log[max(0, log.index("Traceback") - 300) :][:4000]
    errors = [line for line in log.splitlines() if " ERROR " in line]
    assert not errors, errors[:10]


# Gauges of what clients hold open; every client of these tests has hung up.
_OPEN_GAUGES = ("gateway_grpcweb_open_streams", "gateway_mux_sessions", "gateway_mux_subscriptions")


def _until_no_streams_open(mesh: Mesh) -> None:
    deadline = time.monotonic() + 5
    while True:
        text = request(mesh.port, b"GET", b"/metrics").body.decode()
        held = {name: sum(metric_samples(text, name).values()) for name in _OPEN_GAUGES}
        if not any(held.values()):
            return
        assert time.monotonic() < deadline, f"streams still open 5 s after their clients left: {held}"
        time.sleep(0.1)


_LABELLED_METHOD = re.compile(r'grpc_method="([^"]*)",grpc_service="([^"]*)"')


def _labelled_methods(mesh: Mesh) -> set[str]:
    """The methods the gateway's metrics have labels for, as /<service>/<method>."""
    found = (_LABELLED_METHOD.findall(series) for series in _series(mesh))
    return {f"/{service}/{method}" for labels in found for method, service in labels}


def _settled_series(mesh: Mesh) -> set[str]:
    """The series once earlier calls' late ends (clients that hung up, streams cancelled) have
    added theirs: the same twice, half a second apart."""
    deadline = time.monotonic() + 10
    found = _series(mesh)
    while True:
        time.sleep(0.5)
        found, previous = _series(mesh), found
        if found == previous:
            return found
        assert time.monotonic() < deadline, "the gateway's series kept changing with no calls"


def _series(mesh: Mesh) -> set[str]:
    """The gateway's Prometheus series (name and labels, without values)."""
    answer = request(mesh.port, b"GET", b"/metrics")
    assert answer.status == 200
    lines = answer.body.decode().splitlines()
    return {line.rpartition(" ")[0] for line in lines if line and not line.startswith("#")}


# ---------------------------------------------------------------- the tests


def test_grpcweb_calls_to_every_method_get_no_5xx_unknown_or_internal(mesh: Mesh) -> None:
    methods = {t.method.path for t in mesh.targets}
    assert len(methods) >= 15, sorted(methods)
    # Each method's calls drawn while the ones drawn before are on their way, CALLS_AT_ONCE at a
    # time: a stream that answers nothing waits out its deadline beside the others, not before.
    with ThreadPoolExecutor(max_workers=CALLS_AT_ONCE, thread_name_prefix="web-call") as pool:
        sent = [
            pool.submit(_web_call, mesh, target, web)
            for target in mesh.targets
            for web in sample(web_call(mesh.bodies[target]), EXAMPLES_PER_METHOD)
        ]
    seen = Counter(future.result() for future in sent)
    # The fuzzing reached the services: some calls were refused as bad input, some went through.
    assert 3 in seen and 0 in seen, seen
    _gateway_fine(mesh)


def _web_call(mesh: Mesh, target: Target, web: WebCall) -> int | None:
    """The call's grpc-status, once checked (_check)."""
    headers = _web_headers(mesh, target.instance, web.content_type) + list(web.extra)
    if target.method.server_streaming and not web.extra:
        # A stream with nothing to send yet would stay open: its deadline ends it.
        headers.append((b"grpc-timeout", b"1S"))
    answer = _post(mesh, target.method.path.encode(), headers, web.body)
    _check(answer, (target.method.path, web))
    return grpcweb_status(answer)


def test_mux_subscriptions_of_any_method_target_and_request_end_without_unknown_or_internal(
    mesh: Mesh,
) -> None:
    """One Mux session; hypothesis adds subscriptions to it (removing each that was taken)."""
    headers = _web_headers(mesh, "", "application/grpc-web+proto")
    session = _MuxSession.open(mesh, headers)
    try:
        answered = session.fuzz(mesh, headers)
        ends = session.ends(answered.get(0, 0))
    finally:
        session.close()
    assert 0 in answered and 3 in answered, answered
    # Each subscription taken ended once (the fuzz removed it, if it did not end first).
    assert len(ends) == answered[0], (len(ends), answered)
    assert not [e for e in ends if e.code in FORBIDDEN_CODES], [e for e in ends if e.code in FORBIDDEN_CODES]
    _gateway_fine(mesh)


class _MuxSession:
    """A Mux/Open stream read on a thread of its own (so the session never counts as slow)."""

    def __init__(self, stream: RawStream, session_id: str) -> None:
        self.stream = stream
        self.session_id = session_id
        self.added = 0
        self._stop = threading.Event()
        self._answer: RawAnswer | None = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    @classmethod
    def open(cls, mesh: Mesh, headers: list[tuple[bytes, bytes]]) -> _MuxSession:
        body = mux_pb2.OpenRequest().SerializeToString()
        stream = send(mesh.port, b"POST", b"/trademesh.mux.v1.Mux/Open", headers, framed(body))
        first = stream.read(lambda answer: bool(grpcweb_frames(answer)))
        opened = mux_pb2.OpenResponse.FromString(grpcweb_frames(first)[0][1])
        assert opened.WhichOneof("frame") == "opened", opened
        return cls(stream, opened.opened.session_id)

    def _read(self) -> None:
        while not self._stop.is_set():
            self._answer = self.stream.read_for(0.2)
            if self._answer is not None and self._answer.complete:
                return

    def fuzz(self, mesh: Mesh, headers: list[tuple[bytes, bytes]]) -> dict[int | None, int]:
        streams = [t for t in mesh.targets if t.method.server_streaming and not t.method.client_streaming]
        others = [t for t in mesh.targets if t not in streams]
        instances = st.sampled_from(["", "sim", "bridge", "gateway", "nope", "Not A Name", "sim\x00"])
        answered: dict[int | None, int] = {}

        @_settings(EXAMPLES_PER_EDGE)
        @given(mesh.calls(st.one_of(st.sampled_from(streams), st.sampled_from(others))), instances,
               st.sampled_from(["", "", "/", "x", "%00", "\x00"]))  # fmt: skip
        def add(call: tuple[Target, bytes], instance: str, suffix: str) -> None:
            target, request = call
            code = self.add(mesh, headers, target.method.path + suffix, instance or target.instance, request)
            answered[code] = answered.get(code, 0) + 1

        add()
        return answered

    def add(
        self, mesh: Mesh, headers: list[tuple[bytes, bytes]], method: str, instance: str, request: bytes
    ) -> int | None:
        self.added += 1
        subscription = f"f{self.added}"
        add = mux_pb2.AddRequest(
            session_id=self.session_id, subscription_id=subscription, method=method, target=instance,
            request=request,
        )  # fmt: skip
        body = add.SerializeToString()
        answer = _post(mesh, b"/trademesh.mux.v1.Mux/Add", headers, framed(body))
        _check(answer, add)
        code = grpcweb_status(answer)
        if code == 0:
            remove = mux_pb2.RemoveRequest(session_id=self.session_id, subscription_id=subscription)
            body = remove.SerializeToString()
            _check(
                _post(mesh, b"/trademesh.mux.v1.Mux/Remove", headers, framed(body)),
                remove,
            )
        return code

    def ends(self, taken: int) -> list[Any]:
        """The session's End frames once there are `taken` of them, or 10 s have passed (its
        stream must still be open)."""
        deadline = time.monotonic() + 10
        while True:
            answer = self._answer  # None until the reader first sees a pause in the frames
            frames = [] if answer is None else grpcweb_frames(answer)
            responses = [mux_pb2.OpenResponse.FromString(p) for flag, p in frames if flag == 0]
            ends = [r.end for r in responses if r.WhichOneof("frame") == "end"]
            if len(ends) >= taken or time.monotonic() > deadline:
                assert answer is not None and not answer.complete, answer
                return ends
            time.sleep(0.05)

    def close(self) -> None:
        self._stop.set()
        self._reader.join(5)
        self.stream.close()


def test_clients_that_hang_up_mid_request_leave_the_gateway_fine(mesh: Mesh) -> None:
    @_settings(EXAMPLES_PER_EDGE // 4)
    @given(mesh.calls(st.sampled_from(mesh.targets)), st.floats(0, 1))
    def call(call: tuple[Target, bytes], cut: float) -> None:
        target, message = call
        body = framed(message)
        headers = _web_headers(mesh, target.instance, "application/grpc-web+proto")
        abandon(mesh.port, target.method.path.encode(), headers, body, int(len(body) * cut))

    call()
    # The gateway notices the last hang-ups: nothing it exposes counts an abandoned request, and
    # it handles connections concurrently (no later probe is a marker), so a quiet period before
    # its log is read for errors.
    time.sleep(0.5)
    _gateway_fine(mesh)


def test_odd_header_values_content_types_and_paths_get_no_5xx(mesh: Mesh) -> None:
    paths = [t.method.path.encode() for t in mesh.targets if not t.method.descriptor.server_streaming]
    body = framed(b"")

    @_settings(EXAMPLES_PER_EDGE)
    @given(
        st.sampled_from(paths),
        st.sampled_from(CONTENT_TYPES),
        st.lists(odd_header(), max_size=3),
    )
    def call(path: bytes, content_type: str, odd: list[tuple[bytes, bytes]]) -> None:
        headers = _web_headers(mesh, "sim", content_type)
        for name, value in odd:
            headers = _replace(headers, name, value)
        _check(_post(mesh, path, headers, body), (path, content_type, odd))

    call()
    _gateway_fine(mesh)


def test_odd_paths_and_http_methods_get_no_5xx(mesh: Mesh) -> None:
    real = [t.method.path.encode() for t in mesh.targets]
    # A real method's path with something added to its service or method name.
    near = st.builds(spliced, st.sampled_from(real), path_part(), st.booleans())
    anywhere = st.lists(path_part(), min_size=0, max_size=4).map(lambda parts: b"/" + b"/".join(parts))

    @_settings(EXAMPLES_PER_EDGE)
    @given(
        st.one_of(near, anywhere, st.sampled_from(ODD_TARGETS)),
        st.sampled_from([b"POST", b"POST", b"GET", b"OPTIONS", b"PUT", b"HEAD", b"DELETE"]),
        st.sampled_from(["application/grpc-web+proto", "application/grpc-web-text", "text/html"]),
    )
    def call(path: bytes, method: bytes, content_type: str) -> None:
        # A real stream's path: its deadline ends it when it has nothing to send.
        headers = [*_web_headers(mesh, "sim", content_type), (b"grpc-timeout", b"1S")]
        answer = request(mesh.port, method, path, headers, framed(b""), enough=_stream_answered)
        _check(answer, (method, path[:300]))

    call()
    _gateway_fine(mesh)


def test_login_bodies_get_no_5xx(mesh: Mesh) -> None:
    bodies = st.one_of(
        st.binary(max_size=200),
        json_values().map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries({"key": json_values()}).map(lambda v: json.dumps(v).encode()),
        st.just(json.dumps({"key": mesh.key}).encode()),
        st.sampled_from(NESTED_JSON).map(str.encode),  # under 4 KiB or not: a 400, never a 500
    )

    @_settings(EXAMPLES_PER_EDGE)
    @given(bodies, st.sampled_from([b"application/json", b"text/plain", b"\xff", b""]))
    def call(body: bytes, content_type: bytes) -> None:
        answer = request(mesh.port, b"POST", b"/api/login", [(b"content-type", content_type)], body)
        assert answer.status < 500, (body[:200], answer.status, answer.body[:300])

    call()
    _gateway_fine(mesh)


def test_mcp_requests_and_tool_arguments_get_no_5xx(mesh: Mesh) -> None:
    tools = _mcp(mesh, {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})["result"]["tools"]
    assert len(tools) >= 5, tools
    messages = st.one_of(
        st.tuples(
            st.sampled_from(tools), st.dictionaries(st.text(max_size=10), json_values(), max_size=3)
        ).map(lambda t: _tool_call(t[0], t[1])),
        st.builds(_tool_call, st.sampled_from(tools), st.none()),
        json_values(),
        st.builds(_nested_call, st.sampled_from(tools), st.sampled_from(NESTED_JSON)),
    )

    outcomes: dict[str, int] = {}

    @_settings(EXAMPLES_PER_EDGE)
    @given(messages)
    def call(message: Any) -> None:
        body = message if isinstance(message, bytes) else json.dumps(message).encode()
        answer = _mcp_raw(mesh, body)
        assert answer.status < 500, (body[:300], answer.status, answer.body[:300])
        if answer.status == 200 and isinstance(message, dict) and message.get("method") == "tools/call":
            outcome = tool_outcome(json.loads(answer.body))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            assert outcome != "crash", (message, answer.body[:500])

    call()
    # Some calls reached the tools and answered, some were refused as the model's mistakes.
    assert outcomes.get("answer") and outcomes.get("refused"), outcomes
    _gateway_fine(mesh)


def _nested_call(tool: dict[str, Any], nested: str) -> bytes:
    """A call of `tool` whose first argument is `nested` (JSON no json.dumps of ours makes)."""
    names = list(tool.get("inputSchema", {}).get("properties", {})) or ["x"]
    params = {"name": tool["name"], "arguments": {names[0]: "__nested__"}}
    message = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}
    return json.dumps(message).replace('"__nested__"', nested).encode()


def _tool_call(tool: dict[str, Any], noise: dict[str, Any] | None) -> dict[str, Any]:
    """A call of `tool` with arguments of roughly the right names (and odd values)."""
    names = list(tool.get("inputSchema", {}).get("properties", {}))
    arguments: dict[str, Any] = {name: "sim" if name == "venue" else "BTC/USDT" for name in names}
    for i, (name, value) in enumerate((noise or {}).items()):
        arguments[names[i % len(names)] if names else name] = value
    params = {"name": tool["name"], "arguments": arguments}
    return {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": params}


def _mcp_raw(
    mesh: Mesh,
    body: bytes,
    odd: list[tuple[bytes, bytes]] | None = None,
    method: bytes = b"POST",
    head_only: bool = False,
) -> RawAnswer:
    """The answer to a request at /mcp; `head_only`: its status line and headers (an SSE stream
    may not end)."""
    headers = [
        (b"authorization", f"Bearer {mesh.key}".encode()),
        (b"accept", b"application/json, text/event-stream"),
        (b"content-type", b"application/json"),
    ]
    for name, value in odd or ():
        headers = _replace(headers, name, value)
    return request(mesh.port, method, b"/mcp", headers, body, enough=(lambda _: True) if head_only else None)


def test_mcp_requests_with_odd_headers_and_http_methods_get_no_5xx(mesh: Mesh) -> None:
    listing = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}).encode()
    names = st.sampled_from([b"accept", b"content-type", b"mcp-protocol-version", b"mcp-session-id",
                             b"authorization", b"last-event-id", b"origin"])  # fmt: skip
    values = st.one_of(
        st.sampled_from([b"", b"*/*", b"text/event-stream", b"application/json", b"2025-06-18",
                         b"1999-01-01", b"Bearer " + mesh.key.encode(), b"\xff"]),
        st.binary(max_size=40).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    )  # fmt: skip

    @_settings(EXAMPLES_PER_EDGE // 2)
    @given(st.lists(st.tuples(names, values), max_size=3), st.sampled_from([b"POST", b"GET", b"DELETE"]))
    def call(odd: list[tuple[bytes, bytes]], method: bytes) -> None:
        answer = _mcp_raw(mesh, listing if method == b"POST" else b"", odd, method, head_only=True)
        assert answer.status < 500, (odd, method, answer.status, answer.body[:300])

    call()
    _gateway_fine(mesh)


def _mcp(mesh: Mesh, message: dict[str, Any]) -> Any:
    answer = _mcp_raw(mesh, json.dumps(message).encode())
    assert answer.status == 200, answer
    return json.loads(answer.body)


def test_studio_files_and_metrics_answer_odd_gets_without_5xx(mesh: Mesh) -> None:
    @_settings(EXAMPLES_PER_EDGE)
    @given(st.lists(path_part(), min_size=1, max_size=3), st.sampled_from([b"", b"?x=%00", b"?\xff"]))
    def call(parts: list[bytes], query: bytes) -> None:
        for prefix in (b"/", b"/assets/", b"/metrics/"):
            path = prefix + b"/".join(parts) + query
            answer = request(mesh.port, b"GET", path)
            assert answer.status < 500, (path[:300], answer.status, answer.body[:300])

    call()
    assert request(mesh.port, b"GET", b"/metrics?%FF%00").status == 200
    _gateway_fine(mesh)


def test_studio_files_answer_odd_conditional_and_range_headers_without_5xx(mesh: Mesh) -> None:
    names = st.sampled_from(
        [b"range", b"if-range", b"if-none-match", b"if-modified-since", b"accept-encoding"]
    )
    values = st.one_of(
        st.sampled_from([b"bytes=0-0", b"bytes=-1", b"bytes=5-1", b"bytes=0-0,1-1,2-2", b"bytes=99999999-",
                         b"bytes=-0", b"bytes=0-", b"bytes=", b"bytes=a-b", b"items=0-1", b"bytes=0-0,,",
                         b"bytes=18446744073709551616-", b"*", b'"x"', b"Thu, 01 Jan 1970 00:00:00 GMT",
                         b"gzip, br;q=2"]),
        st.text("bytes=0123456789-, ", max_size=30).map(str.encode),
        st.binary(max_size=30).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b"")),
    )  # fmt: skip

    @_settings(EXAMPLES_PER_EDGE)
    @given(st.sampled_from([b"/", b"/assets/app.js", b"/index.html", b"/a/route"]),
           st.lists(st.tuples(names, values), min_size=1, max_size=3))  # fmt: skip
    def call(path: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        for method in (b"GET", b"HEAD"):
            answer = request(mesh.port, method, path, headers)
            assert answer.status < 500, (method, path, headers, answer.status, answer.body[:300])

    call()
    _gateway_fine(mesh)


def _garbage_names(count: int, salt: str) -> list[bytes]:
    shapes: list[Callable[[int], bytes]] = [
        lambda i: f"/trademesh.marketdata.v1.MarketData/Nope{salt}{i}".encode(),
        lambda i: f"/no.such.Service{salt}{i}/Method".encode(),
        lambda i: f"/grpc.health.v1.Health/Check%00{salt}{i}".encode(),
        lambda i: f"/grpc.health.v1.Health/Check%C3%A9{salt}{i}".encode(),
        lambda i: f"/trademesh.mux.v1.Mux/Add{salt}{i}".encode(),
    ]
    return [shapes[i % len(shapes)](i) for i in range(count)]


def test_distinct_garbage_method_names_add_no_metric_series(mesh: Mesh) -> None:
    body = framed(b"")
    for authorized in (True, False):
        headers = _web_headers(mesh, "sim", "application/grpc-web+proto")
        if not authorized:
            headers = _replace(headers, b"authorization", b"Bearer nope")
        for path in _garbage_names(10, "warm"):
            _check(_post(mesh, path, headers, body), path)
    before = _settled_series(mesh)
    headers = _web_headers(mesh, "sim", "application/grpc-web+proto")
    for path in _garbage_names(GARBAGE_CALLS, "x"):
        _check(_post(mesh, path, headers, body), path)
    added = _settled_series(mesh) - before
    assert not added, sorted(added)[:20]
    _gateway_fine(mesh)


def test_a_path_that_names_no_protobuf_method_is_invalid_argument(mesh: Mesh) -> None:
    """%00 once made Check%00junk count as Check (its labels, its shape) and went upstream."""
    headers = _web_headers(mesh, "gateway", "application/grpc-web+proto")
    health = b"/grpc.health.v1.Health"
    for path in (health + b"/Check%00junk", health + b"%00/Check", health + b"/Check%C3%A9",
                 health + b"/Check%20", b"/Health/a.b"):  # fmt: skip
        answer = _post(mesh, path, headers, framed(b""))
        assert grpcweb_status(answer) == grpc.StatusCode.INVALID_ARGUMENT.value[0], (path, answer)
        assert b"path" in (answer.header("grpc-message") or b""), answer


def test_odd_method_names_on_the_native_grpc_port_add_no_metric_series(mesh: Mesh) -> None:
    port = int(mesh.gateway.service.info["grpc_port"])
    services = ["grpc.health.v1.Health/Check", "trademesh.registry.v1.Registry/ListServices",
                "grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"]  # fmt: skip
    suffixes = [b"\x00", b"\x00junk", b"%00", b"\xc3\xa9", b"/x", b" ", b"\x7f"]

    def paths(salt: str, count: int) -> list[bytes]:
        return [f"/{services[i % 3]}".encode() + suffixes[i % len(suffixes)] + f"{salt}{i}".encode()
                for i in range(count)]  # fmt: skip

    for path in [f"/{s}".encode() + suffix for s in services for suffix in suffixes] + paths("warm", 30):
        grpc_call(port, path, b"")
    before = _settled_series(mesh)
    checks = _settled_checks(mesh)
    for path in paths("x", GARBAGE_CALLS // 2):
        assert grpc_call(port, path, b"") == "end", path
    added = _settled_series(mesh) - before
    assert not added, sorted(added)[:20]
    # None of them reached a handler (not even Check's, by a name cut at its NUL) ...
    assert _started_checks(mesh) == checks
    # ... while the raw client's well-formed call does.
    assert grpc_call(port, b"/grpc.health.v1.Health/Check", b"") == "end"
    assert _started_checks(mesh) == checks + 1
    _gateway_fine(mesh)


def _settled_checks(mesh: Mesh) -> float:
    """Health/Check's started count once earlier calls still on their way (a gRPC-web Health
    call reaches the gateway's own native Health) have landed: the same twice, 0.5 s apart."""
    deadline = time.monotonic() + 10
    found = _started_checks(mesh)
    while True:
        time.sleep(0.5)
        found, previous = _started_checks(mesh), found
        if found == previous:
            return found
        assert time.monotonic() < deadline, "Health/Check kept being called with no calls made"


def _started_checks(mesh: Mesh) -> float:
    answer = request(mesh.port, b"GET", b"/metrics")
    samples = metric_samples(answer.body.decode(), "grpc_server_started_total")
    return sum(v for k, v in samples.items() if 'grpc_method="Check"' in k and "Health" in k)


# Streams of one method one key opens at once: past the following Tails one key may hold (32,
# trademesh.gateway.logs) and its Mux sessions (32, MuxLimits). 128 following Tails of one key took the
# gateway's Redis pool and every other Tail failed (issue 57, item 10).
STREAMS_FROM_ONE_KEY = 40
# What another call waits, however many streams the key holds.
OTHERS_ANSWERED_S = 5.0
_LIMITED = {"/trademesh.logs.v1.Logs/Tail": 32, "/trademesh.mux.v1.Mux/Open": 32}


def test_many_streams_of_every_method_from_one_key_are_served_or_refused_and_others_answer(
    mesh: Mesh,
) -> None:
    streaming = [t for t in mesh.targets if t.method.server_streaming and not t.method.client_streaming]
    assert set(_LIMITED) <= {t.method.path for t in streaming}, [t.method.path for t in streaming]
    for target in streaming:
        body = framed(_stream_request(mesh, target))
        headers = _web_headers(mesh, target.instance, "application/grpc-web+proto")
        opened = [
            send(mesh.port, b"POST", target.method.path.encode(), headers, body)
            for _ in range(STREAMS_FROM_ONE_KEY)
        ]
        try:
            limit = _LIMITED.get(target.method.path)
            refusals = 0 if limit is None else STREAMS_FROM_ONE_KEY - limit
            codes = _statuses(opened, refusals, target.method.path)
            # The key's share held, refused by name (RESOURCE_EXHAUSTED); the rest served.
            assert codes.count(8) >= refusals, (target.method.path, codes)
            _others_answered(mesh)
        finally:
            for stream in opened:
                stream.close()
    _gateway_fine(mesh)


def _statuses(opened: list[RawStream], refusals: int, path: str) -> list[int | None]:
    """Each stream's status so far (None: open, or nothing to send yet), read until `refusals` of
    them are RESOURCE_EXHAUSTED or 10 s have passed; every answer checked on the way."""
    codes: list[int | None] = [None] * len(opened)
    deadline = time.monotonic() + 10
    while True:
        for index, stream in enumerate(opened):
            answer = None if codes[index] is not None else stream.read_for(0.02)
            if answer is not None:
                _check(answer, (path, "one of many streams of one key"))
                codes[index] = grpcweb_status(answer)
        if codes.count(8) >= refusals or time.monotonic() > deadline:
            return codes


def _stream_request(mesh: Mesh, target: Target) -> bytes:
    if target.method.path == "/trademesh.logs.v1.Logs/Tail":
        return logs_pb2.TailRequest(backlog=1, follow=True).SerializeToString()
    if target.method.path == "/trademesh.mux.v1.Mux/Open":
        return mux_pb2.OpenRequest().SerializeToString()
    [drawn] = sample(mesh.bodies[target], 1)
    return bytes(drawn)


def _others_answered(mesh: Mesh) -> None:
    """A unary call of the same key over gRPC-web, and a Tail with the mesh token on the native
    port (another caller's), each answered within OTHERS_ANSWERED_S."""
    path = b"/trademesh.registry.v1.Registry/ListServices"
    began = time.monotonic()
    answer = request(
        mesh.port, b"POST", path, _web_headers(mesh, "gateway", "application/grpc-web+proto"), framed(b"")
    )
    assert grpcweb_status(answer) == 0 and time.monotonic() - began < OTHERS_ANSWERED_S, answer
    with grpc.insecure_channel(mesh.gateway.grpc_address) as channel:
        call = logs_pb2_grpc.LogsStub(channel).Tail(
            logs_pb2.TailRequest(backlog=1), metadata=MESH_AUTH, timeout=OTHERS_ANSWERED_S
        )
        answers = list(call)
    assert sum(len(a.lines) for a in answers) <= 1


def test_the_gateway_is_still_fine_at_the_end(mesh: Mesh) -> None:
    _gateway_fine(mesh)
