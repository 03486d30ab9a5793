"""A changing book is sent whole at least every SNAPSHOT_EVERY_S (trademesh/venues/runtime/feed.py): the bus
keeps a market stream's last minutes only, and a consumer starting on it later (a restarted
bridge) rebuilds the book from the latest snapshot there. A venue that builds its book from
changes (the sim) sent none of its own: a bridge restarted ten minutes in had no book to give."""

from __future__ import annotations

from trademesh.core.domain.book import L2Book
from trademesh.core.domain.model import Channel
from trademesh.core.platform.rpc.fanout import Overflow
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.runtime.fanout import MarketFanout, MarketInterest
from trademesh.venues.runtime.feed import SNAPSHOT_EVERY_S, MarketFeed
from trademesh.venues.runtime.stats import StreamTable

SYMBOL = "BTC/USDT"
BOOK = (SYMBOL, Channel.BOOK, None)
S = 1_000_000_000


class Clock:
    def __init__(self) -> None:
        self.now_ns = 1_000 * S

    def __call__(self) -> int:
        return self.now_ns


def _feed() -> tuple[MarketFeed, MarketFanout, Clock]:
    clock = Clock()
    feed = MarketFeed("sim", StreamTable(), clock=clock)
    fanout = MarketFanout(10_000, lambda symbol, channel: b"")
    feed.attach(fanout)
    return feed, fanout, clock


async def _sent(subscriber: object) -> list[md.MarketEvent]:
    batches = [batch async for batch in subscriber.batches()]  # type: ignore[attr-defined]
    return [event for batch in batches for event in md.SubscribeResponse.FromString(batch).events]


def _delta(feed: MarketFeed, n: int) -> None:
    feed.book_delta(SYMBOL, 0, [(f"{100 - n % 5}", f"{n + 1}")], [(f"{101 + n % 5}", "2")])
    feed.flush()


async def test_a_book_built_from_changes_is_sent_whole_every_period_next_in_its_sequence() -> None:
    feed, fanout, clock = _feed()
    subscriber = fanout.subscribe(MarketInterest(frozenset({BOOK}), Overflow.DISCONNECT), b"")
    for n in range(5):  # the first minute: changes only
        _delta(feed, n)
        clock.now_ns += 10 * S
    clock.now_ns += SNAPSHOT_EVERY_S * S
    _delta(feed, 5)  # a change after the period: the book follows it whole
    _delta(feed, 6)
    fanout.end_all()
    events = await _sent(subscriber)
    kinds = [e.WhichOneof("payload") for e in events]
    assert kinds == ["book_delta"] * 6 + ["book_snapshot", "book_delta"]
    sequences = [getattr(e, e.WhichOneof("payload") or "").sequence for e in events]
    assert sequences == list(range(1, 9))  # no hole: the snapshot is the next step
    # The snapshot is the book as the changes made it, exactly.
    built = L2Book()
    for event in events[:6]:
        built.apply_wire(event.book_delta.sequence, event.book_delta.bids, event.book_delta.asks)
    whole = events[6].book_snapshot
    assert built.snapshot() == (
        [(level.price, level.size) for level in whole.bids],
        [(level.price, level.size) for level in whole.asks],
    )
    assert feed.book(SYMBOL).sequence == 8


async def test_an_unchanged_book_sends_nothing_and_a_venues_own_snapshot_restarts_the_period() -> None:
    feed, fanout, clock = _feed()
    subscriber = fanout.subscribe(MarketInterest(frozenset({BOOK}), Overflow.DISCONNECT), b"")
    _delta(feed, 0)
    clock.now_ns += 10 * SNAPSHOT_EVERY_S * S
    feed.flush()  # nothing changed: nothing sent
    feed.book_snapshot(SYMBOL, 0, [("99", "1")], [("102", "1")])
    feed.flush()  # the venue's own snapshot
    clock.now_ns += SNAPSHOT_EVERY_S * S - 1
    _delta(feed, 1)  # within the period since the venue's snapshot
    fanout.end_all()
    events = await _sent(subscriber)
    assert [e.WhichOneof("payload") for e in events] == ["book_delta", "book_snapshot", "book_delta"]
