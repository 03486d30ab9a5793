"""Fuzz every RPC of every server, from server reflection alone (issue 12, "in CI from now on").

A sim venue, a bridge, the advisor and the gateway's registry, each a real process. For every method
each serves, hypothesis builds requests of its input type (any field values: odd strings,
extreme numbers, unknown enum values, nested messages) and raw random bodies, sends them with
the token, and asserts that no answer is UNKNOWN or INTERNAL. Afterwards each server still
says SERVING and its memory grew by less than a bound.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings

from core.process import ServiceProcess
from tests.integration.fuzz_support import Method, body_strategy, methods_of, read_rss_kib
from tests.integration.gateway_support import Processes
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import TEST_TOKEN, TEST_TRADE_TOKEN

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)

__all__ = ["database_url", "redis_url"]  # fixtures

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
# The venue's order RPCs take only the trading credential (good for its other RPCs too): with the
# mesh token, every fuzzed order would be refused before its body is read.
TRADE_AUTH = (("authorization", f"Bearer {TEST_TRADE_TOKEN}"),)
Metadata = tuple[tuple[str, str], ...]
FORBIDDEN = {grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL}
# Methods whose effect would end the fuzzing itself: a drained venue refuses the rest.
SKIPPED = {"/trademesh.admin.v1.Admin/Drain"}
EXAMPLES_PER_METHOD = 40
# A server's resident memory may grow this much over the whole run (caches warming up).
RSS_GROWTH_KIB = 150 * 1024


@dataclass(frozen=True)
class Server:
    name: str
    address: str
    pid: int


@pytest.fixture(scope="module")
async def servers(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> AsyncIterator[list[Server]]:
    directory = tmp_path_factory.mktemp("fuzz")
    async with new_database(database_url, "fuzz") as database, redis_db(redis_url) as bus:
        processes = Processes(directory, database)
        try:
            gateway = processes.gateway()
            sim = processes.sim(None)
            bridge = processes.mesh_service(gateway, "bridge", redis_url=bus)
            advisor = processes.mesh_service(
                gateway, "advisor", "--venue", f"sim={sim.address}", "--database-url", database,
                "--model-dir", str(directory / "models"), redis_url=bus,
            )  # fmt: skip
            yield [
                Server("venue", sim.address, sim.process.pid),
                Server("bridge", bridge.address, bridge.process.pid),
                Server("advisor", advisor.address, advisor.process.pid),
                _registry(gateway.service),
            ]
        finally:
            await processes.stop_all()


def _registry(gateway: ServiceProcess) -> Server:
    return Server("registry", f"127.0.0.1:{gateway.info['grpc_port']}", gateway.process.pid)


def _code(channel: grpc.Channel, method: Method, body: bytes, auth: Metadata) -> grpc.StatusCode:
    """The status of one call; a stream that is still open after its first answer counts as OK."""
    identity = {"request_serializer": lambda b: b, "response_deserializer": lambda b: b}
    try:
        if method.client_streaming:
            call = channel.stream_stream(method.path, **identity)(iter([body]), metadata=auth, timeout=2)
            next(call, None)
            call.cancel()
        elif method.server_streaming:
            call = channel.unary_stream(method.path, **identity)(body, metadata=auth, timeout=2)
            next(call, None)
            call.cancel()
        else:
            channel.unary_unary(method.path, **identity)(body, metadata=auth, timeout=5)
    except grpc.RpcError as error:
        code = error.code()
        return grpc.StatusCode.OK if code == grpc.StatusCode.CANCELLED else code
    return grpc.StatusCode.OK


def _fuzz(channel: grpc.Channel, method: Method, auth: Metadata) -> dict[grpc.StatusCode, int]:
    seen: dict[grpc.StatusCode, int] = {}

    @settings(max_examples=EXAMPLES_PER_METHOD, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(body_strategy(method))
    def call(body: bytes) -> None:
        code = _code(channel, method, body, auth)
        seen[code] = seen.get(code, 0) + 1
        assert code not in FORBIDDEN, f"{method.path} answered {code.name} to {body[:200]!r}"

    call()
    return seen


@pytest.mark.parametrize("name", ["venue", "bridge", "advisor", "registry"])
def test_no_request_to_any_method_gets_unknown_or_internal_and_the_server_stays_healthy(
    servers: list[Server], name: str, tmp_path: Path
) -> None:
    server = next(s for s in servers if s.name == name)
    methods = [m for m in methods_of(server.address) if m.path not in SKIPPED]
    assert len(methods) >= 5, [m.path for m in methods]  # health, reflection and its own
    before = read_rss_kib(server.pid)
    with grpc.insecure_channel(server.address) as channel:
        auth = TRADE_AUTH if name == "venue" else AUTH
        answered = {m.path: _fuzz(channel, m, auth) for m in methods}
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert status.status == health_pb2.HealthCheckResponse.SERVING
    assert read_rss_kib(server.pid) - before < RSS_GROWTH_KIB
    # The fuzzing reached the handlers: some calls were refused as bad input, some went through.
    codes = {code for seen in answered.values() for code in seen}
    assert grpc.StatusCode.INVALID_ARGUMENT in codes and grpc.StatusCode.OK in codes
