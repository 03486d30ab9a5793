"""Admin: status of every stream, subscriber counts, subscription changes, reconnect."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import grpc
import pytest

from tests.integration.support import (
    CALL_TIMEOUT_S,
    BookFollower,
    Stubs,
    VenueFactory,
    next_batch,
    stream_status,
    until,
)
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = pytest.mark.integration

SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
CHANNELS = [md.CHANNEL_TRADES, md.CHANNEL_BOOK, md.CHANNEL_CANDLES, md.CHANNEL_TICKERS]


def by_stream(status: admin.GetStatusResponse) -> dict[tuple[str, int], admin.StreamStatus]:
    return {(s.symbol, s.channel): s for s in status.streams}


async def test_status_lists_every_stream_connected_with_a_live_event_rate(stubs: Stubs) -> None:
    async def all_flowing() -> admin.GetStatusResponse | None:
        status = await stream_status(stubs)
        return status if status.streams and all(s.events_per_s > 0 for s in status.streams) else None

    status = await until(all_flowing, 10.0, interval_s=0.25, what="every stream with events_per_s > 0")
    assert status.venue == "sim" and status.state == admin.VENUE_STATE_RUNNING
    assert 0 < status.started_ns < time.time_ns()
    streams = by_stream(status)
    assert sorted(streams) == sorted((s, c) for s in SYMBOLS for c in CHANNELS)
    for key, stream in streams.items():
        assert stream.state == admin.STREAM_STATE_CONNECTED, key
        assert stream.events_total > 0, key
        assert 0 <= stream.last_event_age_ms < 5000, key


async def test_subscriber_counts_follow_the_open_streams(fresh_venue: VenueFactory) -> None:
    stubs = fresh_venue(name="counts").stubs()
    book = md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_BOOK])
    trades = md.SubscribeRequest(symbols=["BTC/USDT", "ETH/USDT"], channels=[md.CHANNEL_TRADES])
    calls = [stubs.md.Subscribe(book), stubs.md.Subscribe(book), stubs.md.Subscribe(trades)]
    for call in calls:
        await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)

    status = await stream_status(stubs)
    counts = {key: s.subscriber_count for key, s in by_stream(status).items()}
    assert status.subscriber_count == 3
    assert counts.pop(("BTC/USDT", md.CHANNEL_BOOK)) == 2
    assert counts.pop(("BTC/USDT", md.CHANNEL_TRADES)) == 1
    assert counts.pop(("ETH/USDT", md.CHANNEL_TRADES)) == 1
    assert set(counts.values()) == {0}

    calls[0].cancel()
    calls[2].cancel()

    async def after_cancel() -> admin.GetStatusResponse | None:
        status = await stream_status(stubs)
        return status if status.subscriber_count == 1 else None

    status = await until(after_cancel, CALL_TIMEOUT_S, what="the cancelled streams to be gone")
    counts = {key: s.subscriber_count for key, s in by_stream(status).items()}
    assert counts[("BTC/USDT", md.CHANNEL_BOOK)] == 1 and counts[("ETH/USDT", md.CHANNEL_TRADES)] == 0


async def test_a_removed_stream_refuses_subscriptions_until_it_is_added_back(
    fresh_venue: VenueFactory,
) -> None:
    stubs = fresh_venue(name="subscriptions").stubs()
    sol_trades = admin.Subscription(symbol="SOL/USDT", channel=md.CHANNEL_TRADES)
    watcher = stubs.md.Subscribe(md.SubscribeRequest(symbols=["SOL/USDT"], channels=[md.CHANNEL_TRADES]))
    await next_batch(watcher)
    removed = await stubs.admin.RemoveSubscriptions(
        admin.RemoveSubscriptionsRequest(subscriptions=[sol_trades]), timeout=CALL_TIMEOUT_S
    )

    async def removal_notice() -> md.StreamNotice | None:
        batch = await next_batch(watcher)
        notices = [e.notice for e in batch.events if e.HasField("notice")]
        return notices[0] if notices else None

    # A subscriber of the removed stream is told why it goes quiet.
    notice = await until(removal_notice, CALL_TIMEOUT_S, what="a notice of the removed stream")
    assert (notice.kind, notice.channel) == (md.NOTICE_KIND_GAP, md.CHANNEL_TRADES)
    assert "removed" in notice.reason
    watcher.cancel()
    assert sol_trades not in removed.subscriptions and len(removed.subscriptions) == 11
    listed = await stubs.admin.ListSubscriptions(admin.ListSubscriptionsRequest(), timeout=CALL_TIMEOUT_S)
    assert list(listed.subscriptions) == list(removed.subscriptions)
    assert (
        by_stream(await stream_status(stubs))[("SOL/USDT", md.CHANNEL_TRADES)].state
        == admin.STREAM_STATE_STOPPED
    )

    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=["SOL/USDT"], channels=[md.CHANNEL_TRADES]))
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)
    assert error.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "SOL/USDT" in (error.value.details() or "")
    # With a stream it carries, the subscription is served, the removed one refused alone.
    both = stubs.md.Subscribe(
        md.SubscribeRequest(symbols=["BTC/USDT", "SOL/USDT"], channels=[md.CHANNEL_TRADES])
    )
    refused = (await next_batch(both)).events[0]
    assert (refused.symbol, refused.notice.kind, refused.notice.channel) == (
        "SOL/USDT", md.NOTICE_KIND_REFUSED, md.CHANNEL_TRADES,
    )  # fmt: skip
    assert "not streamed" in refused.notice.reason
    both.cancel()
    other = stubs.md.Subscribe(md.SubscribeRequest(symbols=["SOL/USDT"], channels=[md.CHANNEL_BOOK]))
    assert (await next_batch(other)).events[0].HasField("book_snapshot")
    other.cancel()

    added = await stubs.admin.AddSubscriptions(
        admin.AddSubscriptionsRequest(subscriptions=[sol_trades]), timeout=CALL_TIMEOUT_S
    )
    assert sol_trades in added.subscriptions and len(added.subscriptions) == 12
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=["SOL/USDT"], channels=[md.CHANNEL_TRADES]))
    message = await next_batch(call)
    assert message.events and all(e.HasField("trade") and e.symbol == "SOL/USDT" for e in message.events)
    call.cancel()
    assert (
        by_stream(await stream_status(stubs))[("SOL/USDT", md.CHANNEL_TRADES)].state
        == admin.STREAM_STATE_CONNECTED
    )


async def test_a_book_stream_added_back_serves_the_engines_current_book(fresh_venue: VenueFactory) -> None:
    stubs = fresh_venue(name="book-readd").stubs()
    btc_book = [admin.Subscription(symbol="BTC/USDT", channel=md.CHANNEL_BOOK)]
    await stubs.admin.RemoveSubscriptions(admin.RemoveSubscriptionsRequest(subscriptions=btc_book))
    await _top_moves(stubs, "BTC/USDT", 5)  # the market moves on while nobody publishes its book
    await stubs.admin.AddSubscriptions(admin.AddSubscriptionsRequest(subscriptions=btc_book))

    call = stubs.md.Subscribe(
        md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_BOOK, md.CHANNEL_TICKERS])
    )
    follower = BookFollower()
    try:
        await follower.follow(call, until_checks=5)
    finally:
        call.cancel()
    bids, asks = follower.books["BTC/USDT"].levels()
    assert bids and asks and Decimal(bids[0][0]) < Decimal(asks[0][0]), "the rebuilt book is crossed"


async def _top_moves(stubs: Stubs, symbol: str, moves: int) -> None:
    """Until the top of the book (the tickers stream, still published) has changed `moves` times."""
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=[symbol], channels=[md.CHANNEL_TICKERS]))
    try:
        tops: list[tuple[str, str]] = []
        async with asyncio.timeout(30):  # a market standing still fails the test
            while len(tops) <= moves:
                for event in (await next_batch(call)).events:
                    top = (event.ticker.best_bid, event.ticker.best_ask)
                    if event.HasField("ticker") and (not tops or top != tops[-1]):
                        tops.append(top)
    finally:
        call.cancel()


async def test_reconnect_resyncs_books_and_marks_gaps_on_other_streams(fresh_venue: VenueFactory) -> None:
    stubs = fresh_venue(name="reconnect").stubs()
    call = stubs.md.Subscribe(
        md.SubscribeRequest(
            symbols=["ETH/USDT"], channels=[md.CHANNEL_BOOK, md.CHANNEL_TRADES, md.CHANNEL_TICKERS]
        )
    )
    follower = BookFollower()
    wanted = {(md.NOTICE_KIND_RESYNC, md.CHANNEL_BOOK), (md.NOTICE_KIND_GAP, md.CHANNEL_TRADES)}

    def kinds() -> set[tuple[int, int]]:
        return {(n.notice.kind, n.notice.channel) for n in follower.notices}

    try:
        await follower.follow(call, until_checks=2)
        reconnected = await stubs.admin.Reconnect(admin.ReconnectRequest(), timeout=CALL_TIMEOUT_S)
        assert reconnected.streams == 12
        # The notices come behind what the stream had queued before the reconnect (a loaded run
        # read three tickers of before it and none of them): read until they are there, then on.
        async with asyncio.timeout(30):
            while not wanted <= kinds():
                await follower.follow(call, until_checks=follower.ticker_checks + 1)
        await follower.follow(call, until_checks=follower.ticker_checks + 3)
    finally:
        call.cancel()
    assert wanted <= kinds(), kinds()
    streams = by_stream(await stream_status(stubs))
    assert all(s.reconnects == 1 for s in streams.values())
    assert streams[("ETH/USDT", md.CHANNEL_BOOK)].resyncs == 1


async def test_a_spot_pairs_funding_rate_is_refused_naming_why(stubs: Stubs) -> None:
    """Only a perpetual has a funding rate: a spot pair's funding channel is not added (the field
    named) nor served (the subscription refused, saying why)."""
    funding = admin.Subscription(symbol="BTC/USDT", channel=md.CHANNEL_FUNDING)
    with pytest.raises(grpc.aio.AioRpcError) as added:
        await stubs.admin.AddSubscriptions(
            admin.AddSubscriptionsRequest(subscriptions=[funding]), timeout=CALL_TIMEOUT_S
        )
    assert added.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_violations(added.value) == [
        ("subscriptions[0].channel", "BTC/USDT is spot: only a perpetual has a funding rate")
    ]
    call = stubs.md.Subscribe(md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_FUNDING]))
    with pytest.raises(grpc.aio.AioRpcError) as served:
        await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)
    assert served.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "only a perpetual has a funding rate" in (served.value.details() or "")
