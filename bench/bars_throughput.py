"""Trades per second one `trademesh bars` process keeps up with: a catch-up, then a paced live feed.

Publishes entries of 100 trades (4 symbols) to a stream of its own on a real Redis, starts the
bars process, and watches the group's acknowledged entries (each acknowledged in the same
transaction as its bars and checkpoint) and the process's CPU time from /proc.

    .venv/bin/python bench/bars_throughput.py --trades 500000 --rate 10000 --live-s 10

Only talks to the given Redis (default 127.0.0.1:6379); deletes its keys at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import time
import uuid
from pathlib import Path

from trademesh.core.platform.bus.codec import encode_market
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.bus.redis import BusRedis, open_redis
from trademesh.core.platform.service.process import start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md

S = 1_000_000_000
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT", "XRP/USDT"]
PER_ENTRY = 100


def entry(rng: random.Random, first_id: int, ts: int, step_ns: int) -> tuple[bytes, int]:
    """An encoded entry of PER_ENTRY trades from ts on; the last trade's time."""
    events = []
    for i in range(PER_ENTRY):
        ts += rng.randrange(step_ns * 2)
        event = md.MarketEvent(venue="bench", symbol=SYMBOLS[i % len(SYMBOLS)], ts_event_ns=ts, ts_recv_ns=ts)
        event.trade.trade_id = str(first_id + i)
        event.trade.price = f"{65000 + rng.randrange(-50000, 50000) / 100:.2f}"
        event.trade.size = f"{rng.randrange(1, 100000) / 100000:.5f}"
        events.append(event)
    return encode_market("bench", events), ts


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def acked(redis: BusRedis, stream: str) -> int:
    for group in await redis.xinfo_groups(stream):
        if group["name"] == b"bars":
            return int(group["entries-read"] or 0) - int(group["pending"])
    return 0


async def wait_acked(redis: BusRedis, stream: str, count: int, timeout_s: float = 300.0) -> None:
    deadline = time.monotonic() + timeout_s
    while await acked(redis, stream) < count:
        if time.monotonic() > deadline:
            raise TimeoutError(f"only {await acked(redis, stream)} of {count} entries acknowledged")
        await asyncio.sleep(0.01)


async def catch_up(redis: BusRedis, url: str, stream: str, trades: int, rate: int) -> int:
    """A backlog (event time an hour ago, `rate` trades per second of it), then the process."""
    publisher = Publisher(redis, Retention(10_000, 10))
    rng, ts = random.Random(1), time.time_ns() - 3600 * S
    entries = trades // PER_ENTRY
    for i in range(entries):
        data, ts = entry(rng, i * PER_ENTRY, ts, S // rate)
        publisher.add(stream, data)
        if i % 200 == 199:
            await publisher.flush()
    await publisher.flush()
    process = start_service(
        ["bars", "--port", "0", "--metrics-port", "-1", "--redis-url", url, "--streams", stream]
    )
    started = time.monotonic()
    await wait_acked(redis, stream, entries)
    took = time.monotonic() - started
    print(f"catch-up: {entries * PER_ENTRY} trades in {entries} entries in {took:.2f} s: "
          f"{entries * PER_ENTRY / took:,.0f} trades/s")  # fmt: skip
    return process.process.pid


async def live(redis: BusRedis, stream: str, pid: int, rate: int, seconds: float) -> None:
    """`rate` trades per second stamped now, one entry every PER_ENTRY/rate s."""
    rng, base = random.Random(2), await acked(redis, stream)
    count = int(rate * seconds) // PER_ENTRY
    cpu0, t0, worst = cpu_s(pid), time.monotonic(), 0
    for i in range(count):
        data, _ = entry(rng, 10**12 + i * PER_ENTRY, time.time_ns(), 1)
        await redis.xadd(stream, {b"d": data})
        worst = max(worst, i + 1 - (await acked(redis, stream) - base))
        await asyncio.sleep(max(0.0, t0 + (i + 1) * PER_ENTRY / rate - time.monotonic()))
    sent_s = time.monotonic() - t0
    await wait_acked(redis, stream, base + count)
    drained_s = time.monotonic() - t0 - sent_s
    cpu = (cpu_s(pid) - cpu0) / (time.monotonic() - t0)
    offered = count * PER_ENTRY / sent_s
    print(f"live: {offered:,.0f} trades/s offered for {sent_s:.1f} s; worst backlog {worst} entries; "
          f"drained {drained_s:.2f} s after the last; CPU {cpu:.0%} of one core")  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    redis = open_redis(args.redis_url, read_timeout_s=30)
    name = f"bench{uuid.uuid4().hex[:6]}"
    stream = f"md.{{{name}}}.trades"
    try:
        pid = await catch_up(redis, args.redis_url, stream, args.trades, args.rate)
        await live(redis, stream, pid, args.rate, args.live_s)
        os.kill(pid, 15)
    finally:
        keys = [key async for key in redis.scan_iter(match=f"*{name}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--trades", type=int, default=500_000, help="backlog for the catch-up")
    parser.add_argument("--rate", type=int, default=10_000, help="trades per second of the live feed")
    parser.add_argument("--live-s", type=float, default=10.0, help="how long the live feed runs")
    asyncio.run(main(parser.parse_args()))
