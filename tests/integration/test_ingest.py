"""Ingest as a real process between a real sim venue and a real Redis: what reaches the bus."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections import defaultdict
from pathlib import Path

import pytest

from tests.forked_services import run_command
from tests.integration.mesh import MeshProcesses, OwnRedis, read_stream, redis_db, sim_config
from tests.integration.redis_server import redis_url
from tests.integration.support import TEST_TOKEN, VENUE_ENV, until
from trademesh.core.platform.config.env import TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = pytest.mark.integration
__all__ = ["redis_url"]  # the fixture, for pytest

# About 10,000 events/s: three symbols x (1,000 trades + 2,300 book updates) a second.
TRADES_PER_S, BOOK_PER_S = 1000, 2300


def start_sim(stack: contextlib.AsyncExitStack, tmp_path: Path, port: int = 0) -> ServiceProcess:
    """A sim venue, ended when `stack` closes (an exit stack runs every callback, whatever fails)."""
    config = sim_config(tmp_path, TRADES_PER_S, BOOK_PER_S)
    args = ["venue", "sim", "--port", str(port), "--metrics-port", "-1", "--config", str(config)]
    with (tmp_path / "sim.log").open("a") as log:
        venue = start_service(args, env=VENUE_ENV, stderr=log)
    stack.push_async_callback(asyncio.to_thread, venue.terminate)
    return venue


def mesh_processes(stack: contextlib.AsyncExitStack, tmp_path: Path, redis_url: str) -> MeshProcesses:
    mesh = MeshProcesses(tmp_path, redis_url)
    stack.push_async_callback(mesh.stop_all)
    return mesh


def trade_ids(events: list[md.MarketEvent]) -> dict[str, list[int]]:
    ids: dict[str, list[int]] = defaultdict(list)
    for event in events:
        if event.HasField("trade"):
            ids[event.symbol].append(int(event.trade.trade_id))
    return ids


def gap_notices(events: list[md.MarketEvent]) -> list[md.MarketEvent]:
    return [e for e in events if e.HasField("notice") and e.notice.kind == md.NOTICE_KIND_GAP]


async def count_trades(redis_url: str, at_least: int) -> int | None:
    count = sum(len(v) for v in trade_ids(await read_stream(redis_url, "md.{sim}.trades")).values())
    return count if count >= at_least else None


@pytest.mark.slow  # a long fault test: not in the fast tier
@pytest.mark.exclusive  # asserts the 10,000 events/s the sim makes: no other test beside it
async def test_kill_9_mid_stream_then_restart_loses_and_repeats_nothing(
    tmp_path: Path, redis_url: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(redis_db(redis_url))
        venue = start_sim(stack, tmp_path)
        mesh = mesh_processes(stack, tmp_path, url)
        ingest = mesh.start("ingest", "--venue", f"sim={venue.address}")
        await until(lambda: count_trades(url, 3000), 30, 0.2, "3,000 trades on the bus")
        ingest.process.send_signal(signal.SIGKILL)
        ingest.process.wait()
        await asyncio.sleep(1.5)  # the venue goes on: about 15,000 events nobody reads
        mesh.start("ingest", "--venue", f"sim={venue.address}")
        before = await count_trades(url, 0) or 0
        await until(lambda: count_trades(url, before + 6000), 30, 0.2, "6,000 more trades")
    trades = await read_stream(url, "md.{sim}.trades")
    book = await read_stream(url, "md.{sim}.book")
    for symbol, ids in trade_ids(trades).items():
        assert len(ids) == len(set(ids)), f"{symbol}: a trade published twice"
        assert sorted(ids) == list(range(min(ids), max(ids) + 1)), f"{symbol}: trades missing"
    assert not gap_notices(trades), "a resumed stream needs no gap marker"
    assert "resumed after position" in mesh.log("ingest")
    sequences: dict[str, list[int]] = defaultdict(list)
    for event in book:
        if event.HasField("book_delta"):
            sequences[event.symbol].append(event.book_delta.sequence)
    for symbol, seqs in sequences.items():
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), f"{symbol}: book deltas not contiguous"
    # The rate the test claims: events per second of venue time on the bus.
    times = [e.ts_event_ns for e in trades + book]
    rate = len(times) / ((max(times) - min(times)) / 1e9)
    assert rate >= 9000, f"only {rate:,.0f} events/s"


@pytest.mark.slow  # a long fault test: not in the fast tier
async def test_a_restarted_venue_gives_gap_markers_with_their_start(tmp_path: Path, redis_url: str) -> None:
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(redis_db(redis_url))
        venue = start_sim(stack, tmp_path)
        port = venue.port
        mesh = mesh_processes(stack, tmp_path, url)
        mesh.start("ingest", "--venue", f"sim=127.0.0.1:{port}")
        await until(lambda: count_trades(url, 1000), 30, 0.2, "1,000 trades")
        venue.process.send_signal(signal.SIGKILL)
        venue.process.wait()
        start_sim(stack, tmp_path, port)
        await until(lambda: _gaps(url), 30, 0.2, "gap markers")
        before = await count_trades(url, 0) or 0
        await until(lambda: count_trades(url, before + 1000), 30, 0.2, "trades after the gap")
        await mesh.stop_all()  # before the restarted venue: ingest sees no second disconnect
    trades = await read_stream(url, "md.{sim}.trades")
    ours = [g for g in gap_notices(trades) if g.notice.since_ns > 0]
    assert {g.symbol for g in ours} == {"BTC/USDT", "ETH/USDT", "SOL/USDT"}
    for gap in ours:
        assert gap.notice.channel == md.CHANNEL_TRADES
        last_before = max(e.ts_event_ns for e in trades[: trades.index(gap)] if e.HasField("trade"))
        assert gap.notice.since_ns == last_before
        assert gap.ts_event_ns > gap.notice.since_ns


async def _gaps(url: str) -> list[md.MarketEvent] | None:
    found = [g for g in gap_notices(await read_stream(url, "md.{sim}.trades")) if g.notice.since_ns > 0]
    return found or None


@pytest.mark.slow  # a long fault test: not in the fast tier
async def test_redis_restarted_empty_gives_gap_markers_and_ingest_goes_on(tmp_path: Path) -> None:
    async with contextlib.AsyncExitStack() as stack:
        redis = OwnRedis(tmp_path)
        stack.callback(redis.kill)
        redis.start()
        venue = start_sim(stack, tmp_path)
        mesh = mesh_processes(stack, tmp_path, redis.url)
        mesh.start("ingest", "--venue", f"sim={venue.address}")
        await until(lambda: count_trades(redis.url, 1000), 30, 0.2, "1,000 trades")
        redis.kill()
        await asyncio.sleep(1.0)
        redis.start()
        await until(lambda: _gaps(redis.url), 30, 0.2, "gap markers after the restart")
        await until(lambda: count_trades(redis.url, 1000), 30, 0.2, "trades after the restart")
    assert "Redis restarted" in mesh.log("ingest")


def test_ingest_without_venues_says_so() -> None:
    env = {**os.environ, TOKEN: TEST_TOKEN}
    result = run_command(["ingest", "--port", "0", "--metrics-port", "-1"], env, timeout_s=30)
    assert result.returncode == 2
    assert "no venues to follow" in result.stderr
    assert "Traceback" not in result.stderr


def test_ingest_names_a_malformed_venue_flag() -> None:
    result = run_command(["ingest", "--port", "0", "--venue", "sim-127.0.0.1"], timeout_s=30)
    assert result.returncode == 2
    assert "'sim-127.0.0.1' is not NAME=HOST:PORT" in result.stderr


async def test_a_configured_symbol_the_venue_does_not_list_is_dropped_and_the_others_reach_the_bus(
    tmp_path: Path, redis_url: str
) -> None:
    config = tmp_path / "mesh.toml"
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(redis_db(redis_url))
        venue = start_sim(stack, tmp_path)
        config.write_text(
            f'[[venues]]\nname = "sim"\naddress = "{venue.address}"\n'
            'symbols = ["BTC/USDT", "DOGE/USDT"]\nchannels = ["trades", "book"]\n'
        )
        mesh = mesh_processes(stack, tmp_path, url)
        mesh.start("ingest", "--mesh-config", str(config))
        await until(lambda: count_trades(url, 1000), 30, 0.2, "1,000 trades")
        said = [line for line in mesh.log("ingest").splitlines() if "DOGE/USDT not followed" in line]
        assert len(said) == 2, said  # once per stream: trades, book
    for stream in ("md.{sim}.trades", "md.{sim}.book"):
        events = await read_stream(url, stream)
        assert {e.symbol for e in events} == {"BTC/USDT"}, "a refusal is no market event for the bus"
