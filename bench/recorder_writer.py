"""How fast the recorder writes into a PostgreSQL: a measuring script, not a test.

    .venv/bin/python bench/recorder_writer.py --events 500000
    .venv/bin/python bench/recorder_writer.py --mode pipeline --events 500000

It creates a scratch database on the server (dropped at the end) and a stream mix like the
sim venue's: 7 % trades, 93 % one-level book deltas (--trades-only: trades), in entries of
--per-entry events.
- writer: the entries decoded, turned into rows and written in batches of --batch entries,
  in this process (what the recorder does per batch, without Redis).
- pipeline: the entries published to Redis first, then `trademesh recorder` started as a
  process; events/s from its serving line until the last row is committed, and the
  publish-to-commit latency of rows published while it runs (--live-rate events/s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import _common as bench_common  # bench/ (the script's own directory)
import asyncpg
import uvloop

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.codec import FIELD, decode, encode_market
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.config.env import database_url, redact_url, redis_url
from trademesh.core.platform.service.process import start_service
from trademesh.core.recorder.app import RecorderConfig, prepare
from trademesh.core.recorder.database import open_pool
from trademesh.core.recorder.writer import CHUNK_EVENTS, Writer
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["main"]

_SIM_TRADE_EVERY = 14  # one event in 14 is a trade (7 %)


def _event(venue: str, n: int, now_ns: int, trade_every: int) -> md.MarketEvent:
    event = md.MarketEvent(venue=venue, symbol="BTC/USDT", ts_event_ns=now_ns + n, ts_recv_ns=now_ns + n)
    if n % trade_every == 0:
        event.trade.CopyFrom(
            md.Trade(trade_id=str(n), price="65000.5", size="0.0123", taker_side=common.SIDE_BUY)
        )
    else:
        level = md.BookLevel(price=f"{65000 - n % 50}.5", size=f"{n % 7}.25")
        event.book_delta.CopyFrom(md.BookDelta(sequence=n, bids=[level]))
    return event


def _entries(venue: str, args: argparse.Namespace, events: int, start: int = 0) -> list[bytes]:
    now, end, every = time.time_ns(), start + events, 1 if args.trades_only else _SIM_TRADE_EVERY
    return [
        encode_market(
            "bench", [_event(venue, n, now, every) for n in range(first, min(first + args.per_entry, end))]
        )
        for first in range(start, end, args.per_entry)
    ]


async def run_writer(url: str, args: argparse.Namespace) -> None:
    data = _entries("bench", args, args.events)
    pool = await open_pool(url, size=1)  # one connection: its backend is the one measured
    try:
        partitions = await prepare(pool, RecorderConfig(database_url=url, redis_url=""))
        writer = Writer(pool, partitions, chunk_events=args.chunk_events, direct=not args.staged)
        async with pool.acquire() as conn:
            backend = Path(f"/proc/{await conn.fetchval('SELECT pg_backend_pid()')}/stat")
        cpu = _Cpu(backend)
        started, written = time.perf_counter(), 0
        for first in range(0, len(data), args.batch):
            batch = data[first : first + args.batch]
            written += await writer.write([(str(i), decode({FIELD: raw})) for i, raw in enumerate(batch)])
        elapsed = time.perf_counter() - started
        python_us, backend_us = cpu.per_row_us(written)
    finally:
        await pool.close()
    print(f"writer: {written:,} rows in {elapsed:.2f} s = {written / elapsed:,.0f} rows/s")
    print(f"        CPU per row: this process {python_us:.1f} µs, PostgreSQL backend {backend_us:.1f} µs")


class _Cpu:
    """CPU seconds of this process and, on a local server, of the PostgreSQL backend."""

    def __init__(self, backend: Path) -> None:
        self.backend = backend
        self.start = self._now()

    def _now(self) -> tuple[float, float]:
        own = resource.getrusage(resource.RUSAGE_SELF)
        try:
            fields = self.backend.read_text().rsplit(")", 1)[1].split()
            backend = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:  # a remote server
            backend = float("nan")
        return own.ru_utime + own.ru_stime, backend

    def per_row_us(self, rows: int) -> tuple[float, float]:
        (own_before, backend_before), (own, backend) = self.start, self._now()
        scale = 1e6 / max(rows, 1)
        return (own - own_before) * scale, (backend - backend_before) * scale


async def run_pipeline(url: str, bus_url: str, args: argparse.Namespace) -> None:
    venue = f"bench{uuid.uuid4().hex[:6]}"
    client: Any = open_redis(bus_url, read_timeout_s=30)
    publisher = Publisher(client, Retention(entries_per_s=args.events, outage_minutes=10))
    try:
        for raw in _entries(venue, args, args.events):
            publisher.add(f"md.{{{venue}}}.book", raw)
        await publisher.flush()
        recorder = await asyncio.to_thread(
            start_service,
            [
                *("recorder", "--port", "0", "--metrics-port", "-1", "--database-url", url),
                *("--redis-url", bus_url, "--stream-pattern", f"md.{{{venue}}}.*"),
                *("--batch", str(args.batch), "--group", venue),
            ],
        )
        try:
            await _drain(url, args.events)
            if args.live_rate:
                await _live(url, publisher, venue, args)
        finally:
            await asyncio.to_thread(recorder.terminate)
    finally:
        await client.delete(f"md.{{{venue}}}.book")
        await client.aclose()


async def _drain(url: str, events: int) -> None:
    conn = await asyncpg.connect(url)
    started = time.perf_counter()
    try:
        await _wait_for(conn, events)
    finally:
        await conn.close()
    elapsed = time.perf_counter() - started
    rate = events / elapsed
    print(f"pipeline: backlog of {events:,} events recorded in {elapsed:.2f} s = {rate:,.0f} events/s")


async def _wait_for(conn: Any, events: int, timeout_s: float = 600.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (count := await _count(conn)) < events:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {count:,} of {events:,} events recorded after {timeout_s} s")
        await asyncio.sleep(0.05)


async def _count(conn: Any) -> int:
    count: int = await conn.fetchval(
        "SELECT (SELECT count(*) FROM trades) + (SELECT count(*) FROM book_events)"
    )
    return count


async def _live(url: str, publisher: Publisher, venue: str, args: argparse.Namespace) -> None:
    """Publishes at --live-rate for --live-s seconds in 10 ms ticks; then latency per row."""
    per_tick, sent, start = max(1, args.live_rate // 100), 0, time.perf_counter()
    while time.perf_counter() - start < args.live_s:
        data = _entries(venue, args, per_tick, start=args.events + sent)
        for raw in data:
            publisher.add(f"md.{{{venue}}}.book", raw)
        await publisher.flush()
        sent += per_tick
        await asyncio.sleep(max(0.0, start + sent / args.live_rate - time.perf_counter()))
    conn = await asyncpg.connect(url)
    try:
        await _wait_for(conn, args.events + sent)
        latencies = await conn.fetch(
            "SELECT extract(epoch FROM recorded_at) * 1e3 - ts_recv_ns / 1e6 AS ms FROM book_events"
            " WHERE sequence >= $1 UNION ALL SELECT extract(epoch FROM recorded_at) * 1e3 - ts_recv_ns / 1e6"
            " FROM trades WHERE trade_id::bigint >= $1",
            args.events,
        )
    finally:
        await conn.close()
    ms = sorted(float(r["ms"]) for r in latencies)
    p99 = ms[int(len(ms) * 0.99) - 1]
    print(
        f"live: {sent:,} events at {args.live_rate:,}/s; receive-to-commit latency"
        f" p50 {statistics.median(ms):.0f} ms, p99 {p99:.0f} ms, max {ms[-1]:.0f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    async with bench_common.scratch_database(database_url(args.database_url), "rec_bench") as url:
        print(
            f"database {redact_url(url)}; {args.events:,} events, {args.per_entry} per entry,"
            f" batch {args.batch}"
        )
        if args.mode == "writer":
            await run_writer(url, args)
        else:
            await run_pipeline(url, redis_url(args.redis_url), args)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mode", choices=("writer", "pipeline"), default="writer")
    parser.add_argument("--database-url", help="a server where a scratch database may be created")
    parser.add_argument("--redis-url")
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--per-entry", type=int, default=100, help="events per bus entry")
    parser.add_argument("--trades-only", action="store_true", help="only trades (default: the sim's mix)")
    parser.add_argument("--batch", type=int, default=500, help="bus entries per transaction")
    parser.add_argument(
        "--chunk-events",
        type=int,
        default=CHUNK_EVENTS,
        help="writer: events per chunk; a batch's worth or more turns off the Python/PostgreSQL overlap",
    )
    parser.add_argument(
        "--staged", action="store_true", help="writer: every row staged and moved (no COPY straight in)"
    )
    parser.add_argument("--live-rate", type=int, default=0, help="pipeline: then publish this many events/s")
    parser.add_argument("--live-s", type=float, default=10.0)
    return parser


if __name__ == "__main__":
    uvloop.run(main(_parser().parse_args()))
