"""A venue runtime's feed encodes nothing before its first market-data subscriber
(trademesh/venues/runtime/feed.py, MarketFeed.listen): the sim's market through it, in process."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.book import L2Book
from trademesh.core.domain.model import Channel, Side, StreamKey
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.runtime.history import ResumePoint
from trademesh.venues.runtime.runtime import RuntimeState, VenueRuntime
from trademesh.venues.runtime.stats import StreamState
from trademesh.venues.runtime.subscribe import open_market_stream
from trademesh.venues.runtime.venue import VenueContext
from trademesh.venues.sim.config import SimConfig, SymbolConfig
from trademesh.venues.sim.venue import SimVenue

SYMBOL = "BTC/USDT"
BUSY = SymbolConfig(
    symbol=SYMBOL, start_price=Decimal("65000"), tick_size=Decimal("0.01"), lot_size=Decimal("0.00001"),
    trades_per_s=200, book_updates_per_s=2000, level_spacing_ticks=100, maker_size_lots=5000,
    taker_size_lots=1000, volatility_per_sqrt_s=0.0005,
)  # fmt: skip


def _runtime() -> tuple[VenueRuntime, SimVenue]:
    venue = SimVenue(SimConfig(symbols=(BUSY,)))
    runtime = VenueRuntime(venue)
    runtime.instruments = {i.symbol: i for i in venue.instruments()}
    runtime.active = venue.default_streams()
    runtime.state = RuntimeState.RUNNING
    venue.publisher.attach(VenueContext(runtime.feed, lambda e: None), runtime.active)
    venue.market.prime()
    runtime.feed.flush()
    return runtime, venue


def _steps(runtime: VenueRuntime, venue: SimVenue, count: int) -> None:
    for _ in range(count):
        venue.market.step()
        runtime.feed.flush()


def _engine_book(venue: SimVenue) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    ex = venue.exchange
    return tuple(  # type: ignore[return-value]
        [(ex.price_str(SYMBOL, p), ex.size_str(SYMBOL, n)) for p, n in ex.book(SYMBOL).depth(side)]
        for side in (Side.BUY, Side.SELL)
    )


async def test_before_its_first_subscriber_a_runtime_counts_and_keeps_its_books_and_sends_nothing() -> None:
    runtime, venue = _runtime()
    _steps(runtime, venue, 100)
    assert not runtime.feed.encoding
    assert runtime.fanout.history.position == 0, "nothing dispatched, nothing kept"
    assert runtime.feed.stats(SYMBOL, Channel.BOOK).events_total > 100
    assert runtime.feed.stats(SYMBOL, Channel.TRADES).events_total > 0
    assert runtime.feed.book(SYMBOL).snapshot() == _engine_book(venue)


async def test_the_first_subscriber_gets_the_book_then_every_delta_after_it_in_sequence() -> None:
    runtime, venue = _runtime()
    _steps(runtime, venue, 100)
    before = runtime.feed.book(SYMBOL).sequence
    subscriber = open_market_stream(
        runtime, md.SubscribeRequest(symbols=[SYMBOL], channels=[md.CHANNEL_BOOK, md.CHANNEL_TRADES])
    )
    _steps(runtime, venue, 100)
    runtime.fanout.end_all()
    book, positions, trades = L2Book(), [], 0
    async for raw in subscriber.batches():
        message = md.SubscribeResponse.FromString(raw)
        positions.append(message.position)
        for event in message.events:
            if event.HasField("book_snapshot"):
                snapshot = event.book_snapshot
                assert book.sequence == 0 and snapshot.sequence == before
                book.replace(snapshot.sequence, [(x.price, x.size) for x in snapshot.bids],
                             [(x.price, x.size) for x in snapshot.asks])  # fmt: skip
            elif event.HasField("book_delta"):
                delta = event.book_delta
                assert delta.sequence == book.sequence + 1, "a delta missing"
                book.apply(delta.sequence, [(x.price, x.size) for x in delta.bids],
                           [(x.price, x.size) for x in delta.asks])  # fmt: skip
            elif event.HasField("trade"):
                trades += 1
    assert book.sequence > before and trades > 0
    assert book.snapshot() == _engine_book(venue)
    # Positions start past what was not kept (History.skip), and rise.
    assert positions[0] >= 1 and positions == sorted(positions)
    assert not runtime.fanout.history.can_resume(ResumePoint(runtime.fanout.history.epoch, 0))
    assert runtime.fanout.history.can_resume(ResumePoint(runtime.fanout.history.epoch, positions[0]))


async def test_a_stream_that_went_quiet_before_anyone_listened_is_still_announced_to_the_first() -> None:
    runtime, _ = _runtime()
    stats = runtime.streams.get(StreamKey(SYMBOL, Channel.TRADES))
    stats.state, stats.stale, stats.detail = StreamState.CONNECTED, True, "no event for 99 s"
    runtime._went_stale(stats)  # its GAP notice, when no one listens: nothing sent, nothing kept
    runtime.feed.flush()
    assert runtime.fanout.history.position == 0
    subscriber = open_market_stream(
        runtime, md.SubscribeRequest(symbols=[SYMBOL], channels=[md.CHANNEL_TRADES])
    )
    runtime.fanout.end_all()
    notices = [
        event.notice
        async for raw in subscriber.batches()
        for event in md.SubscribeResponse.FromString(raw).events
        if event.HasField("notice")
    ]
    assert [(n.kind, n.reason) for n in notices] == [(md.NOTICE_KIND_GAP, "stream stale: no event for 99 s")]
