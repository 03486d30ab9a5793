"""A restarted venue's repeated trades kept off the bus (issue 56, item 13): the exchange's subscribe
snapshot (up to 100 trades per product on Coinbase) comes again after a venue restart, and the
relay of the trades stream, seeded from the stream itself at start, drops the trades published
already. Real Redis, the real relay and writer; each "process" is a writer and relay of its own
that share nothing but the stream."""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.integration.mesh import redis_db
from tests.integration.redis_server import redis_url
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.domain.model import Channel
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.bus.relay import MarketRelay, resume_market
from trademesh.core.platform.bus.writer import BusWriter

pytestmark = pytest.mark.integration
__all__ = ["redis_url"]  # the fixture, for pytest

VENUE = "coinbase"
STREAM = "md.{coinbase}.trades"
BASE_NS = 1_800_000_000_000_000_000


@pytest.fixture
async def url(redis_url: str) -> AsyncIterator[str]:
    async with redis_db(redis_url) as claimed:
        yield claimed


def trades(symbol: str, ids: range, id_of: Any = str, epoch: int = 1) -> bytes:
    """A venue batch of one trade per id, trade i at BASE_NS + i ms."""
    batch = bus.MarketEvents(epoch=epoch, position=ids[-1])
    for i in ids:
        event = batch.events.add(venue=VENUE, symbol=symbol, ts_event_ns=BASE_NS + i * 1_000_000)
        event.ts_recv_ns = event.ts_event_ns
        event.trade.trade_id = id_of(i)
        event.trade.price, event.trade.size = "100", "1"
    return batch.SerializeToString()


async def run_venue(url: str, batches: list[bytes]) -> None:
    """One venue process's writing: a relay seeded from the bus, `batches` taken and written."""
    client: Any = open_redis(url)
    writer = BusWriter(Publisher(client), "venue/test")
    stop = asyncio.Event()
    try:
        assert await writer.connect(stop, url)
        running = asyncio.create_task(writer.run(stop))
        relay = MarketRelay(VENUE, Channel.TRADES, ["BTC-USD", "ETH-USD"], writer.publish)
        await resume_market(client, relay)
        for raw in batches:
            await relay.take(raw)
        assert await writer.drain(10)
        stop.set()
        await asyncio.wait_for(running, 10)
    finally:
        stop.set()
        await client.aclose()


async def trade_ids(url: str) -> dict[str, list[str]]:
    client: Any = open_redis(url)
    try:
        found: dict[str, list[str]] = collections.defaultdict(list)
        for _, fields in await client.xrange(STREAM):
            for event in decode(fields).market.events:
                found[event.symbol].append(event.trade.trade_id)
        return found
    finally:
        await client.aclose()


async def test_a_restart_s_snapshot_is_not_published_again(url: str) -> None:
    await run_venue(url, [trades("BTC-USD", range(1, 101))])
    snapshot, new = trades("BTC-USD", range(1, 101), epoch=2), trades("BTC-USD", range(101, 111), epoch=2)
    await run_venue(url, [snapshot, new])  # the restart: the snapshot again, then new trades
    ids = await trade_ids(url)
    assert ids["BTC-USD"] == [str(i) for i in range(1, 111)], "each trade once, in order"


async def test_ids_that_are_not_numbers_are_judged_by_the_recent_ones(url: str) -> None:
    def named(i: int) -> str:
        return f"ETH-{i:x}z"  # not an integer: Deribit's and Bybit's kind

    await run_venue(url, [trades("ETH-USD", range(1, 51), named)])
    await run_venue(url, [trades("ETH-USD", range(30, 61), named, epoch=2)])
    assert (await trade_ids(url))["ETH-USD"] == [named(i) for i in range(1, 61)]


async def test_a_venue_that_numbers_from_1_again_keeps_its_new_trades(url: str) -> None:
    """The sim counts its trades from 1 in every process: newer than anything published, kept."""
    await run_venue(url, [trades("BTC-USD", range(1, 21))])
    later = bus.MarketEvents.FromString(trades("BTC-USD", range(1, 6), epoch=2))
    for event in later.events:
        event.ts_event_ns += 60_000_000_000  # a minute later: new trades with old numbers
    await run_venue(url, [later.SerializeToString()])
    assert (await trade_ids(url))["BTC-USD"] == [str(i) for i in range(1, 21)] + [str(i) for i in range(1, 6)]
