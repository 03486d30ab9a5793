"""Kraken's market data from the wire (trademesh/venues/kraken/wire.py on trademesh/venues/live/wire.py, issue
17).

The path it replaces runs here as it runs in the venue: ccxt.pro kraken's own handlers (our
KrakenExchange, its book tracked, checksums on) on the same v2 frames, parsed by orjson as
ccxt's client parses them, read by the normalizers. The frames' checksums are the stand-in's
(trademesh/venues/kraken/standin/adapter.py's KrakenBook, written apart from both).

- the tap's book events equal the normalizer's over ccxt's book on random updates (trims to
  the depth, sizes of 0, the venue's own digits), and on a snapshot on a live book (a delta);
- every checksum is verified: a wrong one fails ccxt's watch as its handler does (its
  subscription dropped, ChecksumError on the book's hash), nothing goes out until the next
  snapshot, and that snapshot is a resync;
- tickers, trades and candles are the events the normalizers made of ccxt's caches.
"""

from __future__ import annotations

import contextlib
import random
from typing import Any

import ccxt
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.feed_support import new_feed, taken
from trademesh.core.domain.model import Channel, StreamKey, Timeframe
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.kraken.exchange import KrakenExchange
from trademesh.venues.kraken.spec import SPEC
from trademesh.venues.kraken.standin.adapter import KrakenBook
from trademesh.venues.kraken.wire import KrakenWire, checksum, iso_ms
from trademesh.venues.live.normalize import (
    BookNormalizer,
    CandleNormalizer,
    TickerNormalizer,
    TradeNormalizer,
)
from trademesh.venues.live.tracked_book import TrackedBooks

SYMBOL = "X/Y"  # ccxt's symbol, the frames' (v2), and ours
DECIMALS = (2, 8)  # the pair's price and size decimals
MARKET = {
    "id": "XXY",
    "symbol": SYMBOL,
    "base": "X",
    "quote": "Y",
    "baseId": "X",
    "quoteId": "Y",
    "spot": True,
    "type": "spot",
    "active": True,
    "precision": {"price": 0.01, "amount": 1e-08},
    "limits": {},
    "info": {"wsname": "X/Y", "altname": "XY", "pair_decimals": 2, "lot_decimals": 8},
}


class Client:
    """ccxt's client as the handlers use it: subscriptions, resolve, reject."""

    def __init__(self, depth: int) -> None:
        self.subscriptions: dict[str, Any] = {"orderbook@" + SYMBOL: {"limit": depth}}
        self.resolved: set[int] = set()
        self.rejected: list[tuple[Exception, str]] = []

    def resolve(self, result: Any, message_hash: str) -> None:
        self.resolved.add(id(result))

    def reject(self, error: Exception, message_hash: str) -> None:
        self.rejected.append((error, message_hash))


class Tracked(TrackedBooks, KrakenExchange):
    """ccxt.pro kraken as the venue builds it (its books keep a change log)."""


def _exchange() -> Any:
    exchange = Tracked({"options": {"watchOrderBook": {"checksum": True}}})
    exchange.set_markets([dict(MARKET)])
    return exchange


class Today:
    """ccxt's handlers and the normalizers, as without a tap."""

    def __init__(self, depth: int) -> None:
        self.feed, self.sink = new_feed()
        self.exchange = _exchange()
        self.client = Client(depth)
        self.book = BookNormalizer(self.feed, SYMBOL, self.client.resolved)
        self.others: list[TickerNormalizer | TradeNormalizer | CandleNormalizer] = [
            TickerNormalizer(self.feed, SYMBOL, "tickers", open_24h=SPEC.ticker_open),
            TradeNormalizer(self.feed, SYMBOL),
            CandleNormalizer(self.feed, SYMBOL, Timeframe.M1, "1m"),
        ]

    def handle(self, frame: bytes) -> list[md.MarketEvent]:
        self.client.resolved.clear()
        # an update after a mismatch raises KeyError: ccxt dropped its book (the venue logs it)
        with contextlib.suppress(KeyError):
            self.exchange.handle_message(self.client, orjson.loads(frame))
        self.book.poll(self.exchange)
        for normalizer in self.others:
            normalizer.poll(self.exchange)
        return taken(self.feed, self.sink)


class Tapped:
    """The wire tap on the same frames."""

    def __init__(self, depth: int) -> None:
        self.feed, self.sink = new_feed()
        self.exchange = _exchange()
        self.client = Client(depth)
        self.wire = KrakenWire(self.feed, self.exchange, {"X/Y": SYMBOL}, (Timeframe.M1,))
        self.opened = {channel: self.wire.open(StreamKey(SYMBOL, channel)) for channel in Channel}

    def handle(self, frame: bytes) -> list[md.MarketEvent]:
        assert self.wire.handle(self.client, orjson.loads(frame)) is not None
        return taken(self.feed, self.sink)


