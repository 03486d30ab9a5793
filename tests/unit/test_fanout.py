"""Fan-out of encoded market events to subscribers with bounded queues."""

from __future__ import annotations

import pytest

from trademesh.core.domain.model import Channel, Side
from trademesh.core.platform.errors import ResourceExhausted
from trademesh.core.platform.rpc.fanout import Overflow, joined
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.runtime.fanout import JOIN_MOST, MarketFanout, MarketInterest
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.stats import StreamTable

BTC_TRADES = ("BTC/USDT", Channel.TRADES, None)
BTC_BOOK = ("BTC/USDT", Channel.BOOK, None)
ETH_TRADES = ("ETH/USDT", Channel.TRADES, None)


def _feed(queue_batches: int) -> tuple[MarketFeed, MarketFanout]:
    feed = MarketFeed("sim", StreamTable())

    def recover(symbol: str, channel: Channel) -> bytes:
        gap = feed.gap_chunk(symbol, channel, "x")
        return gap + feed.snapshot_chunk(symbol) if channel is Channel.BOOK else gap

    fanout = MarketFanout(queue_batches, recover)
    feed.attach(fanout)
    return feed, fanout


async def _drain(subscriber: object) -> list[md.MarketEvent]:
    events: list[md.MarketEvent] = []
    async for batch in subscriber.batches():  # type: ignore[attr-defined]
        events += md.SubscribeResponse.FromString(batch).events
    return events


def test_encoded_responses_join_into_one_valid_response() -> None:
    # The fan-out relies on this: a subscriber's batch is the byte join of its streams' batches.
    events = [md.MarketEvent(symbol=f"S{i}", trade=md.Trade(trade_id=str(i) * 70)) for i in range(3)]
    parts = [md.SubscribeResponse(events=events[:1]), md.SubscribeResponse(events=events[1:])]
    joined = b"".join(part.SerializeToString() for part in parts)
    assert list(md.SubscribeResponse.FromString(joined).events) == events


async def test_a_subscriber_behind_gets_its_queued_batches_as_fewer_messages() -> None:
    feed, fanout = _feed(200)
    subscriber = fanout.subscribe(MarketInterest(frozenset({BTC_TRADES}), Overflow.DISCONNECT), b"")
    for n in range(100):  # 100 dispatches while the subscriber reads nothing
        feed.trade("BTC/USDT", n, str(n), "100", "1", Side.BUY)
        feed.flush()
    fanout.end_all()
    messages = [md.SubscribeResponse.FromString(m) async for m in subscriber.batches()]
    assert [len(m.events) for m in messages] == [JOIN_MOST, 100 - JOIN_MOST]
    assert [e.trade.trade_id for m in messages for e in m.events] == [str(n) for n in range(100)]
    # Each message carries the position of its last batch: a resume from it misses nothing.
    assert [m.position for m in messages] == [JOIN_MOST, 100]


def test_joined_messages_stay_under_the_byte_bound_unless_one_item_is_over_it() -> None:
    items = [b"a" * 40, b"b" * 40, b"c" * 40, b"d" * 150, b"e" * 10]
    assert [len(m) for m in joined(items, 100)] == [80, 40, 150, 10]
    assert b"".join(joined(items, 100)) == b"".join(items)
    assert list(joined([], 100)) == []


async def test_events_reach_only_interested_subscribers() -> None:
    feed, fanout = _feed(8)
    btc = fanout.subscribe(MarketInterest(frozenset({BTC_TRADES}), Overflow.DISCONNECT), b"")
    eth = fanout.subscribe(MarketInterest(frozenset({ETH_TRADES}), Overflow.DISCONNECT), b"")
    feed.trade("BTC/USDT", 1, "1", "100", "1", Side.BUY)
    feed.trade("ETH/USDT", 2, "2", "10", "1", Side.SELL)
    feed.flush()
    fanout.end_all()
    assert [e.trade.trade_id for e in await _drain(btc)] == ["1"]
    assert [e.trade.trade_id for e in await _drain(eth)] == ["2"]


async def test_a_full_queue_ends_a_disconnect_subscriber_with_resource_exhausted() -> None:
    feed, fanout = _feed(2)
    slow = fanout.subscribe(MarketInterest(frozenset({BTC_TRADES}), Overflow.DISCONNECT), b"")
    fast = fanout.subscribe(MarketInterest(frozenset({BTC_TRADES}), Overflow.DISCONNECT), b"")
    for i in range(3):
        feed.trade("BTC/USDT", i, str(i), "100", "1", Side.BUY)
        feed.flush()
        if i < 2:
            assert [
                e.trade.trade_id for e in md.SubscribeResponse.FromString(await anext(fast.batches())).events
            ]
    with pytest.raises(ResourceExhausted, match="queue of 2 batches is full"):
        await _drain(slow)
    assert slow not in fanout.subscribers
    assert fast in fanout.subscribers
    assert fanout.dropped == 1


async def test_a_full_queue_conflates_to_a_gap_and_a_fresh_snapshot() -> None:
    feed, fanout = _feed(2)
    feed.book_delta("BTC/USDT", 1, [("100", "1")], [("101", "2")])
    feed.flush()
    slow = fanout.subscribe(MarketInterest(frozenset({BTC_BOOK}), Overflow.CONFLATE), b"")
    for i in range(3):
        feed.book_delta("BTC/USDT", 2 + i, [(str(99 - i), "1")], [])
        feed.flush()
    fanout.end_all()
    events = await _drain(slow)
    assert events[0].notice.kind == md.NOTICE_KIND_GAP
    assert events[0].notice.channel == md.CHANNEL_BOOK
    snapshot = events[1].book_snapshot
    assert snapshot.sequence == 4
    assert [(lv.price, lv.size) for lv in snapshot.bids] == [
        ("100", "1"),
        ("99", "1"),
        ("98", "1"),
        ("97", "1"),
    ]
    assert fanout.conflated == 1


def test_book_snapshot_follows_deltas_in_sequence() -> None:
    feed, _ = _feed(4)
    feed.book_snapshot("BTC/USDT", 1, [("100", "1"), ("99", "2")], [("101", "1")])
    feed.book_delta("BTC/USDT", 2, [("99", "0"), ("98.5", "3")], [("101", "0"), ("102", "4")])
    feed.flush()
    book = feed.book("BTC/USDT")
    assert book.sequence == 2
    assert book.snapshot() == ([("100", "1"), ("98.5", "3")], [("102", "4")])
