"""Book and stream integrity of the live connector and the venue runtime, part by part.

ccxt's own cache and order-book classes stand in for what ccxt holds; the feed, stream
table, normalizers, stream watcher and Admin service are the real ones.
"""

from __future__ import annotations

import asyncio
from typing import Any

import ccxt.pro
import pytest
from ccxt.async_support.base.ws.cache import ArrayCache
from ccxt.async_support.base.ws.order_book import OrderBook

from tests import feed_support
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.core.domain.model import Channel, Side, StreamKey
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.live.normalize import BookNormalizer, BookRange, TickerNormalizer, TradeNormalizer
from trademesh.venues.live.streams import StreamWatcher
from trademesh.venues.registry import create_venue
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.runtime import RuntimeState, VenueRuntime
from trademesh.venues.runtime.services import AdminService
from trademesh.venues.runtime.stats import Staleness, StreamState, StreamStats, StreamTable

SYMBOL = "X/Y"


class Sink(feed_support.Sink):
    """The feed's events, and the book they describe."""

    def levels(self) -> tuple[dict[str, str], dict[str, str]]:
        """The book the events describe (snapshot, then deltas), by price text."""
        bids: dict[str, str] = {}
        asks: dict[str, str] = {}
        for event in self.events:
            book = event.book_snapshot if event.HasField("book_snapshot") else event.book_delta
            if event.HasField("book_snapshot"):
                bids, asks = {}, {}
            for side, levels in ((bids, book.bids), (asks, book.asks)):
                for level in levels:
                    if level.size == "0":
                        side.pop(level.price, None)
                    else:
                        side[level.price] = level.size
        return bids, asks


class FakeExchange:
    """The attributes of a ccxt.pro exchange the normalizers read."""

    def __init__(self) -> None:
        self.trades: dict[str, Any] = {}
        self.orderbooks: dict[str, Any] = {}
        self.tickers: dict[str, Any] = {}


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def feed(sink: Sink) -> MarketFeed:
    feed = MarketFeed("test", StreamTable())
    feed.attach(sink)  # type: ignore[arg-type]
    return feed


def trade(i: int) -> dict[str, Any]:
    return {"id": str(i), "timestamp": 1_000 + i, "price": 100.0 + i, "amount": 0.5, "side": "buy"}


# ---- trades


def test_a_trade_the_venue_sends_again_goes_out_once(feed: MarketFeed, sink: Sink) -> None:
    exchange, normalizer = FakeExchange(), TradeNormalizer(feed, SYMBOL)
    ring = exchange.trades[SYMBOL] = ArrayCache(100)
    for i in range(3):
        ring.append(trade(i))
    normalizer.poll(exchange)
    # A new subscription: the venue pushes its latest trade again, then trades go on.
    ring.append(trade(2))
    ring.append(trade(3))
    normalizer.poll(exchange)
    ring.append(trade(2))  # alone: nothing new at all
    assert not normalizer.poll(exchange)
    feed.flush()
    assert [e.trade.trade_id for e in sink.events] == ["0", "1", "2", "3"]
    assert feed.stats(SYMBOL, Channel.TRADES).duplicate_trades == 2


def test_trades_without_an_id_are_never_taken_for_repeats(feed: MarketFeed, sink: Sink) -> None:
    exchange, normalizer = FakeExchange(), TradeNormalizer(feed, SYMBOL)
    ring = exchange.trades[SYMBOL] = ArrayCache(100)
    for _ in range(3):
        ring.append({**trade(1), "id": None})
        normalizer.poll(exchange)
    feed.flush()
    assert len(sink.events) == 3


# ---- books


def test_a_book_from_a_cut_rest_snapshot_is_published_inside_its_range_only(
    feed: MarketFeed, sink: Sink
) -> None:
    """Depth 3: the snapshot's last bid (8) bounds the bids; a level below it was never sent."""
    exchange = FakeExchange()
    snapshot = {"bids": [[10.0, 1.0], [9.0, 1.0], [8.0, 1.0]], "asks": [[11.0, 1.0], [12.0, 1.0]]}
    book = exchange.orderbooks[SYMBOL] = OrderBook(snapshot, 3)
    ranges = {SYMBOL: BookRange.of_snapshot(snapshot, 3)}  # asks: 2 < 3 levels, the whole side
    normalizer = BookNormalizer(feed, SYMBOL, {id(book)}, ranges)  # ccxt handed it out

    def step(price: float, size: float, nonce: int) -> None:
        book["bids"].store(price, size)
        book["nonce"] = nonce
        normalizer.poll(exchange)

    normalizer.poll(exchange)
    step(7.0, 5.0, 1)  # beyond the range: not published (ccxt keeps it until it trims)
    book["asks"].store(13.0, 2.0)  # the ask side was whole: a new level is known
    step(10.0, 0.0, 2)
    step(9.5, 1.0, 3)  # inside the range
    book.limit()  # ccxt trims to 3 bids: 9.5, 9, 8; 7 goes
    step(9.8, 1.0, 4)
    book.limit()  # 9.8, 9.5, 9: 8 went too, so the range now ends at 9
    normalizer.poll(exchange)
    book["nonce"] = 5
    normalizer.poll(exchange)
    feed.flush()
    bids, asks = sink.levels()
    assert bids == {"9.8": "1", "9.5": "1", "9": "1"}
    assert asks == {"11": "1", "12": "1", "13": "2"}
    published = {lv.price for e in sink.events for lv in (*e.book_snapshot.bids, *e.book_delta.bids)}
    assert "7" not in published, "a level outside the known range went out"


