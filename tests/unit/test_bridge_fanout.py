"""The bridge's fan-out and pump, in process: routing by venue, kind and symbol, rounds, overflow."""

from __future__ import annotations

import sys
import threading
import time

import pytest

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.bridge.bridge import Bridge
from trademesh.core.bridge.fanout import MESSAGE_BYTES, LiveInterest, LiveSubscriber
from trademesh.core.bridge.routes import BOOK, NOTICES, TRADES, candles_kind
from trademesh.core.platform.errors import ResourceExhausted
from trademesh.core.platform.rpc.fanout import Overflow
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.marketdata.v1 import marketdata_pb2 as md


def interest(
    kinds: set[str], venues: set[str] | None = None, symbols: set[str] | None = None, conflate: bool = False
) -> LiveInterest:
    overflow = Overflow.CONFLATE if conflate else Overflow.DISCONNECT
    return LiveInterest(frozenset(venues or ()), frozenset(symbols or ()), frozenset(kinds), overflow)


def ready_bridge(queue: int = 8) -> Bridge:
    bridge = Bridge(queue)
    bridge.ready = True
    return bridge


def trade(venue: str, symbol: str, trade_id: str) -> md.MarketEvent:
    return md.MarketEvent(venue=venue, symbol=symbol, trade=md.Trade(trade_id=trade_id, price="1", size="1"))


def market(*events: md.MarketEvent) -> bus.Envelope:
    return bus.Envelope(source="test", market=bus.MarketEvents(events=events))


def queued(subscriber: LiveSubscriber) -> list[lv.SubscribeResponse]:
    """Everything in the subscriber's queue, parsed, without waiting (the queue is emptied)."""
    found = []
    while not subscriber.outbox._queue.empty():
        item = subscriber.outbox._queue.get_nowait()
        if item is not None:
            found.append(lv.SubscribeResponse.FromString(item[1]))
    return found


def trade_ids(subscriber: LiveSubscriber) -> list[str]:
    return [e.trade.trade_id for m in queued(subscriber) for e in m.events if e.HasField("trade")]


def test_events_reach_subscribers_by_venue_kind_and_symbol_with_empty_filters_meaning_all() -> None:
    bridge = ready_bridge()
    exact = bridge.subscribe(interest({TRADES}, {"sim"}, {"BTC/USDT"}))
    any_venue = bridge.subscribe(interest({TRADES}, symbols={"BTC/USDT"}))
    any_symbol = bridge.subscribe(interest({TRADES}, venues={"kraken"}))
    everything = bridge.subscribe(interest({TRADES}))
    books_only = bridge.subscribe(interest({BOOK}))
    for subscriber in (exact, any_venue, any_symbol, everything, books_only):
        assert queued(subscriber) == [lv.SubscribeResponse()], "the first message, empty"
    bridge.pump.take(
        "md.{sim}.trades", [market(trade("sim", "BTC/USDT", "1"), trade("sim", "ETH/USDT", "2"))]
    )
    bridge.pump.take("md.{kraken}.trades", [market(trade("kraken", "BTC/USDT", "3"))])
    assert trade_ids(exact) == ["1"]
    assert trade_ids(any_venue) == ["1", "3"]
    assert trade_ids(any_symbol) == ["3"]
    assert trade_ids(everything) == ["1", "2", "3"]
    assert queued(books_only) == []


def test_a_route_lists_only_its_own_subscribers_however_many_others_there_are() -> None:
    bridge = ready_bridge()
    for i in range(5000):
        bridge.subscribe(interest({TRADES}, {f"venue{i}"}, {"BTC/USDT"}))
    mine = bridge.subscribe(interest({TRADES}, {"sim"}))
    assert bridge.fanout.route(("sim", TRADES, "BTC/USDT")).subscribers == (mine,)
    started = time.perf_counter()
    for _ in range(1000):
        bridge.pump.take("md.{sim}.trades", [market(trade("sim", "BTC/USDT", "x"))])
    # 1000 rounds among 5000 unrelated subscribers: milliseconds, not a scan of them all.
    assert time.perf_counter() - started < 1.0


