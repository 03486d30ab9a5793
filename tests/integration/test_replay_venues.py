"""Every live venue starts from its recorded session, answers health and reflection, and streams.

The per-venue files (test_replay_<venue>.py) check values against each capture; this one
checks what all eight share, and what an operator gets for bad replay arguments. It reads the
same shared replay venues as their read-only tests (replay.SharedReplay): the stream checked
here is the one record of each venue's replay.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.forked_services import run_command
from tests.integration.replay import SESSIONS, ReplaySessions, SharedReplay, capture_files, instruments
from tests.integration.support import CALL_TIMEOUT_S
from trademesh.venues.registry import VENUES

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WITHOUT_TRADES = {"deribit"}  # the Deribit capture holds no trade frames
SERVICES = {
    "trademesh.marketdata.v1.MarketData",
    "trademesh.tradeflow.v1.TradeFlow",
    "trademesh.admin.v1.Admin",
}


def test_every_registered_live_venue_has_a_recorded_session() -> None:
    assert set(SESSIONS) == set(VENUES) - {"sim"}
    assert all(session.files() for session in SESSIONS.values())


@pytest.fixture(params=sorted(SESSIONS))
def live_venue(replay_sessions: ReplaySessions, request: pytest.FixtureRequest) -> tuple[str, SharedReplay]:
    return request.param, replay_sessions.get(request.param)


async def test_a_live_venue_serves_health_reflection_and_market_data(
    live_venue: tuple[str, SharedReplay],
) -> None:
    name, shared = live_venue
    venue = shared.venue
    channel = venue.channel(token=None)
    health = health_pb2_grpc.HealthStub(channel)
    for service in ["", *sorted(SERVICES)]:
        answer = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT_S)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING, service
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
    listed = set()
    async for reply in reflection.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=CALL_TIMEOUT_S
    ):
        listed |= {service.name for service in reply.list_services_response.service}
    assert listed >= SERVICES
    stubs = venue.stubs()
    symbols = await instruments(stubs)
    assert symbols, "the venue lists the capture's instruments"
    collected = await shared.collected()  # every instrument, on every channel of the session
    kinds = {kind for _, kind in collected.counts()}
    expected = {"book_snapshot", "book_delta"} | (set() if name in WITHOUT_TRADES else {"trade"})
    assert kinds >= expected, kinds


def venue_command(*args: str) -> tuple[int, str]:
    """`trademesh ARGS` to its end (run_command): its exit code and stderr."""
    done = run_command(args, timeout_s=60)
    return done.returncode, done.stderr


def test_bad_replay_arguments_get_a_message_naming_the_bad_value(tmp_path: Path) -> None:
    files = [str(path) for path in capture_files("BINANCE")]
    code, stderr = venue_command("venue", "binance", "--replay", *files, "--replay-fault", "flood@3")
    assert code == 2 and "'flood@3' is not KIND@N" in stderr
    code, stderr = venue_command("venue", "binance", "--replay", *files, "--replay-speed", "0")
    assert code == 2 and "--replay-speed: must be positive, got 0" in stderr
    code, stderr = venue_command("venue", "binance", "--port", "0", "--replay", str(tmp_path / "nope.ws.1.0"))
    assert code == 2 and "cannot read capture file" in stderr
    garbage = tmp_path / "X.ws.1.0"
    garbage.write_text("hello\n")
    code, stderr = venue_command("venue", "binance", "--port", "0", "--replay", str(garbage))
    assert code == 2 and "X.ws.1.0:1: not a capture line" in stderr
    code, stderr = venue_command("venue", "sim", "--port", "0", "--replay", str(garbage))
    assert code == 2 and "nothing to replay" in stderr