def test_a_rest_started_book_goes_out_again_only_once_its_new_snapshot_is_in(
    feed: MarketFeed, sink: Sink
) -> None:
    """After a reconnect ccxt keeps a Binance book's old levels until the new REST snapshot resets it."""
    exchange, resolved = FakeExchange(), set[int]()
    snapshot = {"bids": [[10.0, 1.0]], "asks": [[11.0, 1.0]]}
    book = exchange.orderbooks[SYMBOL] = OrderBook(snapshot, 1000)
    normalizer = BookNormalizer(feed, SYMBOL, resolved, {SYMBOL: BookRange.of_snapshot(snapshot, 1000)})
    resolved.add(id(book))
    normalizer.poll(exchange)
    resolved.clear()
    normalizer.restart()  # the connection dropped
    book["nonce"] = None  # ccxt re-subscribed: the old levels wait for a new snapshot
    normalizer.poll(exchange)
    feed.flush()
    assert sink.kinds() == ["book_snapshot"], "the old book went out again"
    book.reset({"bids": [[10.5, 2.0]], "asks": [[11.0, 1.0]]})
    book["nonce"] = 7
    resolved.add(id(book))  # ccxt hands the rebuilt book to its watchers
    normalizer.poll(exchange)
    feed.flush()
    assert sink.kinds() == ["book_snapshot", "book_snapshot"]
    assert [(lv.price, lv.size) for lv in sink.events[1].book_snapshot.bids] == [("10.5", "2")]


def test_a_book_the_venue_keeps_whole_is_published_whole(feed: MarketFeed, sink: Sink) -> None:
    exchange, normalizer = FakeExchange(), BookNormalizer(feed, SYMBOL)  # no REST snapshot range
    book = exchange.orderbooks[SYMBOL] = OrderBook({"bids": [[10.0, 1.0]], "asks": [[11.0, 1.0]]}, 3)
    normalizer.poll(exchange)
    book["bids"].store(5.0, 1.0)
    book["nonce"] = 1
    normalizer.poll(exchange)
    feed.flush()
    assert sink.levels()[0] == {"10": "1", "5": "1"}


def test_an_empty_book_goes_out_once_ccxt_has_resolved_it(feed: MarketFeed, sink: Sink) -> None:
    exchange, resolved = FakeExchange(), set[int]()
    normalizer = BookNormalizer(feed, SYMBOL, resolved)
    book = exchange.orderbooks[SYMBOL] = OrderBook({})
    normalizer.poll(exchange)  # an empty book ccxt has not handed out: waiting for its snapshot
    feed.flush()
    assert sink.events == []
    resolved.add(id(book))  # the venue's snapshot: no bids, no asks
    normalizer.poll(exchange)
    feed.flush()
    assert sink.kinds() == ["book_snapshot"]
    snapshot = sink.events[0].book_snapshot
    assert snapshot.sequence == 1 and not snapshot.bids and not snapshot.asks


def test_the_runtime_hands_out_no_book_before_the_venues_own(feed: MarketFeed, sink: Sink) -> None:
    assert feed.snapshot_chunk(SYMBOL) == b""
    feed.book_snapshot(SYMBOL, 1, [("10", "1")], [("11", "2")])
    assert feed.snapshot_chunk(SYMBOL) == b"", "not before the flush that sends it"
    feed.flush()
    first = md.SubscribeResponse.FromString(feed.snapshot_chunk(SYMBOL)).events[0].book_snapshot
    assert first.sequence == 1 and [(lv.price, lv.size) for lv in first.bids] == [("10", "1")]
    feed.gap(SYMBOL, Channel.BOOK, "connection lost")
    feed.flush()
    assert feed.snapshot_chunk(SYMBOL) == b"", "a book left stale by a gap is not handed out"
    feed.book_snapshot(SYMBOL, 2, [("10.5", "1")], [])
    feed.flush()
    again = md.SubscribeResponse.FromString(feed.snapshot_chunk(SYMBOL)).events[0].book_snapshot
    assert again.sequence == 2 and [lv.price for lv in again.bids] == ["10.5"]


