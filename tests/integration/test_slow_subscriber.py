"""A slow subscriber never slows the venue or the other subscribers.

The slow client reads one message and then stops reading. Its channel turns off HTTP/2
BDP probing, so the transport does not grow a multi-megabyte window on its behalf and
the venue's own per-subscriber queue (RuntimeOptions.queue_batches) is what fills up.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import grpc
import pytest

from tests.integration.support import (
    CALL_TIMEOUT_S,
    BookFollower,
    Venue,
    VenueFactory,
    metric_samples,
    next_batch,
    open_streams,
    scrape,
    until,
)
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# One busy symbol: 200 batches/s of a few thousand events/s in all.
BUSY = """
tick_interval_ms = 5
[[symbols]]
symbol = "BTC/USDT"
start_price = "65000"
tick_size = "0.01"
lot_size = "0.00001"
min_notional = "5"
trades_per_s = 300
book_updates_per_s = 3000
level_spacing_ticks = 100
maker_size_lots = 5000
taker_size_lots = 3000
"""
REQUEST = md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_BOOK, md.CHANNEL_TRADES])


def slow_stub(venue: Venue) -> md_grpc.MarketDataAsyncStub:
    return venue.stubs(options=[("grpc.http2.bdp_probe", 0)]).md


@dataclass
class FastClient:
    """Reads as fast as it can, checking the book, and times every message."""

    follower: BookFollower = field(default_factory=lambda: BookFollower(keep=1))
    latencies_ms: list[float] = field(default_factory=list)
    events: int = 0

    async def run(self, call: grpc.aio.UnaryStreamCall[md.SubscribeRequest, md.SubscribeResponse]) -> None:
        async for message in call:
            received_ns = time.time_ns()
            self.follower.on_message(message)
            self.events += len(message.events)
            self.latencies_ms += [(received_ns - e.ts_recv_ns) / 1e6 for e in message.events]

    def since(self, mark: int) -> list[float]:
        return self.latencies_ms[mark:]


async def drain_slow(call: Any) -> grpc.aio.AioRpcError:
    """Read everything the slow stream still holds; the error it ends with."""
    with pytest.raises(grpc.aio.AioRpcError) as error:
        while await asyncio.wait_for(call.read(), CALL_TIMEOUT_S) is not grpc.aio.EOF:
            pass
    return error.value


# Exclusive: the fast subscriber's latency is measured, in this process, against a 1 s bound. (The
# conflating test below bounds no time: it runs beside the others.)
@pytest.mark.exclusive
async def test_slow_subscriber_is_disconnected_while_a_fast_one_keeps_up(fresh_venue: VenueFactory) -> None:
    venue = fresh_venue(BUSY, name="busy")
    stubs = venue.stubs()
    fast = FastClient()
    fast_call = stubs.md.Subscribe(REQUEST)
    fast_task = asyncio.create_task(fast.run(fast_call))
    slow_call = slow_stub(venue).Subscribe(REQUEST)
    assert (await next_batch(slow_call)).events[0].HasField("book_snapshot")
    await until(lambda: open_streams(stubs, 2), CALL_TIMEOUT_S, what="both streams open")
    mark = len(fast.latencies_ms)

    # The slow client reads nothing more; the venue must drop it, and only it.
    await until(
        lambda: open_streams(stubs, 1), 30.0, interval_s=0.2, what="the slow subscriber to be dropped"
    )
    dropped_at = len(fast.latencies_ms)

    async def received_on() -> bool | None:  # the fast one goes on after the drop (or has ended)
        return True if len(fast.latencies_ms) - dropped_at > 500 or fast_task.done() else None

    await until(received_on, 30.0, interval_s=0.05, what="500 more events on the fast stream")
    assert not fast_task.done(), f"the fast stream ended: {fast_task}"

    # The fast one never missed an event (Book.apply checks every sequence number)...
    assert fast.follower.notices == [] and fast.follower.deltas > 1000
    # ...kept receiving while the slow one was stuck and after it was dropped...
    assert dropped_at - mark > 1000 and len(fast.latencies_ms) - dropped_at > 500
    # ...with latency a local stream should have (bounds generous for a loaded 2-core box).
    while_stuck = fast.latencies_ms[mark:dropped_at]
    assert statistics.median(while_stuck) < 250, f"median {statistics.median(while_stuck):.0f} ms"
    assert statistics.quantiles(while_stuck, n=20)[-1] < 1000, "95th percentile over 1 s"
    # ...and is level with the venue: a new subscriber's snapshot is no more than a moment ahead.
    probe = stubs.md.Subscribe(md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_BOOK]))
    head = (await next_batch(probe)).events[0].book_snapshot.sequence
    probe.cancel()

    async def level() -> bool | None:
        return True if fast.follower.books["BTC/USDT"].sequence >= head else None

    await until(level, 2.0, what="the fast client to reach the venue's current sequence")

    error = await drain_slow(slow_call)
    assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "too slow" in (error.details() or "") and "OVERFLOW_POLICY_CONFLATE" in (error.details() or "")
    fast_call.cancel()
    await asyncio.gather(fast_task, return_exceptions=True)

    async def counted() -> float | None:  # it may land after the stream count has dropped
        samples = metric_samples(await scrape(venue), "trademesh_venue_slow_subscribers_total")
        return samples.get('{action="disconnected",venue="sim"}') or None

    assert await until(counted, CALL_TIMEOUT_S, what="the drop counted") == 1


async def test_slow_conflating_subscriber_gets_a_gap_notice_and_a_fresh_snapshot(
    fresh_venue: VenueFactory,
) -> None:
    venue = fresh_venue(BUSY, name="busy-conflate")
    request = md.SubscribeRequest()
    request.CopyFrom(REQUEST)
    request.overflow_policy = md.OVERFLOW_POLICY_CONFLATE
    call = slow_stub(venue).Subscribe(request)
    follower = BookFollower(keep=1)
    follower.on_message(await next_batch(call))

    async def conflated() -> float | None:
        samples = metric_samples(await scrape(venue), "trademesh_venue_slow_subscribers_total")
        count = samples.get('{action="conflated",venue="sim"}', 0.0)
        return count if count > 0 else None

    await until(conflated, 30.0, interval_s=0.25, what="the slow subscriber to be conflated")
    # Now read again: the stream goes on, with a GAP notice and a fresh snapshot where events were
    # dropped, and deltas that follow that snapshot without holes (BookFollower checks both).
    while not follower.notices or follower.deltas < 200:
        follower.on_message(await next_batch(call))
    notice = follower.notices[0]
    assert notice.notice.kind == md.NOTICE_KIND_GAP and notice.symbol == "BTC/USDT"
    assert "fell behind" in notice.notice.reason
    call.cancel()
    stubs = venue.stubs()
    await until(lambda: open_streams(stubs, 0), CALL_TIMEOUT_S, what="the stream to close")
