"""Ingest's reading of a (re)subscription's first message: did the venue resume the stream?

The first message may join several venue dispatches (what was missed, and what came since),
so only a GAP notice that opens it is the venue's refusal to resume.
"""

from __future__ import annotations

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.domain.model import Channel, Side
from trademesh.core.platform.bus.gaps import opens_with_gap_notice
from trademesh.core.platform.rpc.fanout import Overflow
from trademesh.venues.runtime.fanout import MarketFanout, MarketInterest, MarketSubscriber
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.history import History, ResumePoint
from trademesh.venues.runtime.stats import StreamTable

SYMBOL = "BTC/USDT"
TRADES = MarketInterest(frozenset({(SYMBOL, Channel.TRADES, None)}), Overflow.DISCONNECT)


def _feed() -> tuple[MarketFeed, MarketFanout]:
    feed = MarketFeed("sim", StreamTable())
    fanout = MarketFanout(100, lambda symbol, channel: b"", History(window_s=60, max_bytes=1 << 20))
    feed.attach(fanout)
    return feed, fanout


def _trades(feed: MarketFeed, first: int, count: int) -> None:
    for n in range(first, first + count):  # one dispatch each
        feed.trade(SYMBOL, n, str(n), "100", "1", Side.BUY)
        feed.flush()


async def _first_message(fanout: MarketFanout, subscriber: MarketSubscriber) -> bus.MarketEvents:
    fanout.end_all()
    messages = [bus.MarketEvents.FromString(m) async for m in subscriber.batches()]
    return messages[0]


async def test_a_refused_resume_opens_with_a_gap_notice_whatever_is_joined_after_it() -> None:
    feed, fanout = _feed()
    refusal = feed.gap_chunk(SYMBOL, Channel.TRADES, "cannot resume from position 7 of epoch 1")
    subscriber = fanout.subscribe(TRADES, refusal)
    _trades(feed, 1, 3)
    first = await _first_message(fanout, subscriber)
    assert [e.WhichOneof("payload") for e in first.events] == ["notice", "trade", "trade", "trade"]
    assert opens_with_gap_notice(first)


async def test_a_resumed_stream_whose_first_message_joins_a_later_venue_gap_is_still_resumed() -> None:
    feed, fanout = _feed()
    _trades(feed, 1, 3)
    point = ResumePoint(fanout.history.epoch, fanout.history.position)
    _trades(feed, 4, 2)
    feed.gap(SYMBOL, Channel.TRADES, "the venue lost its exchange connection")
    feed.flush()
    subscriber = fanout.subscribe(TRADES, b"", point)
    _trades(feed, 6, 2)  # live, joined after what was missed
    first = await _first_message(fanout, subscriber)
    kinds = [e.WhichOneof("payload") for e in first.events]
    assert kinds == ["trade", "trade", "notice", "trade", "trade"]
    assert not opens_with_gap_notice(first)
    assert first.position == fanout.history.position


def test_an_empty_message_opens_with_no_gap_notice() -> None:
    assert not opens_with_gap_notice(bus.MarketEvents())