def test_a_venue_that_builds_its_book_from_changes_has_it_from_the_first(feed: MarketFeed) -> None:
    feed.book_delta(SYMBOL, 1, [("10", "1")], [])
    feed.flush()
    snapshot = md.SubscribeResponse.FromString(feed.snapshot_chunk(SYMBOL)).events[0].book_snapshot
    assert snapshot.sequence == 1 and len(snapshot.bids) == 1


# ---- tickers


def test_a_best_price_of_zero_or_none_is_no_level(feed: MarketFeed, sink: Sink) -> None:
    exchange, normalizer = FakeExchange(), TickerNormalizer(feed, SYMBOL, "tickers")
    exchange.tickers[SYMBOL] = {"bid": 0.0, "bidVolume": 0.0, "ask": None, "askVolume": 5.0, "last": 2.5}
    normalizer.poll(exchange)
    feed.flush()
    t = sink.events[0].ticker
    assert (t.best_bid, t.best_bid_size, t.best_ask, t.best_ask_size, t.last_price) == ("", "", "", "", "2.5")


# ---- stream health


def _run(stats: StreamStats, times: list[float], events_at: set[float]) -> None:
    for now in times:
        if now in events_at:
            stats.events_total += 1
        stats.sample(now)


def test_staleness_is_judged_against_each_streams_own_silences() -> None:
    policy = Staleness(factor=4, floor_s=5, learn_windows=3)
    fast = StreamStats(StreamKey(SYMBOL, Channel.BOOK), state=StreamState.CONNECTED)
    slow = StreamStats(StreamKey(SYMBOL, Channel.TRADES), state=StreamState.CONNECTED)
    bursty = StreamStats(StreamKey("A/B", Channel.TRADES), state=StreamState.CONNECTED)
    quiet = StreamStats(StreamKey(SYMBOL, Channel.CANDLES), state=StreamState.CONNECTED)
    seconds = [float(s) for s in range(1, 2000)]
    for now in seconds[:20]:  # the book: ten events a second for 20 s, then nothing
        fast.events_total += 10
        fast.sample(now)
    _run(slow, seconds[:200], {1.0, 60.0, 120.0, 180.0})  # a trade a minute
    # Busy, a one-minute lull, busy again for half a minute, then another lull like the first.
    _run(bursty, seconds[:100], {float(s) for s in [*range(1, 11), *range(70, 101)]})
    assert fast.judge(24.0, policy) is None and not fast.stale
    assert fast.judge(26.0, policy) is True and "usually silent for 1 s" in fast.detail
    assert slow.judge(300.0, policy) is None, "two minutes without a trade is normal for this stream"
    assert slow.judge(500.0, policy) is True, "over four times its usual silence is not"
    assert bursty.judge(160.0, policy) is None, "a lull like one seen before is no sign of trouble"
    assert quiet.judge(1999.0, policy) is None, "a stream that never had an event has no pace to miss"
    fast.events_total += 1
    fast.sample(27.0)
    assert fast.judge(27.0, policy) is False and fast.detail == ""


def test_silence_counts_from_a_reconnection_not_from_before_it() -> None:
    stats = StreamStats(StreamKey(SYMBOL, Channel.BOOK), state=StreamState.CONNECTED)
    for now in range(1, 10):
        stats.events_total += 10
        stats.sample(float(now))
    stats.judge(9.0, Staleness())
    stats.state = StreamState.DISCONNECTED
    stats.judge(60.0, Staleness())
    stats.state = StreamState.CONNECTED
    assert stats.judge(61.0, Staleness()) is None, "just reconnected: not stale yet"
    assert stats.judge(100.0, Staleness()) is True


async def test_a_stream_the_venue_cannot_serve_fails_loudly(feed: MarketFeed, sink: Sink) -> None:
    async def watch() -> None:
        raise ccxt.BadSymbol("okx does not have market symbol X/Y")

    key = StreamKey(SYMBOL, Channel.BOOK)
    watcher = StreamWatcher(
        key, watch, feed.streams.get(key), feed, Backoff(0.01, 0.01), lambda: None, lambda: None
    )
    watcher.start()
    assert watcher._task is not None
    await asyncio.wait_for(watcher._task, 5)
    stats = feed.streams.get(key)
    assert stats.state is StreamState.FAILED and "BadSymbol" in stats.detail
    notices = [e.notice for e in sink.events if e.HasField("notice")]
    assert [(n.kind, n.channel) for n in notices] == [(md.NOTICE_KIND_GAP, md.CHANNEL_BOOK)]
    assert notices[0].reason.startswith("stream stopped: the venue cannot serve it")


