"""The live connector's normalizers against ccxt's own cache classes: exactly once, exact numbers."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from ccxt.async_support.base.ws.cache import ArrayCache, ArrayCacheByTimestamp
from ccxt.async_support.base.ws.order_book import OrderBook

from tests.feed_support import Sink
from trademesh.core.domain.model import Channel, StreamKey, Timeframe
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.live.normalize import (
    BookNormalizer,
    CandleNormalizer,
    FundingNormalizer,
    TickerNormalizer,
    TradeNormalizer,
    decimal_text,
)
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.stats import StreamTable


class FakeExchange:
    """The attributes of a ccxt.pro exchange the normalizers read (ccxt's real cache classes)."""

    def __init__(self) -> None:
        self.trades: dict[str, Any] = {}
        self.orderbooks: dict[str, Any] = {}
        self.tickers: dict[str, Any] = {}
        self.ohlcvs: dict[str, Any] = {}
        self.bidsasks: dict[str, Any] = {}
        self.fundingRates: dict[str, Any] = {}


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def feed(sink: Sink) -> MarketFeed:
    feed = MarketFeed("test", StreamTable())
    feed.attach(sink)  # type: ignore[arg-type]
    return feed


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.3513, "0.3513"),
        (1e-05, "0.00001"),
        (65000.1, "65000.1"),
        (6195.0, "6195"),
        ("0.35130000", "0.3513"),
        (100, "100"),
        (None, ""),
    ],
)
def test_numbers_come_out_as_the_venue_wrote_them(value: Any, text: str) -> None:
    assert decimal_text(value) == text


def trade(i: int) -> dict[str, Any]:
    return {"id": str(i), "timestamp": 1_000 + i, "price": 100.5 + i, "amount": 0.001, "side": "sell"}


def test_each_trade_comes_out_once_in_order(feed: MarketFeed, sink: Sink) -> None:
    exchange, normalizer = FakeExchange(), TradeNormalizer(feed, "X/Y")
    ring = exchange.trades["X/Y"] = ArrayCache(100)
    for batch in ([0, 1], [], [2], [3, 4, 5]):
        for i in batch:
            ring.append(trade(i))
        normalizer.poll(exchange)
        feed.flush()
    assert [e.trade.trade_id for e in sink.events] == ["0", "1", "2", "3", "4", "5"]
    assert sink.events[2].trade.price == "102.5" and sink.events[2].trade.size == "0.001"
    assert sink.events[2].ts_event_ns == 1_002_000_000


def test_trades_that_fell_out_of_ccxts_ring_are_announced_as_a_gap(feed: MarketFeed, sink: Sink) -> None:
    exchange, normalizer = FakeExchange(), TradeNormalizer(feed, "X/Y")
    ring = exchange.trades["X/Y"] = ArrayCache(3)
    ring.append(trade(0))
    normalizer.poll(exchange)
    for i in range(1, 8):  # seven trades between two reads, the ring holds three
        ring.append(trade(i))
    normalizer.poll(exchange)
    feed.flush()
    assert sink.kinds() == ["trade", "notice", "trade", "trade", "trade"]
    assert [e.trade.trade_id for e in sink.events if e.HasField("trade")] == ["0", "5", "6", "7"]


def test_the_book_goes_out_as_a_snapshot_then_exact_deltas(feed: MarketFeed, sink: Sink) -> None:
    exchange, normalizer = FakeExchange(), BookNormalizer(feed, "X/Y")
    book = exchange.orderbooks["X/Y"] = OrderBook({"bids": [[10.0, 1.0], [9.5, 2.0]], "asks": [[11.0, 1.0]]})
    book["nonce"] = 1
    normalizer.poll(exchange)
    book["bids"].store(9.5, 0.0)  # removed
    book["asks"].store(11.5, 4.25)  # added
    book["nonce"] = 2
    normalizer.poll(exchange)
    normalizer.poll(exchange)  # nothing changed: nothing sent
    feed.flush()
    assert sink.kinds() == ["book_snapshot", "book_delta"]
    delta = sink.events[1].book_delta
    assert [(lv.price, lv.size) for lv in delta.bids] == [("9.5", "0")]
    assert [(lv.price, lv.size) for lv in delta.asks] == [("11.5", "4.25")]
    assert delta.sequence == sink.events[0].book_snapshot.sequence + 1


def test_a_resync_sends_a_notice_and_a_fresh_snapshot(feed: MarketFeed, sink: Sink) -> None:
    exchange, normalizer = FakeExchange(), BookNormalizer(feed, "X/Y")
    exchange.orderbooks["X/Y"] = OrderBook({"bids": [[10.0, 1.0]], "asks": [[11.0, 1.0]]})
    normalizer.poll(exchange)
    normalizer.resync("sequence gap")
    exchange.orderbooks["X/Y"] = OrderBook({"bids": [[10.5, 1.0]], "asks": [[11.0, 2.0]]})
    normalizer.poll(exchange)
    feed.flush()
    assert sink.kinds() == ["book_snapshot", "notice", "book_snapshot"]
    assert sink.events[1].notice.kind == md.NOTICE_KIND_RESYNC
    assert feed.stats("X/Y", Channel.BOOK).resyncs == 1


