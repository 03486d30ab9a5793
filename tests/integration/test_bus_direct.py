"""The direct path as real processes: a sim venue writing its own streams to a real Redis
(`trademesh venue sim --bus-direct`), without ingest, beside ingest, and switched between them.

The bus must not tell the two apart: the same streams and entry shape, the venue's numbering
(epoch, position) on every batch, nothing lost or repeated where ingest loses and repeats
nothing, and gap markers where ingest writes them (a venue restarted, Redis restarted empty).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import signal
from collections import defaultdict
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import MeshProcesses, OwnRedis, redis_db, sim_config
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, VENUE_ENV, until
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = pytest.mark.integration
__all__ = ["redis_url"]  # the fixture, for pytest

TRADES = "md.{sim}.trades"
AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
SYMBOLS = {"BTC/USDT", "ETH/USDT", "SOL/USDT"}


def start_sim(stack: contextlib.AsyncExitStack, tmp_path: Path, *extra: str, port: int = 0) -> ServiceProcess:
    """A sim venue (about 10,000 events/s), ended when `stack` closes; `extra`: its flags."""
    config = sim_config(tmp_path, 1000, 2300)
    args = ["venue", "sim", "--port", str(port), "--metrics-port", "-1", "--config", str(config), *extra]
    with (tmp_path / "sim.log").open("a") as log:
        venue = start_service(args, env=VENUE_ENV, stderr=log)
    stack.push_async_callback(asyncio.to_thread, venue.terminate)
    return venue


def direct(url: str) -> tuple[str, ...]:
    return ("--bus-direct", "--redis-url", url)


async def batches(url: str, stream: str) -> list[tuple[str, bus.Envelope]]:
    """Every entry of `stream`: (its id, its Envelope), oldest first."""
    client: Any = aioredis.Redis.from_url(url)
    try:
        return [(i.decode(), decode(fields)) for i, fields in await client.xrange(stream)]
    finally:
        await client.aclose()


async def trade_count(url: str, at_least: int, source: str = "") -> int | None:
    entries = await batches(url, TRADES)
    count = sum(
        1 for _, e in entries if e.source.startswith(source) for ev in e.market.events if ev.HasField("trade")
    )
    return count if count >= at_least else None


def gap_notices(entries: list[tuple[str, bus.Envelope]]) -> list[md.MarketEvent]:
    return [
        ev
        for _, e in entries
        for ev in e.market.events
        if ev.HasField("notice") and ev.notice.kind == md.NOTICE_KIND_GAP and ev.notice.since_ns > 0
    ]


def assert_once_per_point(entries: list[tuple[str, bus.Envelope]]) -> None:
    """No venue batch twice: each (epoch, position) once, positions rising within an epoch; and
    every epoch's trades without a hole or a repeat, symbol by symbol."""
    points = [(e.market.epoch, e.market.position) for _, e in entries if e.market.epoch]
    assert len(points) == len(set(points)), "a venue batch written twice"
    by_epoch: dict[int, list[int]] = defaultdict(list)
    for epoch, position in points:
        by_epoch[epoch].append(position)
    for epoch, positions in by_epoch.items():
        assert positions == sorted(positions), f"epoch {epoch}: positions out of order"
    trades: dict[tuple[int, str], list[int]] = defaultdict(list)
    for _, e in entries:
        for ev in e.market.events:
            if ev.HasField("trade"):
                trades[(e.market.epoch, ev.symbol)].append(int(ev.trade.trade_id))
    assert trades, "no trades"
    for key, ids in trades.items():
        assert len(ids) == len(set(ids)), f"{key}: a trade written twice"
        assert sorted(ids) == list(range(min(ids), max(ids) + 1)), f"{key}: trades missing"


def shape(envelope: bus.Envelope) -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    """The fields an entry sets: the envelope's, its batch's, and its events' payload kinds."""
    return (
        frozenset(f.name for f, _ in envelope.ListFields()),
        frozenset(f.name for f, _ in envelope.market.ListFields()),
        frozenset(str(ev.WhichOneof("payload")) for ev in envelope.market.events),
    )


