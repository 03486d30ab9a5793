"""The stream watcher never holds the event loop, whatever its watch does (issue 13).

A real ccxt.pro WebSocket client stands in for the venue's connection (never connected: its
futures are what the watch waits on); the watcher, feed and stream table are the real ones.
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import ccxt.pro
from ccxt.async_support.base.ws.client import Client
from ccxt.async_support.base.ws.future import Future

from tests import feed_support
from trademesh.core.domain.model import Channel, StreamKey
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.live.streams import StreamWatcher

BOOK = "books:X/Y"  # the message hash of the watch
KEY = StreamKey("X/Y", Channel.BOOK)
# A watcher that spins re-raises far more often than this before anything else can run.
SPIN = 50


def client() -> Any:
    def ignore(*args: Any) -> None:
        return None

    return Client("wss://venue.test/ws", ignore, ignore, ignore, ignore)


class Watch:
    """ccxt's watch of one message hash: a race of the client's futures, awaited."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.calls = 0
        self.watcher: StreamWatcher | None = None

    async def __call__(self) -> Any:
        self.calls += 1
        if self.calls > SPIN:  # a watcher retrying without a wait stops here (the test fails)
            await asyncio.Event().wait()
        assert self.watcher is not None
        self.watcher.watching(self.connection)
        return await Future.race([self.connection.future(BOOK)])


async def until(condition: Any, timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.005)


async def test_a_book_that_broke_between_two_watches_resyncs_once_and_waits_for_the_venue() -> None:
    """ccxt stores an error for a watch not made yet (the book broke while no watch was waiting)
    and rejects the next watch's future with it on creation, a future it then keeps: every later
    watch got it back, failed, at once, and the watcher re-raised it forever without yielding."""
    feed, _ = feed_support.new_feed()
    connection = client()
    watch = Watch(connection)
    updates: list[int] = []
    watcher = StreamWatcher(
        KEY,
        watch,
        feed.streams.get(KEY),
        feed,
        Backoff(0.001, 0.01),
        lambda: updates.append(watch.calls),
        lambda: None,
        checksums=True,
    )
    watch.watcher = watcher
    connection.reject(ccxt.ChecksumError("book checksum 1, the venue sent 2"), BOOK)  # no watch waits
    watcher.start()
    try:
        await until(lambda: watch.calls >= 2)
        connection.resolve({"bids": [], "asks": []}, BOOK)  # the fresh snapshot comes
        await until(lambda: bool(updates))
    finally:
        await watcher.stop()
    stats = feed.streams.get(KEY)
    assert stats.checksum_mismatches == 1, "one resync, for the one error"
    assert updates == [2], "the second watch waited for the venue and got its book"
    assert not any(future.done() for future in connection.futures.values()), "no failed future kept"


async def test_a_watch_that_fails_at_once_every_time_leaves_the_loop_free() -> None:
    """Whatever the error, a watch that fails without waiting is made again only after a wait."""
    feed, _ = feed_support.new_feed()
    failures = 0

    async def watch() -> None:
        nonlocal failures
        failures += 1
        if failures > SPIN:
            await asyncio.Event().wait()
        raise [ccxt.InvalidNonce("gap"), ccxt.ExchangeError("odd"), ValueError("bug")][failures % 3]

    ticks = 0

    async def other_work() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    watcher = StreamWatcher(
        KEY, watch, feed.streams.get(KEY), feed, Backoff(0.001, 0.002), lambda: None, lambda: None
    )
    other = asyncio.create_task(other_work())
    watcher.start()
    try:
        await until(lambda: failures >= 6)
    finally:
        await watcher.stop()
        other.cancel()
    assert failures <= SPIN and ticks > failures, "other work ran between the watcher's attempts"


async def test_a_connection_lost_while_the_stream_waits_to_retry_is_a_loss_all_the_same() -> None:
    """The watcher waits out its backoff with no watch made: a connection that closes meanwhile
    fails no watch of its, and is still counted and announced."""
    feed, sink = feed_support.new_feed()
    connection = SimpleNamespace(connection=SimpleNamespace(closed=False))
    calls = 0

    async def watch() -> None:
        nonlocal calls
        calls += 1
        watcher.watching(connection)
        if calls == 1:
            connection.connection.closed = True  # closes as the watcher starts to wait
            raise ccxt.InvalidNonce("gap")
        await asyncio.Event().wait()

    stats = feed.streams.get(KEY)
    watcher = StreamWatcher(KEY, watch, stats, feed, Backoff(0.001, 0.01), lambda: None, lambda: None)
    watcher.start()
    try:
        await until(lambda: calls >= 2)
    finally:
        await watcher.stop()
    assert stats.reconnects == 1
    gaps = [e.notice for e in sink.events if e.HasField("notice")]
    assert [n.kind for n in gaps] == [md.NOTICE_KIND_GAP] and "connection to the venue lost" in gaps[0].reason
