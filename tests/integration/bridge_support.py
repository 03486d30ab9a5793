"""Helpers of the bridge tests: a real `trademesh bridge` process, the bus, test events, readers.

Each bridge runs with its own consumer group and each test publishes under venue names and
symbols of its own, so bridges, tests and other suites sharing the Redis never see each
other's data in what they assert. Entries a test adds to shared streams (bars.<tf>, any bars.* will do) are
deleted after it; the streams it creates once the bridges following them have stopped
(deleting a stream under a blocked XREADGROUP fails the read: see docs/bridge.md).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import grpc
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import redis_db
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, Venue
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.codec import encode_bars, encode_market
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.config.env import TOKEN
from trademesh.core.platform.service.process import start_service
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.livedata.v1 import livedata_pb2_grpc as lv_grpc
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = [
    "BridgeProcess",
    "Bus",
    "Received",
    "bar",
    "book_delta",
    "book_snapshot",
    "bus_url",
    "new_symbol",
    "new_venue",
    "read_until",
    "start_bridge",
    "subscribe",
    "ticker",
    "trade",
]

Call = Any  # grpc.aio.UnaryStreamCall[lv.SubscribeRequest, lv.SubscribeResponse]


def new_venue() -> str:
    return "t" + uuid.uuid4().hex[:10]


def new_symbol(base: str) -> str:
    """A symbol no other test or suite uses: BASE<tag>/USDT."""
    return f"{base}{uuid.uuid4().hex[:6].upper()}/USDT"


# ---- the bridge process


@dataclass
class BridgeProcess:
    """A running `trademesh bridge`; `links` gives authenticated channels and its metrics port."""

    links: Venue  # support.Venue: a service process with authenticated channels
    group: str
    log_file: IO[str]

    def stub(self, token: str | None = TEST_TOKEN, options: Sequence[tuple[str, Any]] = ()) -> Any:
        return lv_grpc.LiveDataStub(self.links.channel(token, options))

    async def stop(self) -> int:
        await self.links.close_channels()
        code = await asyncio.to_thread(self.links.service.terminate)
        self.log_file.close()
        return code

    def log(self) -> str:
        return self.links.log()


def start_bridge(redis_url: str, directory: Path, *extra: str) -> BridgeProcess:
    group = "bridge-test-" + uuid.uuid4().hex[:8]
    log_path = directory / f"{group}.log"
    log_file = log_path.open("w")
    args = ["bridge", "--port", "0", "--metrics-port", "0", "--redis-url", redis_url, "--group", group]
    args += ["--discover-s", "0.2", *extra]
    service = start_service(args, env={TOKEN: TEST_TOKEN}, stderr=log_file)
    return BridgeProcess(Venue(service, log_path), group, log_file)


# ---- the bus


@dataclass
class Bus:
    """Publishes test data as ingest and the bar aggregator do; notes the streams it creates."""

    redis: aioredis.Redis
    created: set[str]  # deleted by the caller once no bridge follows them
    publisher: Publisher = field(init=False)
    _shared: list[tuple[str, bytes]] = field(default_factory=list)
    _queued: list[str] = field(default_factory=list)  # the stream of each entry the publisher holds

    def __post_init__(self) -> None:
        self.publisher = Publisher(self.redis, Retention(entries_per_s=1000, outage_minutes=10))

    def add_market(self, venue: str, channel: str, events: Sequence[md.MarketEvent]) -> None:
        stream = f"md.{{{venue}}}.{channel}"
        self.created.add(stream)
        self._queued.append(stream)
        self.publisher.add(stream, encode_market("test", events))

    def add_bars(self, timeframe: str, bars: Sequence[bus.Bar]) -> None:
        self._queued.append(f"bars.{timeframe}")
        self.publisher.add(f"bars.{timeframe}", encode_bars("test", bars))

    async def flush(self) -> None:
        queued, self._queued = self._queued, []
        ids = await self.publisher.flush()
        self._shared += [(s, i) for s, i in zip(queued, ids, strict=True) if s.startswith("bars.") and i]

    async def publish_market(self, venue: str, channel: str, events: Sequence[md.MarketEvent]) -> None:
        self.add_market(venue, channel, events)
        await self.flush()

    async def group_state(self, stream: str, group: str) -> tuple[int, int]:
        """(pending, lag) of a consumer group on a stream."""
        for info in await self.redis.xinfo_groups(stream):
            name = info["name"].decode() if isinstance(info["name"], bytes) else info["name"]
            if name == group:
                return int(info["pending"]), int(info.get("lag") or 0)
        raise AssertionError(f"no group {group} on {stream}")

    async def close(self) -> None:
        for stream, entry_id in self._shared:
            await self.redis.xdel(stream, entry_id)
        await self.redis.aclose()


# ---- test events


def _event(venue: str, symbol: str, **payload: Any) -> md.MarketEvent:
    now = time.time_ns()
    return md.MarketEvent(venue=venue, symbol=symbol, ts_event_ns=now, ts_recv_ns=now, **payload)


def trade(venue: str, symbol: str, trade_id: str, price: str = "100", size: str = "1") -> md.MarketEvent:
    taker = common.SIDE_BUY
    return _event(venue, symbol, trade=md.Trade(trade_id=trade_id, price=price, size=size, taker_side=taker))


def ticker(venue: str, symbol: str, last_price: str) -> md.MarketEvent:
    return _event(venue, symbol, ticker=md.Ticker(best_bid="99", best_ask="101", last_price=last_price))


Levels = Sequence[tuple[str, str]]


def _levels(levels: Levels) -> list[md.BookLevel]:
    return [md.BookLevel(price=price, size=size) for price, size in levels]


def book_snapshot(venue: str, symbol: str, sequence: int, bids: Levels, asks: Levels) -> md.MarketEvent:
    snapshot = md.BookSnapshot(sequence=sequence, bids=_levels(bids), asks=_levels(asks))
    return _event(venue, symbol, book_snapshot=snapshot)


def book_delta(venue: str, symbol: str, sequence: int, bids: Levels, asks: Levels) -> md.MarketEvent:
    delta = md.BookDelta(sequence=sequence, bids=_levels(bids), asks=_levels(asks))
    return _event(venue, symbol, book_delta=delta)


def bar(venue: str, symbol: str, timeframe: common.Timeframe.ValueType, open_time_ns: int) -> bus.Bar:
    return bus.Bar(
        venue=venue,
        symbol=symbol,
        timeframe=timeframe,
        open_time_ns=open_time_ns,
        open="100",
        high="101",
        low="99",
        close="100.5",
        volume="2",
        quote_volume="201",
        trade_count=2,
        vwap="100.5",
    )


# ---- reading


async def subscribe(stub: Any, request: lv.SubscribeRequest) -> tuple[Call, lv.SubscribeResponse]:
    """A Subscribe call and its first message: once it arrived, every matching event is delivered."""
    call = stub.Subscribe(request)
    first = await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)
    assert first is not grpc.aio.EOF, "the stream ended before its first message"
    return call, first


@dataclass
class Received:
    events: list[md.MarketEvent] = field(default_factory=list)
    bars: list[bus.Bar] = field(default_factory=list)

    def add(self, message: lv.SubscribeResponse) -> None:
        self.events += message.events
        self.bars += message.bars

    def trade_ids(self, venue: str | None = None) -> list[str]:
        return [
            e.trade.trade_id
            for e in self.events
            if e.WhichOneof("payload") == "trade" and (venue is None or e.venue == venue)
        ]

    def notices(self) -> list[md.MarketEvent]:
        return [e for e in self.events if e.WhichOneof("payload") == "notice"]


async def read_until(
    call: Call,
    done: Callable[[Received], bool],
    timeout_s: float = CALL_TIMEOUT_S,
    into: Received | None = None,
) -> Received:
    """Read messages until `done` holds; fail the test if it does not within timeout_s."""
    received = Received() if into is None else into
    deadline = time.monotonic() + timeout_s
    while not done(received):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            pytest.fail(f"not done within {timeout_s} s; received {len(received.events)} events")
        try:
            message = await asyncio.wait_for(call.read(), remaining)
        except TimeoutError:
            continue
        assert message is not grpc.aio.EOF, "the stream ended"
        received.add(message)
    return received


@pytest.fixture(scope="module")
async def bus_url(redis_url: str) -> AsyncIterator[str]:
    """A bridge module's own Redis database: its bridges read every md.* and bars.* stream there,
    so none of another test's (a bars test's corrupt entries, dead-lettered by a bridge beside it
    into the same stream as the bars', were counted there twice)."""
    async with redis_db(redis_url) as url:
        yield url