def test_a_ticker_goes_out_when_ccxt_replaces_it(feed: MarketFeed, sink: Sink) -> None:
    exchange, normalizer = FakeExchange(), TickerNormalizer(feed, "X/Y", "tickers")
    exchange.tickers["X/Y"] = {
        "timestamp": 5,
        "bid": 1.5,
        "bidVolume": 2.0,
        "ask": 1.6,
        "askVolume": 3.0,
        "last": None,
    }
    normalizer.poll(exchange)
    normalizer.poll(exchange)
    feed.flush()
    assert len(sink.events) == 1
    ticker = sink.events[0].ticker
    assert (
        ticker.best_bid,
        ticker.best_bid_size,
        ticker.best_ask,
        ticker.best_ask_size,
        ticker.last_price,
    ) == ("1.5", "2", "1.6", "3", "")


def test_a_ticker_states_the_24h_volume_where_ccxts_ticker_has_it(feed: MarketFeed, sink: Sink) -> None:
    exchange, normalizer = FakeExchange(), TickerNormalizer(feed, "X/Y", "tickers")
    exchange.tickers["X/Y"] = {
        "timestamp": 5,
        "bid": 1.5,
        "ask": 1.6,
        "baseVolume": 2158.3,
        "quoteVolume": "755.405",
    }
    normalizer.poll(exchange)
    exchange.tickers["X/Y"] = {
        "timestamp": 6,
        "bid": 1.5,
        "ask": 1.6,
        "baseVolume": -1.0,
        "quoteVolume": float("nan"),
    }
    normalizer.poll(exchange)
    feed.flush()
    volumes = [(e.ticker.base_volume_24h, e.ticker.quote_volume_24h) for e in sink.events]
    assert volumes == [("2158.3", "755.405"), ("", "")], "no volume is better than a wrong one"


def test_a_ticker_of_best_bid_and_ask_takes_its_volume_from_the_24h_stream_beside(
    feed: MarketFeed, sink: Sink
) -> None:
    """Binance USD-M: bookTicker (ccxt's bidsasks) has no volume, its 24hrTicker (tickers) no best
    bid and ask; a ticker goes out when either changes, holding the latest of each."""
    exchange = FakeExchange()
    normalizer = TickerNormalizer(feed, "X/Y:Y", "bidsasks", stats_cache="tickers")
    assert not normalizer.poll(exchange)
    exchange.bidsasks["X/Y:Y"] = {"timestamp": 5, "bid": 1.5, "bidVolume": 2.0, "ask": 1.6, "askVolume": 3.0}
    normalizer.poll(exchange)
    exchange.tickers["X/Y:Y"] = {"timestamp": 7, "last": 1.55, "baseVolume": "100", "quoteVolume": "155.5"}
    normalizer.poll(exchange)
    assert not normalizer.poll(exchange), "nothing new"
    exchange.bidsasks["X/Y:Y"] = {"timestamp": 8, "bid": 1.51, "bidVolume": 1.0, "ask": 1.6, "askVolume": 3.0}
    normalizer.poll(exchange)
    feed.flush()
    rows = [
        (e.ts_event_ns // 1_000_000, e.ticker.best_bid, e.ticker.last_price, e.ticker.quote_volume_24h)
        for e in sink.events
    ]
    assert rows == [(5, "1.5", "", ""), (7, "1.5", "1.55", "155.5"), (8, "1.51", "1.55", "155.5")]


def test_a_funding_rate_goes_out_when_ccxt_replaces_it(feed: MarketFeed, sink: Sink) -> None:
    exchange, normalizer = FakeExchange(), FundingNormalizer(feed, "X/Y:Y")
    exchange.fundingRates["X/Y:Y"] = {
        "timestamp": 1700724675402, "fundingRate": 0.0001875391284828, "fundingTimestamp": 1700726400000,
        "markPrice": "36215.5", "indexPrice": None,
    }  # fmt: skip
    normalizer.poll(exchange)
    normalizer.poll(exchange)
    exchange.fundingRates["X/Y:Y"] = {"timestamp": 1700724675500, "fundingRate": None}  # no rate: nothing
    normalizer.poll(exchange)
    exchange.fundingRates["X/Y:Y"] = {"timestamp": 1700724676000, "fundingRate": "-0.00001"}
    normalizer.poll(exchange)
    feed.flush()
    assert [(e.ts_event_ns, e.funding_rate) for e in sink.events] == [
        (
            1700724675402 * 10**6,
            md.FundingRate(
                rate="0.0001875391284828", next_funding_ns=1700726400000 * 10**6, mark_price="36215.5"
            ),
        ),
        (1700724676000 * 10**6, md.FundingRate(rate="-0.00001")),  # no funding time said: 0
    ]
    assert feed.streams.get(StreamKey("X/Y:Y", Channel.FUNDING)).events_total == 2


def test_every_candle_update_goes_out_and_a_candle_closes_when_the_next_opens(
    feed: MarketFeed, sink: Sink
) -> None:
    exchange, normalizer = FakeExchange(), CandleNormalizer(feed, "X/Y", Timeframe.M1, "1m")
    rows = exchange.ohlcvs["X/Y"] = {"1m": ArrayCacheByTimestamp(100)}
    cache = rows["1m"]
    for row in (
        [60_000, 1.0, 1.0, 1.0, 1.0, 1.0],
        [60_000, 1.0, 2.0, 1.0, 2.0, 3.0],
        [120_000, 2.0, 2.0, 2.0, 2.0, 0.5],
    ):
        cache.append(list(row))  # ccxt updates the open candle's row in place
        normalizer.poll(exchange)
    normalizer.poll(exchange)
    feed.flush()
    candles = [
        (e.candle.open_time_ns // 10**6, Decimal(e.candle.close), e.candle.closed) for e in sink.events
    ]
    one, two = Decimal(1), Decimal(2)
    assert candles == [(60_000, one, False), (60_000, two, False), (60_000, two, True), (120_000, two, False)]
