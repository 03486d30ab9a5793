"""Venues found, not listed: ingest started with no venue follows each venue that registers with
the gateway (real gateway, ingest and sim processes, real Redis), drops one that unregisters or
stops heartbeating with a gap marker, and follows it again when it comes back."""

from __future__ import annotations

import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.gateway_support import Gateway, Processes, list_instances, module_database
from tests.integration.mesh import read_stream, redis_db
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["database_url", "module_database", "redis_url"]  # the fixtures, for pytest

# The gateway drops a venue whose heartbeats stopped after TTL_S; ingest reads the registry
# every second.
HEARTBEAT_S, TTL_S = 0.5, 2.0
FAST = ("--heartbeat-interval-s", str(HEARTBEAT_S), "--registry-ttl-s", str(TTL_S))
# The promise: a venue that registers is followed within 5 s.
FOLLOWED_WITHIN_S = 5.0
LEFT = "the venue left the mesh"


class Mesh:
    def __init__(self, processes: Processes, gateway: Gateway, bus: str) -> None:
        self.processes = processes
        self.gateway = gateway
        self.bus = bus


@pytest.fixture
async def mesh(tmp_path: Path, module_database: str, redis_url: str) -> AsyncIterator[Mesh]:
    processes = Processes(tmp_path, module_database)
    try:
        async with redis_db(redis_url) as bus:
            gateway = processes.gateway(*FAST)
            processes.mesh_service(gateway, "ingest", redis_url=bus)  # no --venue: the registry's
            yield Mesh(processes, gateway, bus)
    finally:
        await processes.stop_all()


async def trades(bus: str) -> list[md.MarketEvent]:
    return [e for e in await read_stream(bus, "md.{sim}.trades") if e.HasField("trade")]


async def markers(bus: str, reason: str) -> list[md.MarketEvent] | None:
    events = await read_stream(bus, "md.{sim}.trades")
    found = [e for e in events if e.HasField("notice") and e.notice.reason == reason]
    return found or None


async def registered(gateway: Gateway, name: str, present: bool) -> bool | None:
    return True if (name in await list_instances(gateway)) == present else None


async def more_trades(bus: str, than: int) -> int | None:
    count = len(await trades(bus))
    return count if count > than else None


async def test_a_registered_venue_is_followed_dropped_when_silent_and_resumed_without_loss(
    mesh: Mesh,
) -> None:
    venue = mesh.processes.sim(mesh.gateway)
    await until(lambda: registered(mesh.gateway, "sim", True), 30, what="the sim registered")
    listed_at = time.monotonic()
    await until(lambda: more_trades(mesh.bus, 0), FOLLOWED_WITHIN_S, 0.05, "the sim's trades on the bus")
    print(f"followed {time.monotonic() - listed_at:.2f} s after the registry listed it")

    venue.process.send_signal(signal.SIGSTOP)  # its heartbeats stop: the registry drops it
    try:
        await until(lambda: markers(mesh.bus, LEFT), 3 * TTL_S + 10, 0.1, "the gap markers of its drop")
    finally:
        venue.process.send_signal(signal.SIGCONT)  # it registers again, with its stream's history
    before = len(await trades(mesh.bus))
    await until(lambda: more_trades(mesh.bus, before + 50), 30, 0.1, "trades after it came back")

    events = await read_stream(mesh.bus, "md.{sim}.trades")
    left = [e for e in events if e.HasField("notice") and e.notice.reason == LEFT]
    assert {e.symbol for e in left} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    for marker in left:
        last_before = max(e.ts_event_ns for e in events[: events.index(marker)] if e.HasField("trade"))
        assert marker.notice.since_ns == last_before, "the marker starts at the last trade followed"
    by_symbol: dict[str, list[int]] = {}
    for event in events:
        if event.HasField("trade"):
            by_symbol.setdefault(event.symbol, []).append(int(event.trade.trade_id))
    for symbol, ids in by_symbol.items():
        assert len(ids) == len(set(ids)), f"{symbol}: a trade published twice"
        assert ids == list(range(ids[0], ids[0] + len(ids))), f"{symbol}: trades missing across the drop"


async def test_a_venue_that_unregisters_is_marked_at_once_and_a_new_one_followed(mesh: Mesh) -> None:
    first = mesh.processes.sim(mesh.gateway)
    await until(lambda: more_trades(mesh.bus, 0), 30, 0.1, "the first sim's trades on the bus")
    stopped_at = time.monotonic()
    await mesh.processes.stop(first)  # SIGTERM: it unregisters before it stops
    await until(lambda: markers(mesh.bus, LEFT), 10, 0.1, "the gap markers of its leaving")
    print(f"marked {time.monotonic() - stopped_at:.2f} s after its stop began")

    before = len(await trades(mesh.bus))
    mesh.processes.sim(mesh.gateway)  # another process, another port: found like the first
    await until(lambda: more_trades(mesh.bus, before + 50), 30, 0.1, "the second sim's trades")
    events = await read_stream(mesh.bus, "md.{sim}.trades")
    marker_at = max(i for i, e in enumerate(events) if e.HasField("notice") and e.notice.reason == LEFT)
    assert any(e.HasField("trade") for e in events[marker_at:]), "the second sim's trades follow the marker"