def _book_frame(kind: str, bids: list[list[str]], asks: list[list[str]], crc: int, ms: int) -> bytes:
    def levels(side: list[list[str]]) -> str:
        return "[" + ",".join(f'{{"price":{p},"qty":{q}}}' for p, q in side) + "]"

    stamp = f"2026-11-25T00:00:{ms // 1000:02d}.{ms % 1000:03d}123Z"
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":"{SYMBOL}","bids":{levels(bids)},'
        f'"asks":{levels(asks)},"checksum":{crc},"timestamp":"{stamp}"}}]}}'
    ).encode()


def _price(rng: random.Random, bid: bool) -> str:
    ticks = rng.randrange(1, 60)
    return f"{100 - ticks * 0.25:.2f}" if bid else f"{100 + ticks * 0.25:.{rng.choice([1, 2])}f}"


def _random_side(rng: random.Random, book: dict[Any, Any], bid: bool) -> list[list[str]]:
    levels = []
    for _ in range(rng.randrange(0, 4)):
        gone = len(book) > 12 and rng.random() < 0.3  # ccxt's checksum needs 10 levels a side
        size = "0.00000000" if gone else rng.choice(["0.5", "1.25000000", "3", "0.00012"])
        levels.append([_price(rng, bid), size])
    return levels


def _snapshot(rng: random.Random, venue: KrakenBook, depth: int) -> bytes:
    venue.reset()
    venue.apply("bids", [[f"{100 - i * 0.25:.2f}", rng.choice(["0.5", "2"])] for i in range(1, 30)])
    venue.apply("asks", [[f"{100 + i * 0.25:.2f}", rng.choice(["0.5", "2.0"])] for i in range(1, 30)])
    bids = [list(level) for level in venue._sorted("bids")[:depth]]
    asks = [list(level) for level in venue._sorted("asks")[:depth]]
    return _book_frame("snapshot", bids, asks, venue.checksum(), 0)


def _events(events: list[md.MarketEvent], with_time: bool = True) -> list[tuple[Any, ...]]:
    out = []
    for event in events:
        kind = event.WhichOneof("payload") or ""
        payload = getattr(event, kind)
        if kind in ("book_snapshot", "book_delta"):
            levels: Any = (
                sorted((lv.price, lv.size) for lv in payload.bids),
                sorted((lv.price, lv.size) for lv in payload.asks),
            )
        else:
            levels = str(payload)
        out.append((kind, event.ts_event_ns if with_time and kind == "book_delta" else 0, levels))
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(min_value=0, max_value=2**32), st.sampled_from([14, 25, 1000]))
def test_the_taps_book_events_are_the_normalizers_over_ccxts_book(seed: int, depth: int) -> None:
    rng = random.Random(seed)
    today, tapped, venue = Today(depth), Tapped(depth), KrakenBook(depth, DECIMALS)
    frame = _snapshot(rng, venue, depth)
    first = tapped.handle(frame)
    assert _events(first, False) == _events(today.handle(frame), False)
    assert [e.WhichOneof("payload") for e in first] == ["book_snapshot"]
    for step in range(200):
        if step % 70 == 69:  # a snapshot on the live book: the changed levels as a delta
            frame = _snapshot(rng, venue, depth)
            assert _events(tapped.handle(frame), False) == _events(today.handle(frame), False), step
            continue
        bids, asks = _random_side(rng, venue.bids, True), _random_side(rng, venue.asks, False)
        crc = venue.checksum_after(asks, bids)
        venue.apply("bids", bids)
        venue.apply("asks", asks)
        frame = _book_frame("update", bids, asks, crc, 10 + step)
        assert _events(tapped.handle(frame)) == _events(today.handle(frame)), step
        assert checksum(tapped.wire.books[SYMBOL].book, DECIMALS) == crc
    assert tapped.client.rejected == [] == today.client.rejected


def test_a_wrong_checksum_fails_ccxts_watch_and_the_next_snapshot_is_a_resync() -> None:
    rng = random.Random(7)
    today, tapped, venue = Today(25), Tapped(25), KrakenBook(25, DECIMALS)
    frame = _snapshot(rng, venue, 25)
    for side in (today, tapped):
        side.handle(frame)
    wrong = _book_frame("update", [["99.50", "7"]], [], 12345, 20)  # the venue's book is not this
    later = _book_frame("update", [["99.25", "1"]], [], 1, 21)
    for side in (today, tapped):
        assert side.handle(wrong) == [] and side.handle(later) == []
        ((error, message_hash),) = side.client.rejected
        assert isinstance(error, ccxt.ChecksumError) and message_hash == "orderbook@" + SYMBOL
        assert "orderbook@" + SYMBOL not in side.client.subscriptions
        assert SYMBOL not in side.exchange.orderbooks
    # StreamWatcher catches the ChecksumError: the book resyncs; ccxt subscribes again
    reason = "venue book out of sync (ChecksumError): rebuilt from a new snapshot"
    today.book.resync(reason)
    sync = tapped.opened[Channel.BOOK][1]
    assert sync is not None
    sync.resync(reason)
    for side in (today, tapped):
        side.client.subscriptions["orderbook@" + SYMBOL] = {"limit": 25}
    frame = _snapshot(rng, venue, 25)
    resynced = tapped.handle(frame)
    assert _events(resynced, False) == _events(today.handle(frame), False)
    assert [e.WhichOneof("payload") for e in resynced] == ["notice", "book_snapshot"]
    assert resynced[0].notice.kind == md.NOTICE_KIND_RESYNC
    assert tapped.feed.stats(SYMBOL, Channel.BOOK).resyncs == 1


