"""The durable path's fixed costs: what one bus read and one recorder transaction cost, whatever
they hold (docs/benchmarks-history.md §4, "the durable path's cost per event").

    .venv/bin/python bench/durable_fixed_costs.py [--rounds 3000] [--transactions 1500]

- A consumer round: trademesh.core.platform.bus.consumer's read_new (XREADGROUP over the bridge's ten streams,
  decode, XACK) with a handler that does nothing, by how many streams hold an entry of 10 events;
  this process's CPU per round, the XADDs that feed it subtracted.
- A recorder transaction: BEGIN, a COPY of 1 (or 300) book rows straight into `book_events`,
  COMMIT, on one asyncpg connection to a scratch database the recorder's migrations made; the
  backend's CPU (/proc) and this process's, per transaction. Also with synchronous_commit off (the
  WAL flush's share) and asyncpg's pool reset query alone (what a pool runs on each release).

Redis: logical db --redis-db (7), only keys of its own (deleted at the end; nothing flushed).
PostgreSQL: $DATABASE_URL or postgres@127.0.0.1, a scratch database, dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import uvloop

from trademesh.core.platform.bus.codec import FIELD, encode_market
from trademesh.core.platform.bus.consumer import ConsumerOptions, Entry, GroupConsumer
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.config.env import database_url
from trademesh.core.recorder.app import RecorderConfig, prepare
from trademesh.core.recorder.copy_text import COPY_COLUMNS
from trademesh.core.recorder.database import open_pool
from trademesh.marketdata.v1 import marketdata_pb2 as md

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

_RESET = "SELECT pg_advisory_unlock_all();\nCLOSE ALL;\nUNLISTEN *;\nRESET ALL;"  # asyncpg's
_BRIDGE_STREAMS = ("book", "trades", "tickers", "1s", "1m", "5m", "15m", "1h", "4h", "1d")


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def consumer_rounds(redis_url: str, rounds: int) -> None:
    redis = open_redis(redis_url)
    tag = uuid.uuid4().hex[:8]
    streams = [f"bench.fixed.{tag}.{name}" for name in _BRIDGE_STREAMS]
    event = md.MarketEvent(venue="sim", symbol="BTC/USDT", ts_event_ns=1, ts_recv_ns=1)
    event.book_delta.sequence = 1
    event.book_delta.bids.add(price="65000.5", size="1.25")
    entry = encode_market("bench", [event] * 10)

    async def nothing(stream: str, entries: list[Entry]) -> None:
        return None

    options = ConsumerOptions("g", "c", streams=tuple(streams), start_id="$", block_ms=1)
    consumer = GroupConsumer(redis, options, nothing)
    try:
        await consumer.start()
        for with_entries in (1, 3, 1, 3):
            feeding, started = 0.0, time.process_time()
            for _ in range(rounds):
                before = time.process_time()
                async with redis.pipeline(transaction=False) as pipe:
                    for stream in streams[:with_entries]:
                        pipe.xadd(stream, {FIELD: entry})
                    await pipe.execute()
                feeding += time.process_time() - before
                await consumer.read_new()
            per_round = 1e6 * (time.process_time() - started - feeding) / rounds
            print(f"consumer round, {with_entries} of 10 streams with an entry: {per_round:.0f} µs CPU")
    finally:
        await redis.delete(*streams)
        await redis.aclose()


async def transactions(server_url: str, count: int) -> None:
    async with common.scratch_database(server_url, "bench_fixed") as url:
        pool = await open_pool(url, size=1)
        try:
            await prepare(pool, RecorderConfig(database_url=url, redis_url=""))
        finally:
            await pool.close()
        conn = await asyncpg.connect(url)
        try:
            await _transactions(conn, count)
        finally:
            await conn.close()


async def _transactions(conn: Any, count: int) -> None:
    backend = int(await conn.fetchval("SELECT pg_backend_pid()"))
    sequence = [0]
    now = time.time_ns()

    def rows(n: int) -> memoryview:
        lines = []
        for _ in range(n):
            sequence[0] += 1
            ts = now + sequence[0]
            lines.append(f"sim\tBTC/USDT\t{ts}\t{ts}\t{sequence[0]}\tf\t{{65000.5}}\t{{1.25}}\t{{}}\t{{}}\n")
        return memoryview("".join(lines).encode())

    def copy(n: int, sync: bool = True) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            async with conn.transaction():
                if not sync:
                    await conn.execute("SET LOCAL synchronous_commit = off")
                source = rows(n)
                await conn.copy_to_table("book_events", source=source, columns=COPY_COLUMNS["book_events"])

        return run

    async def reset() -> None:
        await conn.execute(_RESET)

    cases = [
        ("COPY of 1 row", copy(1)),
        ("COPY of 1 row, synchronous_commit off", copy(1, sync=False)),
        ("COPY of 300 rows", copy(300)),
        ("asyncpg's pool reset query alone", reset),
    ]
    for label, job in cases:
        backend_before, own_before = _cpu_s(backend), time.process_time()
        for _ in range(count):
            await job()
        backend_us = 1e6 * (_cpu_s(backend) - backend_before) / count
        own_us = 1e6 * (time.process_time() - own_before) / count
        print(f"transaction, {label}: PostgreSQL {backend_us:.0f} µs, this process {own_us:.0f} µs")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3000, help="consumer rounds per case")
    parser.add_argument("--transactions", type=int, default=1500, help="transactions per case")
    parser.add_argument("--redis-db", type=int, default=7)
    args = parser.parse_args()
    redis_url = f"redis://127.0.0.1:6379/{args.redis_db}"
    server_url = database_url()
    uvloop.run(consumer_rounds(redis_url, args.rounds))
    uvloop.run(transactions(server_url, args.transactions))


if __name__ == "__main__":
    main()
