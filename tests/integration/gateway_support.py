"""Support for tests of the gateway as a real process: the gateway, venues that register with it,
API keys from `trademesh keys create`, and a raw gRPC-web client (aiohttp) that decodes the wire
format on its own, independently of the gateway's code.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import os
import re
import signal
import struct
import subprocess
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar, cast

import aiohttp
import grpc
import pytest

from tests.bus_signing import held_keys
from tests.forked_services import run_command
from tests.integration.postgres_server import new_database
from tests.integration.support import (
    CALL_TIMEOUT_S,
    TEST_TOKEN,
    TEST_TRADE_TOKEN,
    VENUE_ENV,
    until,
    with_test_step,
)
from trademesh.core.platform.config.env import DATABASE_URL, GATEWAY, REDIS_URL, TOKEN, TRADE_TOKEN
from trademesh.core.platform.service.command import load_command
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.core.platform.service.registry import SERVICES
from trademesh.mux.v1 import mux_pb2 as mux
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.registry.v1 import registry_pb2_grpc as reg_grpc

__all__ = [
    "ALL_SCOPES",
    "BUF",
    "MUX",
    "Gateway",
    "MuxStream",
    "Processes",
    "WebAnswer",
    "at_once",
    "both",
    "buf_curl",
    "create_key",
    "grpcweb_call",
    "key_taken",
    "module_database",
    "mux_add",
    "mux_remove",
    "new_key",
    "open_mux",
    "open_stream",
    "registry_stub",
    "run_at_once",
]

ROOT = Path(__file__).resolve().parents[2]
BUF = ROOT / "node_modules" / ".bin" / "buf"
PROTO = ROOT / "proto"
MESH_AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
T = TypeVar("T")
A = TypeVar("A")
B = TypeVar("B")


@dataclass
class Gateway:
    service: ServiceProcess
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.service.port}"

    @property
    def grpc_address(self) -> str:
        return f"127.0.0.1:{self.service.info['grpc_port']}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


class Processes:
    """The gateway and venue processes of a test (or module); stop_all() stops them, the
    gateways last. Its starts may run on several threads at once (at_once)."""

    def __init__(self, directory: Path, database_url: str) -> None:
        self.directory = directory
        self.database_url = database_url
        self.started: list[tuple[ServiceProcess, IO[str]]] = []
        self._gateways: list[ServiceProcess] = []
        self._count = itertools.count()  # each log its own name, however many start at once

    def _start(self, label: str, args: Sequence[str], env: dict[str, str]) -> tuple[ServiceProcess, Path]:
        log_path = self.directory / f"{label}-{next(self._count)}.log"
        log_file = log_path.open("w")
        try:
            process = start_service(args, env={TOKEN: TEST_TOKEN, **env}, stderr=log_file, timeout_s=60)
        except BaseException:
            log_file.close()
            raise
        self.started.append((process, log_file))
        return process, log_path

    def gateway(self, *args: str) -> Gateway:
        argv = ["gateway", "--port", "0", "--grpc-port", "0", *args]
        process, log_path = self._start("gateway", argv, {DATABASE_URL: self.database_url})
        self._gateways.append(process)
        return Gateway(process, log_path)

    def sim(
        self,
        gateway: Gateway | None,
        config: str | None = None,
        port: int = 0,
        *extra: str,
        env: Mapping[str, str] | None = None,
    ) -> ServiceProcess:
        """A sim venue; registered with `gateway` (TRADEMESH_GATEWAY) unless None; `extra`
        arguments after the usual ones (e.g. --metrics-port 0); `env`: more variables (an
        account's trading credential)."""
        path = self.directory / f"sim-{uuid.uuid4().hex[:6]}.toml"
        path.write_text(with_test_step(config))
        args = ["venue", "sim", "--port", str(port), "--metrics-port", "-1", "--config", str(path), *extra]
        registered = {GATEWAY: gateway.grpc_address} if gateway is not None else {}
        return self._start("sim", args, {**VENUE_ENV, **registered, **(env or {})})[0]

    def paper(
        self,
        gateway: Gateway,
        name: str,
        files: Sequence[Path],
        *extra: str,
        env: dict[str, str] | None = None,
    ) -> ServiceProcess:
        """A paper venue (`--paper`) on a replayed session, registered with `gateway`; `extra`
        arguments after the usual ones (e.g. --replay-speed 1)."""
        args = ["venue", name, "--paper", "--port", "0", "--metrics-port", "-1", *extra]
        args += ["--replay", *map(str, files)]
        return self._start(
            f"paper-{name}", args, {**VENUE_ENV, GATEWAY: gateway.grpc_address, **(env or {})}
        )[0]

    def mesh_service(
        self, gateway: Gateway, name: str, *args: str, redis_url: str, env: Mapping[str, str] | None = None
    ) -> ServiceProcess:
        """A mesh service (`trademesh bridge`, ...) registered with `gateway`; the trading
        credential only for a service whose command holds it (the inspector), as `up` gives it;
        `env`: more variables (an account's trading credential)."""
        argv = [name, "--port", "0", "--metrics-port", "-1", *args]
        held = load_command(SERVICES[name]).secrets()
        variables = {GATEWAY: gateway.grpc_address, REDIS_URL: redis_url}
        variables[TRADE_TOKEN] = TEST_TRADE_TOKEN if TRADE_TOKEN in held else ""
        variables.update(held_keys(held))  # each trading stream's writer its own key, the inspector both
        return self._start(name, argv, {**variables, **(env or {})})[0]

    def log_path(self, process: ServiceProcess) -> Path:
        """Where `process` writes its stderr."""
        for started, log_file in self.started:
            if started is process:
                return Path(log_file.name)
        raise AssertionError("not started here")

    async def stop(self, process: ServiceProcess) -> int:
        for started, log_file in self.started:
            if started is process:
                code = await asyncio.to_thread(process.terminate)
                log_file.close()
                return code
        raise AssertionError("not started here")

    async def stop_all(self) -> None:
        """Every process but the gateways at once, then the gateways (the others unregister from
        them as they stop). One by one, a mesh of ten took ten times one's stop."""
        started, self.started = list(reversed(self.started)), []
        gateways = {id(gateway) for gateway in self._gateways}
        try:
            await _terminate_all([process for process, _ in started if id(process) not in gateways])
            await _terminate_all([process for process, _ in started if id(process) in gateways])
        finally:
            for _, log_file in started:
                log_file.close()


async def _terminate_all(processes: Sequence[ServiceProcess]) -> None:
    """SIGTERM to each at once, then a wait for each (ServiceProcess.terminate: SIGKILL after
    its timeout)."""
    for process in processes:
        if process.process.poll() is None:
            process.process.send_signal(signal.SIGTERM)
    await at_once(*(process.terminate for process in processes))


def run_at_once(*calls: Callable[[], T]) -> list[T]:
    """Each blocking call (a service's start waits for its serving line) on a thread of its own,
    all at once; each one ends before a failed one's error is raised, so that the teardown stops
    whatever did start."""
    with ThreadPoolExecutor(max_workers=max(1, len(calls)), thread_name_prefix="at-once") as pool:
        futures = [pool.submit(call) for call in calls]
    for future in futures:  # all done: leaving the block waited for every one
        error = future.exception()
        if error is not None:
            raise error
    return [future.result() for future in futures]


async def at_once(*calls: Callable[[], T]) -> list[T]:
    """run_at_once from the event loop (whose default executor runs only a few at a time)."""
    return await asyncio.to_thread(run_at_once, *calls)


async def both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """Two blocking calls at once, as run_at_once runs them (a key made while a gateway starts)."""
    found: list[Any] = await at_once(first, second)
    return cast(A, found[0]), cast(B, found[1])


@pytest.fixture(scope="module")
async def module_database(database_url: str) -> AsyncIterator[str]:
    """A new database for the module's gateway (its API keys), dropped after the module."""
    async with new_database(database_url, "gw") as url:
        yield url


ALL_SCOPES = ("read", "trade", "admin")


async def create_key(database_url: str, name: str, scopes: Sequence[str] = ALL_SCOPES) -> str:
    """A new API key from the real CLI (`trademesh keys create NAME --scope ...` prints it alone
    on stdout); with every scope unless told, for tests of anything but the scopes."""
    return await asyncio.to_thread(new_key, database_url, name, scopes)


def new_key(database_url: str, name: str, scopes: Sequence[str] = ALL_SCOPES) -> str:
    """create_key's work, blocking (for at_once and both)."""
    options = [part for scope in scopes for part in ("--scope", scope)]
    env = {**os.environ, DATABASE_URL: database_url}
    done = run_command(["keys", "create", name, *options], env, timeout_s=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def key_taken(gateway: Gateway, key: str) -> None:
    """Until the gateway takes `key`, whatever its scopes: one made while the gateway started may
    be newer than its last read of the keys, which a miss repeats at most once a second."""

    async def taken() -> bool | None:
        listed = await grpcweb_call(gateway, "trademesh.registry.v1.Registry/ListServices", b"", key=key)
        return True if listed.code != grpc.StatusCode.UNAUTHENTICATED.value[0] else None

    await until(taken, 30, interval_s=0.1, what="the gateway taking the new key")


def registry_stub(gateway: Gateway) -> tuple[grpc.aio.Channel, reg_grpc.RegistryAsyncStub]:
    channel = grpc.aio.insecure_channel(gateway.grpc_address)
    return channel, reg_grpc.RegistryStub(channel)


async def list_instances(gateway: Gateway) -> dict[str, reg.Instance]:
    channel, stub = registry_stub(gateway)
    async with channel:
        reply = await stub.ListServices(reg.ListServicesRequest(), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S)
    return {instance.name: instance for instance in reply.instances}


# ---------------------------------------------------------------- buf curl (gRPC-web)


async def buf_curl(
    gateway: Gateway, method: str, *args: str, key: str | None = None, target: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`buf curl --protocol grpcweb` against the gateway; the schema from proto/ (no reflection)."""
    if not BUF.exists():
        pytest.fail(f"{BUF} is missing: `./dev test` installs it (npm package @bufbuild/buf)")
    command = [str(BUF), "curl", "--protocol", "grpcweb", "--schema", str(PROTO), *args]
    if key is not None:
        command += ["-H", f"Authorization: Bearer {key}"]
    if target is not None:
        command += ["-H", f"x-trademesh-target: {target}"]
    command.append(f"{gateway.url}/{method}")

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)

    return await asyncio.to_thread(run)


# ---------------------------------------------------------------- a raw gRPC-web client

_FRAME = struct.Struct(">BI")
_BASE64_SEGMENT = re.compile(rb"[A-Za-z0-9+/]+={0,2}")


@dataclass
class WebAnswer:
    http_status: int
    headers: Mapping[str, str]
    messages: list[bytes] = field(default_factory=list)
    # From the trailer frame; empty for a trailers-only answer (the status is in the headers).
    trailers: dict[str, str] = field(default_factory=dict)

    @property
    def code(self) -> int:
        return int(self.trailers.get("grpc-status") or self.headers["grpc-status"])

    @property
    def message(self) -> str:
        text = self.trailers.get("grpc-message") or self.headers.get("grpc-message", "")
        return urllib.parse.unquote(text)

    @property
    def trailers_only(self) -> bool:
        return not self.trailers and "grpc-status" in self.headers


def frame(message: bytes) -> bytes:
    return _FRAME.pack(0, len(message)) + message


def text_body(message: bytes, chunks: int = 1) -> bytes:
    """The framed message base64-encoded in `chunks` pieces, each padded on its own."""
    framed = frame(message)
    size = max(1, len(framed) // chunks)
    pieces = [framed[i : i + size] for i in range(0, len(framed), size)]
    return b"".join(base64.b64encode(piece) for piece in pieces)


def decode_text_stream(body: bytes) -> bytes:
    return b"".join(base64.b64decode(part) for part in _BASE64_SEGMENT.findall(body))


def parse_frames(body: bytes) -> tuple[list[bytes], dict[str, str], bytes]:
    """(messages, trailers, leftover bytes of an incomplete frame)."""
    messages: list[bytes] = []
    trailers: dict[str, str] = {}
    offset = 0
    while len(body) - offset >= _FRAME.size:
        flag, length = _FRAME.unpack_from(body, offset)
        end = offset + _FRAME.size + length
        if end > len(body):
            break
        payload = body[offset + _FRAME.size : end]
        if flag & 0x80:
            for line in payload.decode().split("\r\n"):
                if line:
                    name, _, value = line.partition(":")
                    trailers[name.strip().lower()] = value.strip()
        else:
            messages.append(payload)
        offset = end
    return messages, trailers, body[offset:]


def web_headers(text: bool, key: str | None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    headers = {
        "content-type": "application/grpc-web-text+proto" if text else "application/grpc-web+proto",
        "x-grpc-web": "1",
    }
    if key is not None:
        headers["authorization"] = f"Bearer {key}"
    return {**headers, **(extra or {})}


async def grpcweb_call(
    gateway: Gateway,
    method: str,
    request: bytes,
    *,
    key: str | None = None,
    text: bool = False,
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> WebAnswer:
    """One whole call (unary, or a stream that ends), read to the end."""
    if body is None:
        body = text_body(request) if text else frame(request)
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S * 3)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(f"{gateway.url}/{method}", data=body, headers=web_headers(text, key, headers)) as reply,
    ):
        raw = await reply.read()
        answer = WebAnswer(reply.status, {k.lower(): v for k, v in reply.headers.items()})
    if text:
        raw = decode_text_stream(raw)
    answer.messages, answer.trailers, leftover = parse_frames(raw)
    assert leftover == b"", f"{len(leftover)} bytes of an incomplete frame"
    return answer


@dataclass
class OpenStream:
    """A server stream read frame by frame; close() drops the connection mid-stream."""

    session: aiohttp.ClientSession
    reply: aiohttp.ClientResponse
    buffer: bytes = b""

    async def messages(self, count: int) -> list[bytes]:
        found: list[bytes] = []
        while len(found) < count:
            chunk = await asyncio.wait_for(self.reply.content.readany(), CALL_TIMEOUT_S)
            assert chunk, "the stream ended"
            self.buffer += chunk
            messages, trailers, self.buffer = parse_frames(self.buffer)
            assert not trailers, f"the stream ended with {trailers}"
            found += messages
        return found

    async def rest(self) -> tuple[list[bytes], dict[str, str]]:
        self.buffer += await asyncio.wait_for(self.reply.content.read(), CALL_TIMEOUT_S)
        messages, trailers, _ = parse_frames(self.buffer)
        return messages, trailers

    async def close(self) -> None:
        self.reply.close()
        await self.session.close()


async def open_stream(
    gateway: Gateway, method: str, request: bytes, *, key: str, headers: Mapping[str, str] | None = None
) -> OpenStream:
    session = aiohttp.ClientSession()
    reply = await session.post(
        f"{gateway.url}/{method}", data=frame(request), headers=web_headers(False, key, headers)
    )
    assert reply.status == 200
    return OpenStream(session, reply)


def parse_json_stream(text: str) -> list[Any]:
    """buf curl prints each streamed message as a pretty-printed JSON object, one after another."""
    import json

    decoder = json.JSONDecoder()
    found: list[Any] = []
    offset = 0
    text = text.strip()
    while offset < len(text):
        value, end = decoder.raw_decode(text, offset)
        found.append(value)
        offset = end
        while offset < len(text) and text[offset].isspace():
            offset += 1
    return found


# ---------------------------------------------------------------- the live-data multiplexer

MUX = "trademesh.mux.v1.Mux"


@dataclass
class MuxStream:
    """A Mux/Open stream read frame by frame (decoded with the contract's generated classes)."""

    stream: OpenStream
    opened: mux.Opened

    @property
    def session_id(self) -> str:
        return self.opened.session_id

    async def frames(self, timeout_s: float = CALL_TIMEOUT_S) -> list[mux.OpenResponse]:
        """The frames that come next (at least one); fails when the stream ends."""
        messages = await asyncio.wait_for(self.stream.messages(1), timeout_s)
        return [mux.OpenResponse.FromString(message) for message in messages]

    async def collect(self, done: Any, timeout_s: float = CALL_TIMEOUT_S * 2) -> list[mux.OpenResponse]:
        """Frames until `done(frames so far)` is true; fails after timeout_s."""
        found: list[mux.OpenResponse] = []
        deadline = asyncio.get_running_loop().time() + timeout_s
        while not done(found):
            left = deadline - asyncio.get_running_loop().time()
            assert left > 0, f"gave up after {len(found)} frames: {summarize(found)}"
            found += await self.frames(left)
        return found

    async def close(self) -> None:
        await self.stream.close()


def summarize(frames: Sequence[mux.OpenResponse]) -> dict[str, int]:
    """Frames per (kind, subscription), for failure messages."""
    counts: dict[str, int] = {}
    for frame in frames:
        kind = frame.WhichOneof("frame") or "?"
        label = f"{kind}:{getattr(frame, kind).subscription_id}" if kind in ("data", "end") else kind
        counts[label] = counts.get(label, 0) + 1
    return counts


async def open_mux(gateway: Gateway, key: str) -> MuxStream:
    stream = await open_stream(gateway, f"{MUX}/Open", mux.OpenRequest().SerializeToString(), key=key)
    first = mux.OpenResponse.FromString((await stream.messages(1))[0])
    assert first.WhichOneof("frame") == "opened", first
    return MuxStream(stream, first.opened)


async def mux_add(
    gateway: Gateway,
    key: str,
    session_id: str,
    subscription_id: str,
    method: str,
    request: bytes,
    target: str = "",
) -> WebAnswer:
    add = mux.AddRequest(
        session_id=session_id, subscription_id=subscription_id, method=method, target=target, request=request
    )
    return await grpcweb_call(gateway, f"{MUX}/Add", add.SerializeToString(), key=key)


async def mux_remove(gateway: Gateway, key: str, session_id: str, subscription_id: str) -> WebAnswer:
    remove = mux.RemoveRequest(session_id=session_id, subscription_id=subscription_id)
    return await grpcweb_call(gateway, f"{MUX}/Remove", remove.SerializeToString(), key=key)
