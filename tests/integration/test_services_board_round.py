"""One round of the services board (trademesh.gateway.board.Board) against a real gRPC server (health) and
a real metrics endpoint, beside an instance whose ports accept connections and never answer: the
round ends within the checks' timeout, the live instance is SERVING with its figures, the silent
one UNREACHABLE with its figures absent and why; a new registration shows UNKNOWN until checked."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Iterator

import aiohttp
import grpc
import pytest
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from prometheus_client import CollectorRegistry, Counter, generate_latest

from tests.integration.support import until
from trademesh.gateway.board.board import Board, BoardOptions
from trademesh.gateway.registry.state import RegistryState
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.services.v1 import services_pb2 as pb

pytestmark = pytest.mark.integration

CHECK_TIMEOUT_S = 0.5


@contextlib.asynccontextmanager
async def health_server() -> AsyncIterator[int]:
    server = grpc.aio.server()
    servicer = health.aio.HealthServicer()
    await servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port
    finally:
        await server.stop(None)


@contextlib.asynccontextmanager
async def metrics_server(registry: CollectorRegistry) -> AsyncIterator[int]:
    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(registry), content_type="text/plain")

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


@contextlib.contextmanager
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung process)."""
    with socket.create_server(("127.0.0.1", 0), backlog=16) as sock:
        yield sock.getsockname()[1]


async def test_a_silent_instance_is_unreachable_within_the_timeout_and_never_delays_the_live_one() -> None:
    registry = CollectorRegistry()
    events = Counter("trademesh_venue_events_total", "", ["symbol"], registry=registry)
    state = RegistryState(ttl_s=60.0)
    # No Alertmanager listens on a silent port either: the round must not wait on it.
    with silent_port() as silent:
        options = BoardOptions(check_timeout_s=CHECK_TIMEOUT_S, alertmanager_url=f"http://127.0.0.1:{silent}")
        board = Board(state, options)
        async with health_server() as grpc_port, metrics_server(registry) as metrics_port:
            state.register("sim", reg.KIND_VENUE, f"127.0.0.1:{grpc_port}", [], metrics_port, "0.1.0")
            state.register("hung", reg.KIND_CORE, f"127.0.0.1:{silent}", [], silent)
            state.register("bare", reg.KIND_CORE, f"127.0.0.1:{grpc_port}", [])
            assert {s.health for s in board.snapshot().services} == {pb.HEALTH_UNKNOWN}
            async with aiohttp.ClientSession() as session:
                started = time.monotonic()
                await board.round(session)
                events.labels("BTC/USDT").inc(50)
                await asyncio.sleep(0.5)  # the interval a rate is measured over
                await board.round(session)
                took_s = time.monotonic() - started - 0.5
    snapshot = board.snapshot()
    services = {s.name: s for s in snapshot.services}
    # Two rounds, each bounded by one timeout (the checks run at once), with room for a loaded machine.
    assert took_s < 2 * CHECK_TIMEOUT_S + 1.0
    sim, hung, bare = services["sim"], services["hung"], services["bare"]
    assert sim.health == pb.HEALTH_SERVING and sim.version == "0.1.0"
    assert sim.events_per_s.present and sim.events_per_s.value > 0
    assert hung.health == pb.HEALTH_UNREACHABLE and "no answer within 0.5 s" in hung.health_detail
    assert not hung.events_per_s.present and "metrics unreachable" in hung.events_per_s.why
    assert not hung.bus_lag.present and not hung.errors_per_s.present
    assert bare.health == pb.HEALTH_SERVING
    assert bare.events_per_s.why == "no metrics port"
    assert snapshot.alerts_configured and "Alertmanager unreachable" in snapshot.alerts_error
    assert snapshot.taken_at_ns > 0


