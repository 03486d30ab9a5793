"""Market data from the wire (trademesh/venues/live/wire.py, trademesh/venues/binance/wire.py, issue 17).

- `plain_decimal` gives format_decimal's text for every decimal string;
- a WireBook sends the same events as ccxt's book read by the BookNormalizer, on random
  updates (with the venue's own strings: trailing zeros, sizes of 0), trims to the depth and
  REST snapshots cut at the depth (a known range);
- Binance's book sync: diffs buffered until the snapshot and unrolled by its rules, stale ones
  dropped, a gap fails ccxt's watch as ccxt's handler does and the next snapshot is a resync;
- Binance's tickers, trades and klines become the events the normalizers made of ccxt's caches.
"""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import ccxt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.feed_support import Sink, new_feed, taken
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.model import Channel, StreamKey, Timeframe
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.binance.wire import BinanceWire, DepthSync
from trademesh.venues.live.normalize import BookNormalizer, BookRange
from trademesh.venues.live.tracked_book import TrackedOrderBook
from trademesh.venues.live.wire import WireBook, number_plain, number_text, plain_decimal
from trademesh.venues.runtime.feed import MarketFeed

SYMBOL = "X/Y"


@given(st.decimals(min_value=0, max_value=10**9, places=8, allow_nan=False), st.integers(0, 6))
def test_plain_decimal_is_format_decimals_text(value: Decimal, zeros: int) -> None:
    text = f"{value:f}" + ("0" * zeros if "." in f"{value:f}" else "")
    assert plain_decimal(text) == format_decimal(Decimal(text))


@pytest.mark.parametrize(
    "text", ["0.35130000", "10.00000000", "0.00000000", "1e-8", "007", "-1.50", "1.50e1"]
)
def test_plain_decimal_of_odd_strings(text: str) -> None:
    assert plain_decimal(text) == format_decimal(Decimal(text))


@given(st.one_of(st.floats(allow_nan=False), st.integers(-(10**30), 10**30)))
def test_number_plain_is_plain_decimal_of_number_text(value: float | int) -> None:
    expected = plain_decimal(number_text(value))
    assert number_plain(value) == expected
    assert number_plain(value) == expected  # as kept


@pytest.mark.parametrize("value", [0.0, -0.0, 0, 1e16, 2.0**60, 1e-05, 5e-324, 10.0, 0.1, float("inf"), None])
def test_number_plain_of_odd_numbers(value: float | None) -> None:
    assert number_plain(value) == plain_decimal(number_text(value))
    if value is not None and value == 2.0**60:  # equal to an int whose text is not the float's
        assert number_plain(2**60) == "1152921504606846976" != number_plain(value)


def _text(value: float, rng: random.Random) -> str:
    return f"{value:.{rng.choice([2, 4, 8])}f}"  # the venue's text: padded with zeros at will


class Ccxt:
    """What runs today: ccxt's (tracked) book, trimmed as its watch returns it, read by the normalizer."""

    def __init__(self, snapshot: dict[str, Any], depth: int) -> None:
        self.feed, self.sink = new_feed()
        self.exchange = type("Exchange", (), {"orderbooks": {}})()
        self.resolved: set[int] = set()
        ranges = {SYMBOL: BookRange.of_snapshot(snapshot, depth)}
        self.normalizer = BookNormalizer(self.feed, SYMBOL, self.resolved, ranges)
        book = TrackedOrderBook({}, depth)
        book.reset(snapshot)
        self.exchange.orderbooks[SYMBOL] = book
        self.poll(resolved=True)

    def update(self, bids: list[list[str]], asks: list[list[str]], ms: int) -> None:
        book = self.exchange.orderbooks[SYMBOL]
        for side, levels in (("bids", bids), ("asks", asks)):
            for price, size in levels:
                book[side].store(float(price), float(size))
        book["timestamp"], book["nonce"] = ms, ms
        self.poll(resolved=True)

    def poll(self, resolved: bool) -> None:
        self.exchange.orderbooks[SYMBOL].limit()
        if resolved:
            self.resolved.add(id(self.exchange.orderbooks[SYMBOL]))
        self.normalizer.poll(self.exchange)
        self.resolved.clear()


def _events(events: list[md.MarketEvent]) -> list[tuple[Any, ...]]:
    out = []
    for event in events:
        kind = event.WhichOneof("payload") or ""
        book = getattr(event, kind)
        out.append(
            (
                kind,
                event.ts_event_ns,
                [(lv.price, lv.size) for lv in book.bids],
                [(lv.price, lv.size) for lv in book.asks],
            )
        )
    return out


def _random_levels(rng: random.Random, bid: bool) -> list[list[str]]:
    levels = []
    for _ in range(rng.randrange(0, 4)):
        price = 100.0 - rng.randrange(1, 30) * 0.25 if bid else 100.0 + rng.randrange(1, 30) * 0.25
        size = rng.choice([0.0, 0.0, 0.5, 1.25, 3.0])
        levels.append([_text(price, rng), _text(size, rng)])
    return levels


