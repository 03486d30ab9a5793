"""How many events a second the bridge passes through: a quick script, not a timed test.

    .venv/bin/python bench/bridge_fanout.py [--events 500000] [--redis-url URL]

It starts a `trademesh bridge` process, subscribes clients, pauses the bridge (SIGSTOP),
publishes a backlog of trade events to the bus, resumes it and times how long the clients
take to receive everything: the bridge's throughput with the bus never the bottleneck.
Clients count bytes instead of parsing (every test event encodes to the same size), so a
Python client is not the bottleneck either. Scenarios: one subscriber; ten subscribers of
everything (each gets every event); ten subscribers of one symbol each.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc

from trademesh.core.bridge.encode import event_chunk
from trademesh.core.platform.bus.codec import encode_market
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.bus.redis import BusRedis, open_redis
from trademesh.core.platform.config.env import redis_url
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["main", "run"]

SYMBOLS = [f"B{i:02d}/USDT" for i in range(10)]
EVENTS_PER_ENTRY = 100
_SUBSCRIBE = "/trademesh.livedata.v1.LiveData/Subscribe"
_TS = 1_700_000_000_000_000_000  # every test event's times encode to the same size


def _event(venue: str, symbol: str, n: int) -> md.MarketEvent:
    trade = md.Trade(trade_id=f"{n:012d}", price="65000.50", size="0.01000")
    return md.MarketEvent(venue=venue, symbol=symbol, ts_event_ns=_TS + n, ts_recv_ns=_TS + n, trade=trade)


def _entries(venue: str, events: int) -> list[bytes]:
    entries = []
    for first in range(0, events, EVENTS_PER_ENTRY):
        batch = [_event(venue, SYMBOLS[n % len(SYMBOLS)], n) for n in range(first, first + EVENTS_PER_ENTRY)]
        entries.append(encode_market("bench", batch, now_ns=_TS))
    return entries


@dataclass
class Client:
    """A subscriber that counts the bytes it receives, until it has `expected_bytes`."""

    symbols: list[str]
    warm_bytes: int  # the warm-up events
    expected_bytes: int  # all of it
    bytes_received: int = 0
    subscribed: asyncio.Event = field(default_factory=asyncio.Event)
    warmed: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self, address: str, venue: str) -> None:
        options = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]
        async with grpc.aio.insecure_channel(address, options=options) as channel:
            subscribe: Any = channel.unary_stream(
                _SUBSCRIBE, request_serializer=lv.SubscribeRequest.SerializeToString
            )
            request = lv.SubscribeRequest(venues=[venue], symbols=self.symbols, kinds=[lv.KIND_TRADES])
            call = subscribe(request)
            await call.read()  # the first message: the subscription is in place
            self.subscribed.set()
            while (message := await call.read()) is not grpc.aio.EOF:
                self.bytes_received += len(message)
                if self.bytes_received >= self.warm_bytes:
                    self.warmed.set()
                if self.bytes_received >= self.expected_bytes:
                    call.cancel()
                    return


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _scenario(
    bridge: ServiceProcess, redis: BusRedis, name: str, groups: list[list[str]], events: int
) -> dict[str, float | str]:
    venue = "bench" + uuid.uuid4().hex[:8]
    stream = f"md.{{{venue}}}.trades"
    frame = len(event_chunk(_event(venue, SYMBOLS[0], 0)))
    shares = [len(symbols) or len(SYMBOLS) for symbols in groups]
    clients = [
        Client(g, n * frame, (events // len(SYMBOLS) + 1) * n * frame)
        for g, n in zip(groups, shares, strict=True)
    ]
    tasks = [asyncio.create_task(c.run(bridge.address, venue)) for c in clients]
    await asyncio.wait_for(asyncio.gather(*(c.subscribed.wait() for c in clients)), 30)
    # Warm-up: one event per symbol, so the bridge has found the new stream before it pauses.
    publisher = Publisher(redis, Retention(entries_per_s=10_000, outage_minutes=10))
    publisher.add(stream, encode_market("bench", [_event(venue, s, n) for n, s in enumerate(SYMBOLS)]))
    await publisher.flush()
    await asyncio.wait_for(asyncio.gather(*(c.warmed.wait() for c in clients)), 30)
    os.kill(bridge.process.pid, signal.SIGSTOP)
    for data in _entries(venue, events):
        publisher.add(stream, data)
        if publisher.queued >= 500:
            await publisher.flush()
    await publisher.flush()
    cpu_before = _cpu_s(bridge.process.pid)
    started = time.perf_counter()
    os.kill(bridge.process.pid, signal.SIGCONT)
    await asyncio.wait_for(asyncio.gather(*tasks), 600)
    elapsed = time.perf_counter() - started
    cpu = _cpu_s(bridge.process.pid) - cpu_before
    delivered = sum(events * n // len(SYMBOLS) for n in shares)
    return {
        "scenario": name,
        "subscribers": len(clients),
        "bus events/s": round(events / elapsed),
        "delivered events/s": round(delivered / elapsed),
        "seconds": round(elapsed, 2),
        "bridge cpu": f"{cpu / elapsed:.0%}",
    }


async def run(events: int, url: str) -> list[dict[str, float | str]]:
    group = "bridge-bench-" + uuid.uuid4().hex[:6]
    args = ["bridge", "--port", "0", "--metrics-port", "-1", "--redis-url", url, "--group", group]
    bridge = start_service([*args, "--queue-batches", "100000", "--discover-s", "0.2"])
    redis = open_redis(url, read_timeout_s=30)
    try:
        return [
            await _scenario(bridge, redis, "one subscriber", [[]], events),
            await _scenario(bridge, redis, "ten, everything", [[] for _ in range(10)], events),
            await _scenario(bridge, redis, "ten, a symbol each", [[s] for s in SYMBOLS], events),
        ]
    finally:
        await asyncio.to_thread(bridge.terminate)
        async for stream in redis.scan_iter(match="md.bench*.trades", _type="STREAM"):
            await redis.delete(stream)
        await redis.aclose()


def _print(rows: Sequence[dict[str, float | str]]) -> None:
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + "---|" * len(columns))
    for row in rows:
        print(
            "| "
            + " | ".join(f"{row[c]:,}" if isinstance(row[c], int) else str(row[c]) for c in columns)
            + " |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500_000, help="events per scenario")
    parser.add_argument("--redis-url", help="the bus (default: $REDIS_URL, else the local Redis)")
    args = parser.parse_args()
    _print(asyncio.run(run(args.events, redis_url(args.redis_url))))


if __name__ == "__main__":
    main()