async def test_the_board_checks_only_while_someone_looks() -> None:
    """A gateway nobody watches checks nothing: the first look waits for one round and gets a
    fresh snapshot; rounds go on while looked at and stop idle_s after the last look."""
    registry = CollectorRegistry()
    state = RegistryState(ttl_s=60.0)
    board = Board(state, BoardOptions(every_s=0.1, check_timeout_s=CHECK_TIMEOUT_S, idle_s=0.5))
    stop = asyncio.Event()
    async with health_server() as grpc_port, metrics_server(registry) as metrics_port:
        state.register("sim", reg.KIND_VENUE, f"127.0.0.1:{grpc_port}", [], metrics_port)
        async with board.running(stop):
            await asyncio.sleep(0.3)  # what is tested: no round while nobody looks
            assert board.snapshot().taken_at_ns == 0
            first = await board.fresh()
            assert first.taken_at_ns > 0 and first.services[0].health == pb.HEALTH_SERVING
            # Rounds while looked at (idle_s after the last look), then none.
            await asyncio.sleep(1.0)  # past idle_s: the rounds have stopped
            stopped_at = board.snapshot().taken_at_ns
            assert stopped_at > first.taken_at_ns
            await asyncio.sleep(0.3)  # what is tested: idle, no round
            assert board.snapshot().taken_at_ns == stopped_at
            stop.set()


@contextlib.asynccontextmanager
async def alertmanager_standin(answers: list[bytes]) -> AsyncIterator[str]:
    """Alertmanager's GET /api/v2/alerts, answering each body of `answers` in turn (the last
    one from then on), as HTTP 200 application/json: what a broken or hostile one may send."""

    async def alerts(_: web.Request) -> web.Response:
        body = answers.pop(0) if len(answers) > 1 else answers[0]
        return web.Response(body=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/api/v2/alerts", alerts)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


GOOD_ALERT = b'[{"labels": {"alertname": "BusSlow", "severity": "warning"}, "annotations": {"summary": "s"}}]'
MALFORMED = {
    "labels a string": (b'[{"labels": "BusSlow"}]', "labels are not an object"),
    "annotations a list": (b'[{"labels": {}, "annotations": ["x"]}]', "annotations are not an object"),
    "not a list": (b'{"data": []}', "not a list of alerts"),
    "not JSON": (b'[{"labels": ', "not JSON"),
    "nested deep": (b'[{"labels": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}]", "nested deeper than 64"),
}


@pytest.mark.parametrize(("answer", "why"), MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_alertmanager_answer_shows_the_source_failing_and_the_board_goes_on(
    answer: bytes, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    state = RegistryState(ttl_s=60.0)
    stop = asyncio.Event()
    # Malformed twice (two rounds: logged once), then a good answer: the board reads it.
    async with health_server() as grpc_port, alertmanager_standin([answer, answer, GOOD_ALERT]) as url:
        state.register("bare", reg.KIND_CORE, f"127.0.0.1:{grpc_port}", [])
        options = BoardOptions(every_s=0.1, check_timeout_s=CHECK_TIMEOUT_S, alertmanager_url=url)
        board = Board(state, options)
        async with board.running(stop):
            first = await board.fresh()
            assert first.taken_at_ns > 0 and first.services[0].health == pb.HEALTH_SERVING
            assert why in first.alerts_error and not first.mesh_alerts

            async def alerts_shown() -> pb.Snapshot | None:
                board.touch()  # someone looks: the rounds go on
                return board.snapshot() if board.snapshot().mesh_alerts else None

            later = await until(alerts_shown, 10.0, 0.05, "the good answer shown")
            stop.set()
    assert [a.name for a in later.mesh_alerts] == ["BusSlow"] and later.alerts_error == ""
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert len([r for r in caplog.records if why in r.getMessage()]) == 1


async def test_a_lone_surrogate_in_an_alert_is_shown_as_a_replacement_character() -> None:
    state = RegistryState(ttl_s=60.0)
    answer = b'[{"labels": {"alertname": "Bus\\ud800Slow"}, "annotations": {"summary": "\\udfff"}}]'
    async with alertmanager_standin([answer]) as url, aiohttp.ClientSession() as session:
        board = Board(state, BoardOptions(check_timeout_s=CHECK_TIMEOUT_S, alertmanager_url=url))
        await board.round(session)
    [alert] = board.snapshot().mesh_alerts
    assert (alert.name, alert.summary) == ("Bus\ufffdSlow", "\ufffd")