@settings(max_examples=40, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.sampled_from([6, 12, 1000]))
def test_a_wire_book_sends_what_the_normalizer_sent_from_ccxts_book(seed: int, depth: int) -> None:
    rng = random.Random(seed)
    bids = sorted({100.0 - rng.randrange(1, 30) * 0.25 for _ in range(rng.randrange(0, 14))}, reverse=True)
    asks = sorted({100.0 + rng.randrange(1, 30) * 0.25 for _ in range(rng.randrange(0, 14))})
    snapshot = {
        "bids": [[p, rng.choice([0.5, 2.0])] for p in bids][:depth],
        "asks": [[p, rng.choice([0.5, 2.0])] for p in asks][:depth],
        "nonce": 1,
        "timestamp": 5,
    }
    today = Ccxt(snapshot, depth)
    feed, sink = new_feed()
    wire = WireBook(feed, SYMBOL)
    wire.reset(snapshot, depth)
    wire.publish_snapshot(5 * 1_000_000)
    assert _events(taken(feed, sink)) == _events(taken(today.feed, today.sink))
    for step in range(300):
        update_bids, update_asks = _random_levels(rng, True), _random_levels(rng, False)
        ms = 10 + step
        today.update(update_bids, update_asks, ms)
        wire.publish_delta(ms * 1_000_000, *wire.apply(update_bids, update_asks))
        assert _events(taken(feed, sink)) == _events(taken(today.feed, today.sink)), step


def _diff(first: int, last: int, bid: str = "1.0", size: str = "1") -> dict[str, Any]:
    return {"e": "depthUpdate", "E": last, "s": "XY", "U": first, "u": last, "b": [[bid, size]], "a": []}


class Failures:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, str]] = []

    def __call__(self, client: Any, reason: str) -> None:
        self.calls.append((client, reason))


def _sync() -> tuple[DepthSync, MarketFeed, Sink, Failures]:
    feed, sink = new_feed()
    failures = Failures()
    return DepthSync(WireBook(feed, SYMBOL), failures), feed, sink, failures


def test_diffs_wait_for_the_snapshot_and_those_after_it_are_unrolled_into_it() -> None:
    sync, feed, sink, failures = _sync()
    client = object()
    sync.update(_diff(5, 8, "1.0", "1"), client)  # before the snapshot's id: dropped at the snapshot
    sync.update(_diff(9, 11, "2.0", "2"), client)  # spans 10 = lastUpdateId + 1: the first applied
    sync.update(_diff(12, 12, "3.0", "3"), client)
    assert taken(feed, sink) == []
    sync.snapshot({"bids": [[0.5, 4.0]], "asks": [], "nonce": 9}, None)
    events = taken(feed, sink)
    assert [e.WhichOneof("payload") for e in events] == ["book_snapshot"]
    assert [(lv.price, lv.size) for lv in events[0].book_snapshot.bids] == [
        ("3", "3"),
        ("2", "2"),
        ("0.5", "4"),
    ]
    assert events[0].ts_event_ns == 12 * 1_000_000
    assert sync.update(_diff(13, 13, "3.0", "0"), client)  # the next in line
    assert sync.update(_diff(10, 13), client) is False  # already applied: dropped
    (delta,) = taken(feed, sink)
    assert [(lv.price, lv.size) for lv in delta.book_delta.bids] == [("3", "0")]
    assert failures.calls == []


def test_a_gap_fails_ccxts_watch_and_the_next_snapshot_is_a_resync() -> None:
    sync, feed, sink, failures = _sync()
    client = object()
    sync.snapshot({"bids": [], "asks": [], "nonce": 100}, None)
    assert sync.update(_diff(101, 101), client)
    assert sync.update(_diff(103, 104), client) is False  # 102 is missing
    assert failures.calls == [(client, "update ids 103-104 do not follow 101")]
    sync.update(_diff(105, 105), client)  # buffered: the book waits for its new snapshot
    taken(feed, sink)
    sync.snapshot({"bids": [[7.0, 1.0]], "asks": [], "nonce": 104}, None)
    events = taken(feed, sink)
    assert [e.WhichOneof("payload") for e in events] == ["notice", "book_snapshot"]
    assert events[0].notice.kind == md.NOTICE_KIND_RESYNC
    assert [(lv.price, lv.size) for lv in events[1].book_snapshot.bids] == [("7", "1"), ("1", "1")]
    assert feed.stats(SYMBOL, Channel.BOOK).resyncs == 1


def test_the_first_diff_after_a_snapshot_must_reach_it() -> None:
    sync, _, _, failures = _sync()
    sync.snapshot({"bids": [], "asks": [], "nonce": 100}, None)
    sync.update(_diff(103, 105), "client")  # lastUpdateId + 1 = 101 is not in it
    assert failures.calls and sync.nonce is None