def test_a_round_gives_each_subscriber_one_message_split_when_it_grows_large() -> None:
    bridge = ready_bridge(queue=1000)
    subscriber = bridge.subscribe(interest({TRADES}))
    queued(subscriber)
    bridge.pump.take("md.{sim}.trades", [market(*(trade("sim", "BTC/USDT", str(i)) for i in range(10)))])
    assert len(queued(subscriber)) == 1
    big = "x" * 10_000
    events = [trade("sim", "BTC/USDT", f"{i}{big}") for i in range(300)]  # ~3 MB
    bridge.pump.take("md.{sim}.trades", [market(*events)])
    messages = queued(subscriber)
    assert len(messages) == 3 and all(m.ByteSize() <= MESSAGE_BYTES + 20_000 for m in messages)
    assert [e.trade.trade_id for m in messages for e in m.events] == [e.trade.trade_id for e in events]


def test_a_book_notice_reaches_book_and_notice_subscribers_once_each() -> None:
    bridge = ready_bridge()
    book = bridge.subscribe(interest({BOOK}))
    notices = bridge.subscribe(interest({NOTICES}))
    both = bridge.subscribe(interest({BOOK, NOTICES}))
    trades = bridge.subscribe(interest({TRADES}))
    for subscriber in (book, notices, both, trades):
        queued(subscriber)
    notice = md.StreamNotice(kind=md.NOTICE_KIND_RESYNC, channel=md.CHANNEL_BOOK, reason="x")
    bridge.pump.take("md.{sim}.book", [market(md.MarketEvent(venue="sim", symbol="BTC/USDT", notice=notice))])
    for subscriber in (book, notices, both):
        (message,) = queued(subscriber)
        assert [e.notice.reason for e in message.events] == ["x"]
    assert queued(trades) == []


def test_candles_and_bars_are_routed_by_timeframe() -> None:
    bridge = ready_bridge()
    minute = bridge.subscribe(interest({candles_kind("1m")}))
    bars_5m = bridge.subscribe(interest({"bars.5m"}))
    queued(minute), queued(bars_5m)
    candles = [
        md.MarketEvent(venue="sim", symbol="BTC/USDT", candle=md.Candle(timeframe=tf, open_time_ns=i))
        for i, tf in enumerate([common.TIMEFRAME_1_MINUTE, common.TIMEFRAME_5_MINUTES])
    ]
    bridge.pump.take("md.{sim}.candles", [market(*candles)])
    bars = [
        bus.Bar(venue="sim", symbol="BTC/USDT", timeframe=tf, open_time_ns=i)
        for i, tf in enumerate([common.TIMEFRAME_1_MINUTE, common.TIMEFRAME_5_MINUTES])
    ]
    bridge.pump.take("bars.5m", [bus.Envelope(bars=bus.Bars(bars=bars))])
    assert [e.candle.open_time_ns for m in queued(minute) for e in m.events] == [0]
    assert [b.open_time_ns for m in queued(bars_5m) for b in m.bars] == [1]


async def test_a_full_queue_ends_a_disconnect_subscriber_with_resource_exhausted() -> None:
    bridge = ready_bridge(queue=2)
    slow = bridge.subscribe(interest({TRADES}))
    for i in range(3):
        bridge.pump.take("md.{sim}.trades", [market(trade("sim", "BTC/USDT", str(i)))])
    assert slow.closed and slow not in bridge.fanout.subscribers
    assert bridge.fanout.route(("sim", TRADES, "BTC/USDT")).subscribers == ()
    with pytest.raises(ResourceExhausted, match="too slow"):
        async for _ in slow.messages():
            pass


