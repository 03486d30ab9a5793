"""Book deltas from ccxt's change log (tracked_book) equal the full diff, step by step (issue 17).

Two books take the same random operations: a tracked one (what our exchanges create) and
ccxt's own, which the normalizer can only diff whole. Operations are ccxt's: level updates
through `store`/`storeArray` (plain and order-counted books), trims to the depth (`limit`),
resets from a snapshot, REST-started snapshots with a known range, a new book object, and
on the normalizer's side resyncs, restarts and polls with or without ccxt resolving the book.
After every poll both feeds must have sent the same events: same kinds and sequence numbers,
the same snapshot levels in the same order, the same delta levels (each price once).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import ccxt.pro
from ccxt.async_support.base.ws.order_book import CountedOrderBook, OrderBook
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.binance.spec import SPEC as BINANCE
from trademesh.venues.deribit.spec import SPEC as DERIBIT
from trademesh.venues.live.exchange import Hooks, create_exchange
from trademesh.venues.live.normalize import BookNormalizer, BookRange
from trademesh.venues.live.tracked_book import (
    TrackedCountedOrderBook,
    TrackedOrderBook,
    level_size,
    take_changes,
)
from trademesh.venues.runtime.fanout import MarketRoute
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.stats import StreamTable

SYMBOL = "X/Y"
DEPTH = 8
STEPS = 400


class Sink:
    def __init__(self) -> None:
        self.events: list[md.MarketEvent] = []

    def dispatch(self, pending: dict[MarketRoute, bytes]) -> None:
        for chunk in pending.values():
            self.events.extend(md.SubscribeResponse.FromString(chunk).events)


class FakeExchange:
    def __init__(self) -> None:
        self.orderbooks: dict[str, Any] = {}


class Side:
    """One normalizer over one kind of book, with its own feed."""

    def __init__(self, factory: Callable[[Any, int], Any], ranges: dict[str, BookRange]) -> None:
        self.factory = factory
        self.sink = Sink()
        self.feed = MarketFeed("test", StreamTable())
        self.feed.attach(self.sink)  # type: ignore[arg-type]
        self.exchange = FakeExchange()
        self.resolved: set[int] = set()
        self.normalizer = BookNormalizer(self.feed, SYMBOL, self.resolved, ranges)
        self.full_diffs = 0
        known = self.normalizer._known

        def counted(bids: Any, asks: Any) -> Any:
            self.full_diffs += 1
            return known(bids, asks)

        self.normalizer._known = counted  # type: ignore[method-assign]

    @property
    def book(self) -> Any:
        return self.exchange.orderbooks[SYMBOL]

    def new_book(self, snapshot: dict[str, Any]) -> None:
        self.exchange.orderbooks[SYMBOL] = self.factory(snapshot, DEPTH)

    def poll(self, resolved: bool) -> list[md.MarketEvent]:
        if resolved:
            self.resolved.add(id(self.book))
        self.normalizer.poll(self.exchange)
        self.resolved.clear()
        self.feed.flush()
        events, self.sink.events = self.sink.events, []
        return events


def _levels(levels: Any) -> list[tuple[str, str]]:
    return [(level.price, level.size) for level in levels]


def _same_events(incremental: list[md.MarketEvent], full: list[md.MarketEvent]) -> None:
    assert [e.WhichOneof("payload") for e in incremental] == [e.WhichOneof("payload") for e in full]
    for mine, theirs in zip(incremental, full, strict=True):
        if mine.HasField("book_snapshot"):
            assert mine.book_snapshot == theirs.book_snapshot
        elif mine.HasField("book_delta"):
            a, b = mine.book_delta, theirs.book_delta
            assert a.sequence == b.sequence
            for side_a, side_b in ((a.bids, b.bids), (a.asks, b.asks)):
                mine_levels = _levels(side_a)
                assert len({price for price, _ in mine_levels}) == len(mine_levels), "a price twice"
                assert dict(mine_levels) == dict(_levels(side_b))
        else:
            assert mine.notice == theirs.notice


def _price(rng: random.Random, bid: bool) -> float:
    step = rng.randrange(1, 40) * 0.25
    return round(100.0 - step if bid else 100.0 + step, 2)


def _level(rng: random.Random, bid: bool, counted: bool, removal: bool = True) -> list[Any]:
    size = rng.choice([0.0, 0.5, 1.25, 3.0] if removal else [0.5, 1.25, 3.0])
    if counted:
        return [_price(rng, bid), size, rng.choice([0, 1, 4] if removal else [1, 4])]
    return [_price(rng, bid), size]


def _snapshot(rng: random.Random, counted: bool) -> dict[str, Any]:
    bids = {
        level[0]: level for level in (_level(rng, True, counted, False) for _ in range(rng.randrange(0, 14)))
    }
    asks = {
        level[0]: level for level in (_level(rng, False, counted, False) for _ in range(rng.randrange(0, 14)))
    }
    return {
        "bids": sorted(bids.values(), reverse=True),
        "asks": sorted(asks.values()),
        "nonce": rng.randrange(1_000),
    }


def _run(seed: int, counted: bool) -> tuple[Side, Side, int]:
    """The two sides after a random run, and how many operations made the log unusable."""
    rng = random.Random(seed)
    ranges: dict[str, BookRange] = {}
    if counted:
        tracked, plain = Side(TrackedCountedOrderBook, ranges), Side(CountedOrderBook, ranges)
    else:
        tracked, plain = Side(TrackedOrderBook, ranges), Side(OrderBook, ranges)
    both = (tracked, plain)
    first = _snapshot(rng, counted)
    for side in both:
        side.new_book(first)
    nonce = invalidations = 0
    for _ in range(STEPS):
        roll = rng.random()
        invalidations += 0.65 <= roll < 0.74  # a reset, a new range or book, a resync or restart
        if roll < 0.55:  # a venue update of a few levels
            levels = [_level(rng, rng.random() < 0.5, counted) for _ in range(rng.randrange(1, 5))]
            nonce += rng.random() < 0.9  # now and then an update without a new nonce
            for side in both:
                for level in levels:
                    side.book["bids" if level[0] < 100 else "asks"].storeArray(list(level))
                side.book["nonce"] = nonce
        elif roll < 0.65:
            for side in both:
                side.book.limit()
        elif roll < 0.68:  # a reset from a WebSocket snapshot
            snapshot = _snapshot(rng, counted)
            for side in both:
                side.book.reset(snapshot)
        elif roll < 0.70:  # a REST snapshot cut at the depth: a known range
            snapshot = _snapshot(rng, counted)
            ranges[SYMBOL] = BookRange.of_snapshot(snapshot, rng.choice([DEPTH, 4]))
            for side in both:
                side.book.reset(snapshot)
        elif roll < 0.72:  # ccxt creates a new book object
            snapshot = _snapshot(rng, counted)
            for side in both:
                side.new_book(snapshot)
        elif roll < 0.73:
            for side in both:
                side.normalizer.resync("sequence broken")
        elif roll < 0.74:
            for side in both:
                side.normalizer.restart()
        else:
            resolved = rng.random() < 0.7
            _same_events(tracked.poll(resolved), plain.poll(resolved))
    return tracked, plain, invalidations


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=2**32), st.booleans())
def test_deltas_from_the_change_log_equal_the_full_diff(seed: int, counted: bool) -> None:
    tracked, plain, _ = _run(seed, counted)
    assert tracked.book["bids"] == plain.book["bids"] and tracked.book["asks"] == plain.book["asks"]


def test_the_change_log_spares_the_full_diffs() -> None:
    """The tracked book is diffed whole only after what makes its log unusable (or first)."""
    logged = 0
    for seed in range(10):
        tracked, plain, invalidations = _run(seed, seed % 2 == 1)
        assert tracked.full_diffs <= invalidations + 1
        logged += plain.full_diffs - tracked.full_diffs  # polls the log answered
    assert logged > 200


def _book(levels: int = 1_000) -> TrackedOrderBook:
    return TrackedOrderBook(
        {
            "bids": [[1000.0 - i, 1.0] for i in range(levels)],
            "asks": [[1001.0 + i, 1.0] for i in range(levels)],
        },
        levels,
    )


def test_an_update_is_read_from_the_levels_it_touched_only() -> None:
    sink = Sink()
    feed = MarketFeed("test", StreamTable())
    feed.attach(sink)  # type: ignore[arg-type]
    exchange = FakeExchange()
    book = exchange.orderbooks[SYMBOL] = _book()
    normalizer = BookNormalizer(feed, SYMBOL, {id(book)})
    assert normalizer.poll(exchange)  # the snapshot
    known: list[int] = []

    def whole(bids: Any, asks: Any) -> Any:
        known.append(1)
        return {}, {}

    normalizer._known = whole  # type: ignore[method-assign]
    book["bids"].store(999.5, 2.0)  # a new level
    book["bids"].store(1000.0, 0.0)  # the best bid goes
    book["asks"].store(1001.0, 4.0)  # a size changes
    book["asks"].store(1500.5, 1.0)  # a new level: 1,001 asks...
    book["asks"].store(2500.0, 1.0)  # ...and 1,002, beyond the last one
    book.limit()  # ccxt trims to 1,000: 2000 and 2500 go
    book["nonce"] = 1
    assert normalizer.poll(exchange)
    assert not known, "the whole book was diffed"
    feed.flush()
    delta = sink.events[-1].book_delta
    assert _levels(delta.bids) == [("1000", "0"), ("999.5", "2")]
    assert _levels(delta.asks) == [("1001", "4"), ("1500.5", "1"), ("2000", "0")]
    book["nonce"] = 2  # nothing changed but the nonce: no delta
    assert not normalizer.poll(exchange)
    book.reset({"bids": [[10.0, 1.0]], "asks": []})  # a reset: the log is no longer trusted
    book["nonce"] = 3
    assert normalizer.poll(exchange)
    assert known == [1]


def test_a_log_taken_by_another_reader_is_not_trusted() -> None:
    side = _book(10)["bids"]
    first, second = object(), object()
    assert take_changes(side, first) is None  # a new side: nothing known yet
    side.store(995.5, 1.0)
    assert take_changes(side, first) == {995.5}
    side.store(994.5, 1.0)
    assert take_changes(side, second) is None, "the log since `second` last took it is unknown"
    assert take_changes(side, first) is None
    assert take_changes(OrderBook({})["bids"], first) is None  # ccxt's own side keeps no log
    assert level_size(side, 994.5) == 1.0 and level_size(side, 994.75) is None


def test_the_venue_exchanges_create_tracked_books() -> None:
    hooks = Hooks(lambda: None, lambda exc: None)
    binance = create_exchange(BINANCE, hooks, False, None)
    assert isinstance(binance, ccxt.pro.binance)
    book = binance.order_book({"bids": [[1.0, 2.0]]}, 5)
    assert isinstance(book, TrackedOrderBook) and book["bids"] == [[1.0, 2.0]]
    deribit = create_exchange(DERIBIT, hooks, False, None)
    assert isinstance(deribit.counted_order_book({}, 5), TrackedCountedOrderBook)
    indexed = binance.indexed_order_book({}, 5)  # one entry per order: diffed whole
    assert take_changes(indexed["bids"], object()) is None