class FakeClient:
    def __init__(self) -> None:
        self.subscriptions: dict[str, Any] = {"orderbook::X/Y": {}}
        self.rejected: list[tuple[Exception, str]] = []

    def reject(self, error: Exception, message_hash: str) -> None:
        self.rejected.append((error, message_hash))


def _binance() -> tuple[BinanceWire, MarketFeed, Sink, Any]:
    feed, sink = new_feed()
    exchange = type("Exchange", (), {"orderbooks": {SYMBOL: object()}, "clients": {}})()
    wire = BinanceWire(feed, exchange, {"XY": SYMBOL}, (Timeframe.M1,))
    for channel in Channel:
        wire.open(StreamKey(SYMBOL, channel))
    return wire, feed, sink, exchange


def test_a_gap_drops_ccxts_book_and_subscription_as_its_handler_does() -> None:
    wire, _, _, exchange = _binance()
    client = FakeClient()
    wire.rest_book(SYMBOL, {"bids": [], "asks": [], "nonce": 1}, 1000)
    assert wire.handle(client, {"stream": "xy@depth", "data": _diff(2, 2)}) is True
    assert wire.handle(client, _diff(4, 4)) is False
    assert SYMBOL not in exchange.orderbooks and client.subscriptions == {}
    ((error, message_hash),) = client.rejected
    assert isinstance(error, ccxt.ChecksumError) and message_hash == "orderbook::X/Y"


def test_tickers_trades_and_klines_become_events() -> None:
    wire, feed, sink, _ = _binance()
    ticker = {"u": 1, "s": "XY", "b": "0.35210000", "B": "672.00000000", "a": "0.00000000", "A": "1.0"}
    trade = {"e": "aggTrade", "s": "XY", "a": 12, "p": "0.0010", "q": "100", "T": 7, "m": True}
    kline: dict[str, Any] = {
        "e": "kline",
        "s": "XY",
        "k": {"t": 60_000, "i": "1m", "o": "1.0", "h": "2", "l": "0.5", "c": "1.5", "v": "3"},
    }
    assert wire.handle(None, ticker) and wire.handle(None, trade) and wire.handle(None, kline)
    assert wire.handle(None, trade) is False  # the same trade id again: not sent twice
    assert wire.handle(None, {"e": "aggTrade", "s": "ZZ", "a": 1}) is None  # not a stream of ours: ccxt's
    assert wire.handle(None, {"result": None, "id": 3}) is None
    later = {**kline, "k": {**kline["k"], "t": 120_000}}
    assert wire.handle(None, later)
    events = taken(feed, sink)
    by_kind: dict[str, list[md.MarketEvent]] = {}
    for event in events:
        by_kind.setdefault(event.WhichOneof("payload") or "", []).append(event)
    (t,) = by_kind["ticker"]
    assert (t.ticker.best_bid, t.ticker.best_bid_size, t.ticker.best_ask, t.ticker.best_ask_size) == (
        "0.3521",
        "672",
        "",
        "",
    )
    (tr,) = by_kind["trade"]
    assert (tr.trade.trade_id, tr.trade.price, tr.trade.size, tr.ts_event_ns) == (
        "12",
        "0.001",
        "100",
        7_000_000,
    )
    assert tr.trade.taker_side == common.SIDE_SELL  # the buyer was the maker
    candles = by_kind["candle"]
    assert (candles[0].candle.open, candles[0].candle.high, candles[0].candle.volume) == ("1", "2", "3")
    assert [(c.candle.open_time_ns, c.candle.closed) for c in candles] == [
        (60_000_000_000, False),
        (60_000_000_000, True),
        (120_000_000_000, False),
    ]
    assert feed.stats(SYMBOL, Channel.TRADES).duplicate_trades == 1


def test_a_book_stream_closed_and_opened_again_starts_from_a_new_snapshot() -> None:
    """ccxt keeps the closed stream's subscription: dropped, so the next watch subscribes (and
    fetches a snapshot) again; until that snapshot the new book sends nothing."""
    wire, feed, sink, exchange = _binance()
    client = FakeClient()
    exchange.clients = {"wss://stream": client}
    wire.rest_book(SYMBOL, {"bids": [], "asks": [], "nonce": 1}, 1000)
    wire.close(StreamKey(SYMBOL, Channel.BOOK))
    assert client.subscriptions == {} and SYMBOL not in exchange.orderbooks
    assert wire.handle(client, _diff(2, 2)) is None  # no book stream: ccxt's (which drops it)
    wire.open(StreamKey(SYMBOL, Channel.BOOK))
    taken(feed, sink)
    assert wire.handle(client, _diff(3, 3)) is False  # buffered until the new snapshot
    wire.rest_book(SYMBOL, {"bids": [], "asks": [], "nonce": 2}, 1000)
    (snapshot,) = taken(feed, sink)
    assert [(lv.price, lv.size) for lv in snapshot.book_snapshot.bids] == [("1", "1")]