class Connection:
    """What the stream watcher reads of a ccxt WebSocket client: its `connected` future."""

    def __init__(self) -> None:
        self.connected: asyncio.Future[str] = asyncio.get_running_loop().create_future()


async def test_a_quiet_stream_is_connected_once_its_connection_is_open(feed: MarketFeed) -> None:
    never = asyncio.Event()
    key = StreamKey(SYMBOL, Channel.TRADES)
    watcher = StreamWatcher(
        key, never.wait, feed.streams.get(key), feed, Backoff(1, 1), lambda: None, lambda: None
    )
    connection = Connection()
    watcher.watching(connection)
    assert feed.streams.get(key).state is StreamState.CONNECTING
    connection.connected.set_result("wss://venue")
    await asyncio.sleep(0)
    assert feed.streams.get(key).state is StreamState.CONNECTED


async def test_admin_says_degraded_for_a_failed_or_stale_stream_and_running_for_a_quiet_one() -> None:
    runtime = VenueRuntime(create_venue("sim", None))
    runtime.state = RuntimeState.RUNNING
    service = AdminService(runtime)

    async def status() -> admin.GetStatusResponse:
        return await service.GetStatus(admin.GetStatusRequest(), None)  # type: ignore[arg-type]

    quiet = runtime.streams.get(StreamKey(SYMBOL, Channel.TRADES))
    quiet.state = StreamState.CONNECTED  # no event yet: quiet, not broken
    assert (await status()).state == admin.VENUE_STATE_RUNNING
    book = runtime.streams.get(StreamKey(SYMBOL, Channel.BOOK))
    book.state, book.stale, book.detail = StreamState.CONNECTED, True, "no event for 99 s"
    answer = await status()
    assert answer.state == admin.VENUE_STATE_DEGRADED
    assert {s.channel: (s.state, s.detail) for s in answer.streams}[md.CHANNEL_BOOK] == (
        admin.STREAM_STATE_STALE,
        "no event for 99 s",
    )
    book.stale = False
    book.fail("the venue cannot serve it")
    answer = await status()
    assert answer.state == admin.VENUE_STATE_DEGRADED
    assert {s.channel: s.state for s in answer.streams}[md.CHANNEL_BOOK] == admin.STREAM_STATE_FAILED


async def test_admin_says_incomplete_for_a_book_that_never_got_the_venues_snapshot() -> None:
    runtime = VenueRuntime(create_venue("sim", None))
    runtime.state = RuntimeState.RUNNING
    book = runtime.streams.get(StreamKey(SYMBOL, Channel.BOOK))
    book.state, book.incomplete = StreamState.CONNECTED, "the capture holds no depth snapshot of it"
    answer = await AdminService(runtime).GetStatus(admin.GetStatusRequest(), None)  # type: ignore[arg-type]
    assert answer.state == admin.VENUE_STATE_DEGRADED
    status = answer.streams[0]
    assert (status.state, status.detail) == (admin.STREAM_STATE_INCOMPLETE, book.incomplete)
    book.stale, book.detail = True, "no event for 99 s"  # stale says more: it is what is shown
    status = (await AdminService(runtime).GetStatus(admin.GetStatusRequest(), None)).streams[0]  # type: ignore[arg-type]
    assert (status.state, status.detail) == (admin.STREAM_STATE_STALE, "no event for 99 s")


async def test_the_backoff_starts_over_after_a_loss_that_followed_events(feed: MarketFeed) -> None:
    """A stream whose watch never returns (taken from the wire) resets its backoff when events
    came between two lost connections; not while reconnecting fails again and again."""
    key = StreamKey(SYMBOL, Channel.TRADES)
    stats = feed.streams.get(key)
    losses: list[int] = []
    backoff = Backoff(0.001, 1.0, rng=lambda: 0.5)

    async def watch() -> None:
        losses.append(backoff.failures)
        if len(losses) == 3:  # connected again, and frames became events
            feed.trade(SYMBOL, 1, str(len(losses)), "1", "1", Side.BUY)
        if len(losses) == 5:
            await asyncio.Event().wait()
        raise ccxt.NetworkError("connection lost")

    watcher = StreamWatcher(key, watch, stats, feed, backoff, lambda: None, lambda: None)
    watcher.start()
    for _ in range(500):
        if len(losses) == 5:
            break
        await asyncio.sleep(0.01)
    await watcher.stop()
    assert losses == [0, 1, 2, 1, 2], "doubling while it fails; started over after events"
