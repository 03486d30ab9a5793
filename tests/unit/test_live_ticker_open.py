"""The live venues' 24h open (Ticker.open_24h): each exchange's ticker as ccxt parses it, through
the stream's normalizer and GetTickers' conversion; empty where the venue states no price 24 h
ago (Kraken's REST `o` is today's open, Coinbase states a percentage, Deribit neither)."""

from __future__ import annotations

from typing import Any

import ccxt
import ccxt.pro
import pytest

from tests.feed_support import Sink
from trademesh.venues.binance.spec import SPEC as BINANCE
from trademesh.venues.binanceusdm.spec import SPEC as BINANCE_USDM
from trademesh.venues.bybit.spec import SPEC as BYBIT
from trademesh.venues.coinbase.spec import SPEC as COINBASE
from trademesh.venues.deribit.spec import SPEC as DERIBIT
from trademesh.venues.kraken.spec import SPEC as KRAKEN
from trademesh.venues.kraken.wire import _open_24h
from trademesh.venues.live.normalize import TickerNormalizer, ticker_of
from trademesh.venues.live.spec import LiveSpec
from trademesh.venues.okx.spec import SPEC as OKX
from trademesh.venues.okx_swap.spec import SPEC as OKX_SWAP
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.stats import StreamTable

# Each exchange's own ticker (the fields that matter), as its REST ticker or stream states it.
SHAPES: list[tuple[LiveSpec, Any, dict[str, Any], str]] = [
    (
        BINANCE,
        ccxt.binance(),
        {"symbol": "BTCUSDT", "openPrice": "64000.10000000", "lastPrice": "65000.50000000", "closeTime": 1},
        "64000.1",
    ),
    (
        BYBIT,
        ccxt.bybit(),
        {"symbol": "BTCUSDT", "lastPrice": "65000.5", "prevPrice24h": "64000.1"},
        "64000.1",
    ),
    (
        OKX,
        ccxt.okx(),
        {"instType": "SPOT", "instId": "BTC-USDT", "last": "65000.5", "open24h": "64000.1"},
        "64000.1",
    ),
    (
        OKX_SWAP,
        ccxt.okx(),
        {"instType": "SWAP", "instId": "BTC-USDT-SWAP", "last": "65000.5", "open24h": "64000.1"},
        "64000.1",
    ),
    # ccxt divides the last price by 1 + the percentage: not a price Coinbase states.
    (
        COINBASE,
        ccxt.coinbase(),
        {"product_id": "BTC-USD", "price": "65000.5", "price_percentage_change_24h": "1.5"},
        "",
    ),
    # Kraken's REST `o` is today's opening price (since 00:00 UTC), not the price 24 h ago.
    (
        KRAKEN,
        ccxt.kraken(),
        {"a": ["1", "1", "1"], "b": ["1", "1", "1"], "c": ["65000.5", "1"], "o": "64000.1"},
        "",
    ),
    (DERIBIT, ccxt.deribit(), {"instrument_name": "BTC-PERPETUAL", "last_price": 65000.5, "stats": {}}, ""),
]


@pytest.mark.parametrize(("spec", "exchange", "raw", "open_24h"), SHAPES, ids=[s[0].name for s in SHAPES])
def test_get_tickers_states_the_24h_open_where_the_venue_does(
    spec: LiveSpec, exchange: Any, raw: dict[str, Any], open_24h: str
) -> None:
    parsed = exchange.parse_ticker(raw)
    assert ticker_of(parsed, spec.tickers_open).open_24h == open_24h


STREAM_SHAPES = [shape for shape in SHAPES if shape[0] is not KRAKEN]  # Kraken's stream: its wire


@pytest.mark.parametrize(
    ("spec", "exchange", "raw", "open_24h"), STREAM_SHAPES, ids=[s[0].name for s in STREAM_SHAPES]
)
def test_the_stream_states_the_24h_open_where_the_venue_does(
    spec: LiveSpec, exchange: Any, raw: dict[str, Any], open_24h: str
) -> None:
    sink, exchange_state = Sink(), _Caches()
    feed = MarketFeed("test", StreamTable())
    feed.attach(sink)  # type: ignore[arg-type]
    exchange_state.tickers["X/Y"] = exchange.parse_ticker(raw)
    TickerNormalizer(feed, "X/Y", "tickers", open_24h=spec.ticker_open).poll(exchange_state)
    feed.flush()
    assert [e.ticker.open_24h for e in sink.events] == [open_24h if spec.ticker_open else ""]
    if spec is BINANCE:
        assert not spec.ticker_open, "Binance spot's ticker stream is bookTicker's: no 24h figures"


def test_binance_usdm_takes_the_24h_open_from_its_24hr_ticker_beside_the_book_ticker() -> None:
    """Binance USD-M: bookTicker (bidsasks) states no open; the 24hrTicker stream's `o` is it."""
    sink, caches = Sink(), _Caches()
    feed = MarketFeed("test", StreamTable())
    feed.attach(sink)  # type: ignore[arg-type]
    normalizer = TickerNormalizer(feed, "BTC/USDT:USDT", "bidsasks", "tickers", BINANCE_USDM.ticker_open)
    caches.bidsasks["BTC/USDT:USDT"] = {
        "timestamp": 5,
        "bid": 1.5,
        "bidVolume": 2.0,
        "ask": 1.6,
        "askVolume": 3.0,
    }
    normalizer.poll(caches)
    frame = {"e": "24hrTicker", "E": 7, "s": "BTCUSDT", "o": "64000.10", "c": "65000.5", "v": "1", "q": "2"}
    caches.tickers["BTC/USDT:USDT"] = ccxt.pro.binanceusdm().parse_ws_ticker(frame, "future")
    normalizer.poll(caches)
    feed.flush()
    assert [e.ticker.open_24h for e in sink.events] == ["", "64000.1"]


def test_a_24h_open_that_is_no_price_is_left_empty() -> None:
    for value in (0, -1.0, float("nan"), float("inf"), None, "x"):
        assert ticker_of({"last": 1.0, "open": value}, True).open_24h == ""
    assert ticker_of({"last": 1.0, "open": 0.35130000}, True).open_24h == "0.3513"


def test_krakens_stream_states_the_24h_open_as_its_last_price_less_its_24h_change() -> None:
    assert _open_24h({"last": 65000.5, "change": 1000.4}) == "64000.1"
    assert _open_24h({"last": 64000.1, "change": -1000.4}) == "65000.5"
    assert _open_24h({"last": 65000.5}) == ""
    assert _open_24h({"last": 1.0, "change": 1.0}) == "", "no price"
    assert KRAKEN.ticker_open and not KRAKEN.tickers_open


class _Caches:
    def __init__(self) -> None:
        self.tickers: dict[str, Any] = {}
        self.bidsasks: dict[str, Any] = {}
