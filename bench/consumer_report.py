"""What a bus consumer's once-a-second report (pending and lag per stream) costs: one XINFO GROUPS
round trip a stream (before e129c7c) against all of them in one pipelined round trip
(trademesh.core.platform.bus.consumer.GroupConsumer.report), this process's CPU and wall time a report
(docs/benchmarks-history.md §4, fifteenth session; the current figure: docs/benchmarks.md §4).

    .venv/bin/python bench/consumer_report.py [--streams 10] [--reports 300] [--rounds 3]

Redis: logical db --redis-db (7), only keys of its own (deleted at the end; nothing flushed).
Results: bench/results/consumer_report.json.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import _common as common
import uvloop

from trademesh.core.platform.bus.consumer import ConsumerOptions, GroupConsumer
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.config.env import redis_url

__all__ = ["main"]


async def _one_by_one(redis: Any, streams: list[str]) -> None:
    for stream in streams:
        await redis.xinfo_groups(stream)


async def _measure(report: Callable[[], Awaitable[None]], reports: int) -> dict[str, float]:
    for _ in range(20):
        await report()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(reports):
        await report()
    return {
        "cpu_us": 1e6 * (time.process_time() - cpu) / reports,
        "wall_us": 1e6 * (time.perf_counter() - wall) / reports,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = redis_url().rsplit("/", 1)[0]
    redis = open_redis(f"{base}/{args.redis_db}")
    prefix = f"bench.report.{uuid.uuid4().hex[:8]}"
    streams = [f"{prefix}.{i}" for i in range(args.streams)]
    try:
        for stream in streams:
            await redis.xadd(stream, {b"d": b"x"})
        consumer = GroupConsumer(redis, ConsumerOptions("g", "c", streams=tuple(streams)), _nothing)
        await consumer.ensure_groups()
        rounds = []
        for _ in range(args.rounds):
            one_by_one = await _measure(lambda: _one_by_one(redis, streams), args.reports)
            pipelined = await _measure(consumer.report, args.reports)
            rounds.append({"one_by_one": one_by_one, "pipelined": pipelined})
            print(
                f"{args.streams} streams: one by one {one_by_one['cpu_us']:.0f} us CPU, "
                f"{one_by_one['wall_us']:.0f} us wall; pipelined {pipelined['cpu_us']:.0f} us CPU, "
                f"{pipelined['wall_us']:.0f} us wall (a report)"
            )
    finally:
        await redis.delete(*streams)
        await redis.aclose()
    return {
        "benchmark": "consumer_report",
        "command": common.command_line(),
        "started": common.now_iso(),
        "machine": common.machine(),
        "settings": vars(args),
        "rounds": rounds,
    }


async def _nothing(stream: str, entries: list[Any]) -> None:
    return None


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--reports", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redis-db", type=int, default=7)
    args = parser.parse_args()
    result = uvloop.run(run(args))
    print(f"results: {common.write_result('consumer_report', result)}")


if __name__ == "__main__":
    main()
