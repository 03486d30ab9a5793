"""A venue's own trades relay (the direct path: trademesh.venues.runtime.direct_streams) through a
Redis stopped with SIGSTOP, in process: the venue's fan-out fed batch by batch by the test, so the
venue's pace is the test's, not the machine's.

The relay's stream is ended within its stall bound of waiting for the bus writer, not only once
the fan-out's queue (256 batches) fills: that took as many of the venue's steps, and a venue
starved of CPU made them in 48-65 s instead of 13 s (tests/integration/test_pipeline_faults.py,
at load 12-20). Once Redis goes on, the relay resumes from the venue's history: nothing lost,
nothing written twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.mesh import OwnRedis, sim_config
from tests.integration.support import until
from trademesh.core.domain.model import Channel, Side, StreamKey
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.bus.relay import MarketRelay
from trademesh.core.platform.bus.writer import BusWriter
from trademesh.venues.registry import create_venue
from trademesh.venues.runtime.direct_streams import LocalMarket
from trademesh.venues.runtime.runtime import VenueRuntime

pytestmark = pytest.mark.integration

SYMBOL = "BTC/USDT"
TRADES = "md.{sim}.trades"
STALL_S = 1.0
# The writer's read timeout: a flush on the wire when Redis stopped fails after it, and is retried.
READ_TIMEOUT_S = 2.0


class Venue:
    """A sim venue's runtime, not started: its trades made here, one batch at a time."""

    def __init__(self, tmp_path: Path) -> None:
        venue = create_venue("sim", sim_config(tmp_path, 1000, 2300))
        self.rt = VenueRuntime(venue)
        self.rt.instruments = {i.symbol: i for i in venue.instruments()}
        self.rt.active = {StreamKey(SYMBOL, Channel.TRADES)}
        self.made = 0

    def trade(self) -> None:
        self.made += 1
        self.rt.feed.trade(SYMBOL, time.time_ns(), str(self.made), "65000.00", "0.001", Side.BUY)
        self.rt.feed.flush()

    def followed(self) -> int:
        return self.rt.subscriber_count(StreamKey(SYMBOL, Channel.TRADES))


@contextlib.asynccontextmanager
async def relayed(venue: Venue, url: str) -> AsyncIterator[LocalMarket]:
    """The venue's trades relayed into the bus at `url` by a writer of 2 entries, while inside."""
    redis: Any = open_redis(url, read_timeout_s=READ_TIMEOUT_S)
    writer = BusWriter(Publisher(redis, Retention(2000.0, 10.0)), "venue/test", 2, name="venue sim")

    async def publish(stream: str, raw: bytes) -> None:
        await writer.publish(stream, raw)

    carrier = LocalMarket(venue.rt, MarketRelay("sim", Channel.TRADES, [SYMBOL], publish), STALL_S)
    stop, halt = asyncio.Event(), asyncio.Event()
    tasks = [asyncio.create_task(writer.run(stop)), asyncio.create_task(carrier.run(halt))]
    try:
        yield carrier
    finally:
        halt.set()
        tasks[1].cancel()
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
        await redis.aclose()


async def trade_ids(url: str) -> list[int]:
    client: Any = open_redis(url)
    try:
        entries = await client.xrange(TRADES)
    finally:
        await client.aclose()
    return [int(e.trade.trade_id) for _, f in entries for e in decode(f).market.events if e.HasField("trade")]


async def trades_on_the_bus(url: str, count: int) -> bool | None:
    return True if len(await trade_ids(url)) >= count else None


async def test_a_stalled_relay_is_let_go_within_its_bound_whatever_the_venues_pace_and_loses_nothing(
    tmp_path: Path,
) -> None:
    redis = OwnRedis(tmp_path)
    redis.start()
    assert redis.process is not None
    venue = Venue(tmp_path)
    try:
        async with relayed(venue, redis.url) as carrier:
            await until(lambda: _followed(venue), 10, 0.05, "the relay following the trades")
            for _ in range(5):
                venue.trade()
            await until(lambda: trades_on_the_bus(redis.url, 5), 10, 0.05, "the first trades on the bus")
            redis.process.send_signal(signal.SIGSTOP)
            try:
                stopped = time.monotonic()
                # A slow venue: a batch every 0.1 s, far from the fan-out's 256 within the bound.
                while venue.followed() and time.monotonic() - stopped < STALL_S + 20:
                    venue.trade()
                    await asyncio.sleep(0.1)
                let_go_after_s = time.monotonic() - stopped
                made_meanwhile = venue.made - 5
                assert not venue.followed(), "the stalled relay still followed after 20 s past its bound"
            finally:
                redis.process.send_signal(signal.SIGCONT)
            assert made_meanwhile < venue.rt.options.queue_batches, "let go by the queue, not the bound"
            assert STALL_S <= let_go_after_s < STALL_S + 10
            for _ in range(5):
                venue.trade()
            await until(lambda: trades_on_the_bus(redis.url, venue.made), 30, 0.1, "every trade on the bus")
            assert carrier.relay.reconnects >= 1
            await until(lambda: _followed(venue), 10, 0.05, "the relay following the trades again")
            ids = await trade_ids(redis.url)
    finally:
        redis.kill()
    assert ids == list(range(1, venue.made + 1)), "each trade once, in order"


async def _followed(venue: Venue) -> bool | None:
    return True if venue.followed() else None
