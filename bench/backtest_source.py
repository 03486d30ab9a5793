"""How fast RecordedSource (trademesh.core.backtest.source) reads recorded trades back as MarketEvents
(issue 18's backtests): a measuring script, not a test.

It creates a scratch database on the server (dropped at the end), records --rows trades of
--symbols symbols through the recorder's writer (trademesh.core.recorder.writer, as the recorder does),
then iterates a RecordedSource over all of them --repeats times, each a new connection and
snapshot, pages of --chunk rows per symbol. The figure is the median rows/s; CPU per row is
this process's (asyncpg, the merge, the protobufs) and the PostgreSQL backend's.

    .venv/bin/python bench/backtest_source.py                 # 200,000 trades, 3 runs
    .venv/bin/python bench/backtest_source.py --chunk 1000 --explain
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import time
from pathlib import Path

import asyncpg

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.backtest.source import RecordedSource
from trademesh.core.platform.bus.codec import FIELD, decode, encode_market
from trademesh.core.platform.config.env import database_url, redact_url
from trademesh.core.recorder.app import RecorderConfig, prepare
from trademesh.core.recorder.database import open_pool
from trademesh.core.recorder.writer import Writer
from trademesh.marketdata.v1 import marketdata_pb2 as md

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as bench_common

VENUE = "bench"
_PER_ENTRY = 500
_PER_BATCH = 20


def _trades(rows: int, symbols: int, start_ns: int) -> list[bytes]:
    """Bus entries of `rows` trades round-robin over the symbols, a microsecond apart."""
    sides = (common.SIDE_BUY, common.SIDE_SELL)
    events = []
    for n in range(rows):
        event = md.MarketEvent(
            venue=VENUE,
            symbol=f"S{n % symbols}/USDT",
            ts_event_ns=start_ns + n * 1000,
            ts_recv_ns=start_ns + n * 1000 + 350,
        )
        event.trade.CopyFrom(
            md.Trade(
                trade_id=str(n),
                price=f"{65000 + n % 991}.5",
                size=f"0.0{n % 97 + 1}",
                taker_side=sides[n % 2],
            )
        )
        events.append(event)
    return [encode_market("bench", events[i : i + _PER_ENTRY]) for i in range(0, rows, _PER_ENTRY)]


async def _record(url: str, data: list[bytes]) -> None:
    pool = await open_pool(url)
    try:
        writer = Writer(pool, await prepare(pool, RecorderConfig(database_url=url, redis_url="")))
        for first in range(0, len(data), _PER_BATCH):
            batch = data[first : first + _PER_BATCH]
            await writer.write([(f"{first + i + 1}-0", decode({FIELD: raw})) for i, raw in enumerate(batch)])
    finally:
        await pool.close()


async def _run(source: RecordedSource) -> tuple[int, float, float]:
    """Rows, seconds, CPU seconds of this process."""
    cpu = _cpu()
    started, rows = time.perf_counter(), 0
    async for _ in source:
        rows += 1
    return rows, time.perf_counter() - started, _cpu() - cpu


def _cpu() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    return own.ru_utime + own.ru_stime


async def _explain(url: str, source: RecordedSource) -> None:
    """The plan of a next-page query, to check it is an index range scan."""
    stream = source._streams[0]  # a measuring script looks inside
    conn = await asyncpg.connect(url)
    try:
        args = (*stream.match, stream.high, source.chunk, stream.low + 1000 * 1000, "1000")
        plan = await conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + stream.next_sql(), *args)
        print("\n".join(record[0] for record in plan))
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> None:
    server = database_url(args.database_url)
    try:
        async with bench_common.scratch_database(server, "bt_bench") as url:
            await _measure(args, url)
    finally:
        print(f"database: {redact_url(server)}")


async def _measure(args: argparse.Namespace, url: str) -> None:
    start_ns = time.time_ns() // 10**9 * 10**9
    started = time.perf_counter()
    await _record(url, _trades(args.rows, args.symbols, start_ns))
    seconds = time.perf_counter() - started
    print(f"recorded {args.rows:,} trades of {args.symbols} symbols in {seconds:.1f} s")
    symbols = [f"S{n}/USDT" for n in range(args.symbols)]
    source = RecordedSource(
        url, VENUE, symbols, start_ns, start_ns + args.rows * 1000, {"trade"}, chunk=args.chunk
    )
    if args.explain:
        await _explain(url, source)
    rates = []
    for run in range(args.repeats):
        rows, seconds, cpu = await _run(source)
        assert rows == args.rows, rows
        rates.append(rows / seconds)
        print(f"run {run + 1}: {rows:,} rows in {seconds:.2f} s = {rows / seconds:,.0f} rows/s, "
              f"this process's CPU {cpu / rows * 1e6:.1f} µs/row")  # fmt: skip
    print(f"median of {args.repeats}: {statistics.median(rates):,.0f} rows/s (chunk {args.chunk})")


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--symbols", type=int, default=1)
    parser.add_argument("--chunk", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--explain", action="store_true", help="print a next-page query's plan")
    parser.add_argument("--database-url", help="the server (default: $DATABASE_URL, else the local one)")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_parse()))