def test_a_full_queue_conflates_a_conflate_subscriber_to_gaps_and_fresh_snapshots() -> None:
    bridge = ready_bridge(queue=2)
    snapshot = md.BookSnapshot(sequence=1, bids=[md.BookLevel(price="1", size="1")])
    bridge.pump.take(
        "md.{sim}.book", [market(md.MarketEvent(venue="sim", symbol="BTC/USDT", book_snapshot=snapshot))]
    )
    slow = bridge.subscribe(interest({TRADES, BOOK}, venues={"sim"}, conflate=True))
    for i in range(2, 6):
        delta = md.BookDelta(sequence=i, bids=[md.BookLevel(price=str(i), size="1")])
        bridge.pump.take(
            "md.{sim}.book", [market(md.MarketEvent(venue="sim", symbol="BTC/USDT", book_delta=delta))]
        )
        bridge.pump.take("md.{sim}.trades", [market(trade("sim", "BTC/USDT", str(i)))])
    assert slow.conflations >= 1 and not slow.closed
    events = [e for m in queued(slow) for e in m.events]
    kinds = [e.WhichOneof("payload") for e in events]
    # Per stream: its GAP notice, and for the book a fresh snapshot right after.
    assert kinds[:3] == ["notice", "book_snapshot", "notice"], kinds
    assert [e.notice.channel for e in (events[0], events[2])] == [md.CHANNEL_BOOK, md.CHANNEL_TRADES]
    assert "fell behind" in events[0].notice.reason
    fresh = events[1].book_snapshot
    # The snapshot stands for everything dropped; what follows it continues from it.
    following = [e.book_delta.sequence for e in events[3:] if e.HasField("book_delta")]
    assert following == list(range(fresh.sequence + 1, 6))


def test_a_new_book_subscriber_starts_from_the_books_it_covers() -> None:
    bridge = ready_bridge()
    for venue, symbol, sequence in [
        ("sim", "BTC/USDT", 3),
        ("sim", "ETH/USDT", 4),
        ("kraken", "BTC/USDT", 5),
    ]:
        snapshot = md.BookSnapshot(sequence=sequence)
        event = md.MarketEvent(venue=venue, symbol=symbol, book_snapshot=snapshot)
        bridge.pump.take(f"md.{{{venue}}}.book", [market(event)])
    subscriber = bridge.subscribe(interest({BOOK}, symbols={"BTC/USDT"}))
    (first,) = queued(subscriber)
    assert [(e.venue, e.book_snapshot.sequence) for e in first.events] == [("kraken", 5), ("sim", 3)]


def test_a_bridge_that_has_not_joined_the_bus_refuses_subscribers() -> None:
    bridge = Bridge(8)
    with pytest.raises(Exception, match="starting"):
        bridge.subscribe(interest({TRADES}))


def test_a_subscription_whose_snapshots_do_not_fit_its_queue_is_refused() -> None:
    bridge = ready_bridge(queue=1)
    levels = [md.BookLevel(price=str(1000 + i), size="1") for i in range(40_000)]  # ~0.5 MB a book
    for symbol in ("A/USDT", "B/USDT", "C/USDT"):
        event = md.MarketEvent(
            venue="sim", symbol=symbol, book_snapshot=md.BookSnapshot(sequence=1, bids=levels)
        )
        bridge.pump.take("md.{sim}.book", [market(event)])
    with pytest.raises(ResourceExhausted, match="subscribe to fewer books"):
        bridge.subscribe(interest({BOOK}))
    assert bridge.fanout.subscribers == set()
    assert len(queued(bridge.subscribe(interest({BOOK}, symbols={"A/USDT"})))) == 1


def test_the_deepest_queue_is_read_from_another_thread_while_subscribers_come_and_go() -> None:
    """The metrics server's thread reads `max_depth` while the loop subscribes and unsubscribes:
    walking the live set there raised "Set changed size during iteration" (a fuzz run's bridge
    log). A second of churn with the interpreter switching threads as often as it can."""
    fanout = ready_bridge().fanout
    for _ in range(200):
        fanout.subscribe(interest({TRADES}), [])
    errors: list[RuntimeError] = []
    done = threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                fanout.max_depth()
            except RuntimeError as exc:
                errors.append(exc)
                return

    switching = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    reader = threading.Thread(target=read)
    reader.start()
    try:
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not errors:
            fanout.unsubscribe(fanout.subscribe(interest({TRADES}), []))
    finally:
        done.set()
        reader.join()
        sys.setswitchinterval(switching)
    assert errors == []