async def test_a_direct_venue_writes_what_ingest_writes_in_the_same_shape(
    tmp_path: Path, redis_url: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        by_ingest = await stack.enter_async_context(redis_db(redis_url))
        by_venue = await stack.enter_async_context(redis_db(redis_url))
        followed = start_sim(stack, tmp_path)
        mesh = MeshProcesses(tmp_path, by_ingest)
        stack.push_async_callback(mesh.stop_all)
        mesh.start("ingest", "--venue", f"sim={followed.address}", "--no-executions")
        start_sim(stack, tmp_path, *direct(by_venue))
        for url in (by_ingest, by_venue):
            await until(functools.partial(trade_count, url, 2000), 30, 0.2, "2,000 trades on the bus")
    for stream in ("md.{sim}.trades", "md.{sim}.book", "md.{sim}.tickers"):
        ingested, written = await batches(by_ingest, stream), await batches(by_venue, stream)
        shapes = {shape(e) for _, e in ingested}, {shape(e) for _, e in written}
        assert shapes[0] == shapes[1], stream
        assert len({e.market.epoch for _, e in written}) == 1, "one venue process: one epoch"
        assert {ev.symbol for _, e in written for ev in e.market.events} == SYMBOLS
        assert all(e.source.startswith("venue/") for _, e in written)
    assert_once_per_point(await batches(by_venue, TRADES))


@pytest.mark.slow  # a long fault test: not in the fast tier
async def test_a_direct_venue_killed_and_restarted_marks_the_gap_from_its_last_trade(
    tmp_path: Path, redis_url: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(redis_db(redis_url))
        venue = start_sim(stack, tmp_path, *direct(url))
        await until(lambda: trade_count(url, 1000), 30, 0.2, "1,000 trades")
        venue.process.send_signal(signal.SIGKILL)
        venue.process.wait()
        # Its lease lapses within its ttl; the new process takes it and goes on from the bus.
        start_sim(stack, tmp_path, *direct(url), port=venue.port)
        await until(lambda: _gaps(url), 30, 0.2, "gap markers")
        before = await trade_count(url, 0) or 0
        await until(lambda: trade_count(url, before + 1000), 30, 0.2, "trades after the gap")
    entries = await batches(url, TRADES)
    assert_once_per_point(entries)
    trades = [ev for _, e in entries for ev in e.market.events]
    ours = gap_notices(entries)
    assert {g.symbol for g in ours} == SYMBOLS
    for gap in ours:
        assert gap.notice.channel == md.CHANNEL_TRADES
        last_before = max(e.ts_event_ns for e in trades[: trades.index(gap)] if e.HasField("trade"))
        assert gap.notice.since_ns == last_before
    assert len({e.market.epoch for _, e in entries if e.market.epoch}) == 2


async def _gaps(url: str) -> list[md.MarketEvent] | None:
    return gap_notices(await batches(url, TRADES)) or None


@pytest.mark.slow  # a long fault test: not in the fast tier
async def test_redis_restarted_empty_gives_a_direct_venue_gap_markers_and_it_goes_on(tmp_path: Path) -> None:
    async with contextlib.AsyncExitStack() as stack:
        redis = OwnRedis(tmp_path)
        stack.callback(redis.kill)
        redis.start()
        start_sim(stack, tmp_path, *direct(redis.url))
        await until(lambda: trade_count(redis.url, 1000), 30, 0.2, "1,000 trades")
        redis.kill()
        await asyncio.sleep(1.0)
        redis.start()
        await until(lambda: _gaps(redis.url), 30, 0.2, "gap markers after the restart")
        await until(lambda: trade_count(redis.url, 1000), 30, 0.2, "trades after the restart")
        entries = await batches(redis.url, TRADES)  # before the stack ends this Redis
    assert "Redis restarted" in (tmp_path / "sim.log").read_text()
    assert_once_per_point(entries)
    gaps = gap_notices(entries)
    assert {g.symbol for g in gaps} == SYMBOLS
    assert all(0 < g.notice.since_ns < g.ts_event_ns for g in gaps), "since when events may be missing"


@pytest.mark.slow  # a long fault test: not in the fast tier
async def test_redis_stalled_past_the_queue_bound_is_resumed_from_the_venue_without_loss(
    tmp_path: Path,
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        redis = OwnRedis(tmp_path)
        stack.callback(redis.kill)
        redis.start()
        # A writer's queue of 20 entries, and a fan-out queue of 256 batches: a Redis stalled goes past both.
        venue = start_sim(stack, tmp_path, *direct(redis.url), "--bus-max-queued", "20")
        await until(lambda: trade_count(redis.url, 1000), 30, 0.2, "1,000 trades")
        assert redis.process is not None
        redis.process.send_signal(signal.SIGSTOP)
        try:  # the fan-out drops its trades subscriber a queue behind (256 steps); the feed goes on
            await until(lambda: trades_unread(venue), 60, 0.2, "the writer's trades stream dropped")
        finally:
            redis.process.send_signal(signal.SIGCONT)
        before = await trade_count(redis.url, 0) or 0
        await until(lambda: trade_count(redis.url, before + 3000), 30, 0.2, "trades after the stall")
        entries = await batches(redis.url, TRADES)  # before the stack ends this Redis
    assert_once_per_point(entries)
    assert not gap_notices(entries), "a stream resumed from the venue's history needs no gap marker"
    assert len({e.market.epoch for _, e in entries}) == 1
    assert "fell a whole queue behind" in (tmp_path / "sim.log").read_text()


async def trades_unread(venue: ServiceProcess) -> bool | None:
    """True once no subscriber (the venue's own relay of md.{sim}.trades) follows its trades."""
    async with grpc.aio.insecure_channel(venue.address) as channel:
        status = await admin_grpc.AdminStub(channel).GetStatus(
            admin.GetStatusRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    trades = [s.subscriber_count for s in status.streams if s.channel == md.CHANNEL_TRADES]
    return True if trades and not any(trades) else None


@pytest.mark.slow  # a long fault test: not in the fast tier
async def test_a_venue_switched_from_ingest_to_direct_and_back_is_written_by_one_at_a_time(
    tmp_path: Path, redis_url: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(redis_db(redis_url))
        venue = start_sim(stack, tmp_path)
        port = venue.port
        mesh = MeshProcesses(tmp_path, url)
        stack.push_async_callback(mesh.stop_all)
        mesh.start("ingest", "--venue", f"sim=127.0.0.1:{port}")
        await until(lambda: trade_count(url, 1000, "ingest/"), 30, 0.2, "1,000 trades by ingest")
        await asyncio.to_thread(venue.terminate)
        venue = start_sim(stack, tmp_path, *direct(url), port=port)
        await until(lambda: trade_count(url, 1000, "venue/"), 30, 0.2, "1,000 trades by the venue")
        await asyncio.to_thread(venue.terminate)  # gracefully: its claim goes, ingest takes it back
        start_sim(stack, tmp_path, port=port)
        before = await trade_count(url, 0, "ingest/") or 0
        await until(lambda: trade_count(url, before + 1000, "ingest/"), 30, 0.2, "ingest's trades again")
        await mesh.stop_all()
    assert "it writes its own streams" in mesh.log("ingest")
    entries = await batches(url, TRADES)
    assert_once_per_point(entries)
    writers = [e.source.split("/")[0] for _, e in entries if e.market.epoch]
    runs = [w for i, w in enumerate(writers) if i == 0 or writers[i - 1] != w]
    assert runs == ["ingest", "venue", "ingest"], "one writer at a time, in turn"
    epochs = {e.market.epoch for _, e in entries if e.market.epoch}
    assert len(epochs) == 3  # one venue process each time
    assert len(gap_notices(entries)) >= 2 * len(SYMBOLS), "each switch is a venue restart: gap-marked"