def test_a_book_stream_closed_and_opened_again_starts_from_the_followed_book() -> None:
    rng = random.Random(3)
    tapped, venue = Tapped(25), KrakenBook(25, DECIMALS)
    tapped.handle(_snapshot(rng, venue, 25))
    tapped.wire.close(StreamKey(SYMBOL, Channel.BOOK))
    crc = venue.checksum_after([], [["99.75", "4"]])
    venue.apply("bids", [["99.75", "4"]])
    assert tapped.handle(_book_frame("update", [["99.75", "4"]], [], crc, 5)) == []  # followed, not sent
    assert tapped.wire.open(StreamKey(SYMBOL, Channel.BOOK))[0]
    crc = venue.checksum_after([], [["99.50", "1"]])
    venue.apply("bids", [["99.50", "1"]])
    (snapshot,) = tapped.handle(_book_frame("update", [["99.50", "1"]], [], crc, 6))
    best = [(lv.price, lv.size) for lv in snapshot.book_snapshot.bids[:2]]
    assert best == [("99.75", "4"), ("99.5", "1")]


def test_tickers_trades_and_candles_are_the_normalizers_events() -> None:
    today, tapped = Today(10), Tapped(10)
    frames = [
        b'{"channel":"ticker","type":"snapshot","data":[{"symbol":"X/Y","bid":0.3521,"bid_qty":672.0,'
        b'"ask":0.3523,"ask_qty":1.50000000,"last":0.3522,"volume":2158.3,"vwap":0.35,"low":0.34,'
        b'"high":0.36,"change":-0.01,"change_pct":-2.41}]}',
        b'{"channel":"ticker","type":"update","data":[{"symbol":"X/Y","bid":0,"bid_qty":0,'
        b'"ask":108359,"ask_qty":1e-05,"last":108359,"volume":1,"vwap":1,"low":1,"high":1,'
        b'"change":0,"change_pct":0}]}',
        b'{"channel":"trade","type":"update","data":[{"symbol":"X/Y","side":"sell","price":0.5117,'
        b'"qty":40.0,"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"},'
        b'{"symbol":"X/Y","side":"buy","price":0.5118,"qty":0.00012,"ord_type":"limit",'
        b'"trade_id":4665907,"timestamp":"2023-09-25T07:49:37.709999Z"}]}',
        b'{"channel":"trade","type":"update","data":[{"symbol":"X/Y","side":"sell","price":0.5117,'
        b'"qty":40.0,"ord_type":"market","trade_id":4665906,"timestamp":"2023-09-25T07:49:37.708706Z"}]}',
        b'{"channel":"ohlc","type":"update","timestamp":"2023-10-04T16:26:30.524394914Z","data":[{'
        b'"symbol":"X/Y","open":0.5624,"high":0.5628,"low":0.5622,"close":0.5627,"trades":12,'
        b'"volume":30927.68066226,"vwap":0.5626,"interval_begin":"2023-10-04T16:25:00.000000000Z",'
        b'"interval":1,"timestamp":"2023-10-04T16:26:00.000000Z"}]}',
        b'{"channel":"ohlc","type":"update","timestamp":"2023-10-04T16:26:30.524394914Z","data":[{'
        b'"symbol":"X/Y","open":0.5627,"high":0.563,"low":0.5627,"close":0.563,"trades":2,'
        b'"volume":10,"vwap":0.5626,"interval_begin":"2023-10-04T16:26:00.000000000Z",'
        b'"interval":1,"timestamp":"2023-10-04T16:27:00.000000Z"}]}',
    ]
    for frame in frames:
        tap_events = tapped.handle(frame)
        assert _events(tap_events, False) == _events(today.handle(frame), False), frame
        assert all(e.WhichOneof("payload") != "trade" or e.ts_event_ns % 1_000_000 == 0 for e in tap_events)
    assert tapped.feed.stats(SYMBOL, Channel.TRADES).duplicate_trades == 1
    assert tapped.wire.handle(None, {"channel": "trade", "data": [{"symbol": "Z/Z"}]}) is None
    assert tapped.wire.handle(None, {"method": "subscribe", "success": True}) is None


@pytest.mark.parametrize(
    "text",
    [
        "2023-09-25T07:49:37.708706Z",
        "2023-10-04T16:25:00.000000000Z",
        "2021-04-17T16:49:02.5Z",
        "2021-04-17T16:49:02Z",
        "2021-04-17T16:49:02.557535+01:00",
    ],
)
def test_times_are_read_as_ccxt_reads_them(text: str) -> None:
    assert iso_ms(text, {}) == ccxt.Exchange.parse8601(text)
