"""The derivatives channels (issue 60): mark price, open interest and liquidations refused for spot
as funding is, streamed by the sim (mark) and read from ccxt's caches by the live connector,
exactly once, then turned into the recorder's rows."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any

import ccxt
import pytest
from ccxt.async_support.base.ws.cache import ArrayCache

from tests.feed_support import Sink
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import Channel, Instrument, InstrumentKind, Side, StreamKey
from trademesh.core.ingest.symbols import VenueSymbols
from trademesh.core.platform.bus.consumer import Entry
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.recorder.rows import rows_of
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.live.derivatives import (
    CacheStream,
    DerivativeStreams,
    LiquidationNormalizer,
    LiquidationStream,
    StateNormalizer,
    derivative_job,
)
from trademesh.venues.live.interest_poll import OpenInterestPoll
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.stats import StreamTable
from trademesh.venues.runtime.validate import channel_refused, stream_keys
from trademesh.venues.runtime.venue import VenueContext
from trademesh.venues.sim.config import SimConfig, SymbolConfig
from trademesh.venues.sim.venue import SimVenue

D = Decimal
PERP = SymbolConfig(symbol="BTC/USDT:USDT", start_price=D("65000"), tick_size=D("0.1"), lot_size=D("0.001"))
SPOT = SymbolConfig(symbol="ETH/USDT", start_price=D("3000"), tick_size=D("0.01"), lot_size=D("0.0001"))
DERIVATIVES = (Channel.MARK, Channel.OPEN_INTEREST, Channel.LIQUIDATIONS)


def _instrument(symbol: str, kind: InstrumentKind) -> Instrument:
    return Instrument("v", symbol, symbol, kind, symbol.split("/")[0], "USDT", "USDT", D("0.1"), D("0.001"))


@pytest.fixture
def sink() -> Sink:
    return Sink()


@pytest.fixture
def feed(sink: Sink) -> MarketFeed:
    feed = MarketFeed("test", StreamTable())
    feed.attach(sink)  # type: ignore[arg-type]
    return feed


# ---- refused for spot, as funding is


@pytest.mark.parametrize("channel", DERIVATIVES)
def test_a_derivatives_channel_is_refused_for_spot_and_open_to_every_derivative(channel: Channel) -> None:
    spot = _instrument("ETH/USDT", InstrumentKind.SPOT)
    assert (
        channel_refused(spot, channel)
        == f"ETH/USDT is spot: only a derivative has a {channel.value.replace('_', ' ')} stream"
    )
    for kind in (InstrumentKind.PERPETUAL, InstrumentKind.FUTURE, InstrumentKind.OPTION):
        assert channel_refused(_instrument("BTC/USD:BTC", kind), channel) is None
    assert channel_refused(_instrument("BTC/USD:BTC", InstrumentKind.FUTURE), Channel.FUNDING) is not None


def test_admin_add_subscriptions_names_the_spot_symbol_and_a_channel_the_venue_lacks() -> None:
    instruments = {
        "ETH/USDT": _instrument("ETH/USDT", InstrumentKind.SPOT),
        "BTC/USDT:USDT": _instrument("BTC/USDT:USDT", InstrumentKind.PERPETUAL),
    }
    asked = [
        admin.Subscription(symbol="ETH/USDT", channel=md.CHANNEL_MARK),
        admin.Subscription(symbol="BTC/USDT:USDT", channel=md.CHANNEL_LIQUIDATIONS),
    ]
    offered = frozenset(Channel) - {Channel.LIQUIDATIONS}
    with pytest.raises(InvalidArgument) as caught:
        stream_keys(asked, instruments, offered)
    fields = {v.field: v.description for v in caught.value.violations}
    assert "spot" in fields["subscriptions[0].channel"]
    assert fields["subscriptions[1].channel"] == "this venue has no liquidations channel"
    keys = stream_keys(asked[1:], instruments, frozenset(Channel))
    assert keys == [StreamKey("BTC/USDT:USDT", Channel.LIQUIDATIONS)]


def test_ingest_follows_the_derivatives_channels_on_the_derivatives_only() -> None:
    symbols = VenueSymbols(
        ["BTC/USDT:USDT", "BTC-FUT", "ETH/USDT"], ["BTC/USDT:USDT"], ["BTC/USDT:USDT", "BTC-FUT"]
    )
    assert symbols.of(Channel.FUNDING) == ["BTC/USDT:USDT"]
    for channel in DERIVATIVES:
        assert symbols.of(channel) == ["BTC/USDT:USDT", "BTC-FUT"]
    assert symbols.of(Channel.TRADES) == ["BTC/USDT:USDT", "BTC-FUT", "ETH/USDT"]


# ---- the sim's mark prices


def test_the_sim_streams_its_perpetuals_mark_price_when_it_changes(feed: MarketFeed, sink: Sink) -> None:
    venue = SimVenue(SimConfig(symbols=(PERP, SPOT)))
    streams = venue.default_streams()
    assert StreamKey(PERP.symbol, Channel.MARK) in streams
    assert StreamKey(SPOT.symbol, Channel.MARK) not in streams, "spot has no mark"
    assert not {key for key in streams if key.channel in (Channel.OPEN_INTEREST, Channel.LIQUIDATIONS)}
    assert Channel.LIQUIDATIONS not in venue.channels and Channel.MARK in venue.channels
    venue.publisher.attach(VenueContext(feed, lambda execution: None), streams)
    venue.market.prime()
    marks: list[md.MarketEvent] = []
    for step in range(40):
        venue.market.step()
        venue.publisher.publish_marks(1_000 + step)
        feed.flush()
        book = venue.exchange.book(PERP.symbol)
        bid, ask = book.best_bid(), book.best_ask()
        new = [e for e in sink.events if e.HasField("mark_price")][len(marks) :]
        marks += new
        if new:
            assert bid is not None and ask is not None
            assert D(new[-1].mark_price.mark_price) == D(bid + ask) / 2 * PERP.tick_size, "the book's mid"
            assert D(new[-1].mark_price.mark_price) == venue.exchange.mark(PERP.symbol), (
                "what it liquidates at"
            )
    assert marks and {e.symbol for e in marks} == {PERP.symbol}
    prices = [e.mark_price.mark_price for e in marks]
    assert all(a != b for a, b in itertools.pairwise(prices)), "only when it changed"
    assert all(e.mark_price.index_price == "" for e in marks), "the sim has no index"


# ---- the live connector: ccxt's caches read once


class FakeExchange:
    """The attributes of a ccxt.pro exchange the derivatives normalizers read."""

    def __init__(self) -> None:
        self.fundingRates: dict[str, Any] = {}
        self.liquidations: Any = None
        self.asked = 0

    async def watch_mark_price(self, symbol: str) -> None: ...

    async def fetch_open_interest(self, symbol: str) -> dict[str, Any]:
        self.asked += 1
        return {"symbol": symbol, "openInterestAmount": 10659.509 + self.asked, "timestamp": 1700000000000}


def _mark(entry: Any) -> tuple[int | None, md.MarkPrice] | None:
    info = entry["info"]
    return (info["E"], md.MarkPrice(mark_price=info["p"], index_price=info["i"])) if info.get("p") else None


def _liquidations(entry: Any) -> list[tuple[int | None, md.Liquidation]]:
    info = entry["info"]
    side = common.SIDE_BUY if info["S"] == "BUY" else common.SIDE_SELL
    return [(info["T"], md.Liquidation(side=side, price=info["ap"], size=info["z"]))]


def test_a_mark_price_goes_out_each_time_ccxt_replaces_it(feed: MarketFeed, sink: Sink) -> None:
    exchange = FakeExchange()
    normalizer = StateNormalizer(feed, StreamKey("X/Y:Y", Channel.MARK), "fundingRates", _mark)
    assert not normalizer.poll(exchange)
    exchange.fundingRates["X/Y:Y"] = {"info": {"E": 1700000000001, "p": "36215.50000000", "i": "36210.1"}}
    assert normalizer.poll(exchange)
    assert not normalizer.poll(exchange), "the same object: nothing new"
    exchange.fundingRates["X/Y:Y"] = {"info": {"E": 1700000000002, "p": ""}}  # no mark: nothing
    assert not normalizer.poll(exchange)
    feed.flush()
    assert [(e.ts_event_ns, e.mark_price) for e in sink.events] == [
        (1700000000001 * 10**6, md.MarkPrice(mark_price="36215.50000000", index_price="36210.1"))
    ]


def test_liquidations_are_read_from_ccxts_ring_once_each_and_of_their_symbol(
    feed: MarketFeed, sink: Sink
) -> None:
    exchange = FakeExchange()
    normalizer = LiquidationNormalizer(feed, "BTC/USDT:USDT", _liquidations)
    assert not normalizer.poll(exchange)
    ring = exchange.liquidations = ArrayCache(3)

    def add(symbol: str, ms: int, side: str) -> None:
        ring.append({"symbol": symbol, "info": {"T": ms, "S": side, "ap": "35000.5", "z": "0.010"}})

    add("BTC/USDT:USDT", 1, "SELL")
    add("ETH/USDT:USDT", 2, "BUY")
    assert normalizer.poll(exchange)
    assert not normalizer.poll(exchange), "each once"
    add("BTC/USDT:USDT", 3, "BUY")
    assert normalizer.poll(exchange)
    for ms in (4, 5, 6, 7):  # more than the ring holds before the next read
        add("BTC/USDT:USDT", ms, "SELL")
    assert normalizer.poll(exchange)
    feed.flush()
    seen = [
        (e.ts_event_ns // 10**6, e.liquidation.side) if e.HasField("liquidation") else e.notice.kind
        for e in sink.events
    ]
    assert seen == [
        (1, common.SIDE_SELL),
        (3, common.SIDE_BUY),
        md.NOTICE_KIND_GAP,  # the last one read fell out of the ring: some may be missing
        (5, common.SIDE_SELL),
        (6, common.SIDE_SELL),
        (7, common.SIDE_SELL),
    ]
    assert sink.events[0].liquidation == md.Liquidation(side=common.SIDE_SELL, price="35000.5", size="0.010")
    reopened = LiquidationNormalizer(feed, "BTC/USDT:USDT", _liquidations, ring)
    assert not reopened.poll(exchange), "what the ring held when the stream opened came before it"
    add("BTC/USDT:USDT", 8, "BUY")
    assert reopened.poll(exchange)
    feed.flush()
    assert sink.events[-1].ts_event_ns // 10**6 == 8


def test_open_interest_is_polled_where_the_venue_streams_none_and_admin_says_so(
    feed: MarketFeed, sink: Sink
) -> None:
    exchange = FakeExchange()
    key = StreamKey("X/Y:Y", Channel.OPEN_INTEREST)
    normalizer, watch = derivative_job(DerivativeStreams(), key, feed, exchange, poll_s=2.5)
    assert isinstance(watch, OpenInterestPoll)
    assert feed.streams.get(key).poll_interval_ms == 2500

    async def twice() -> None:
        await watch()
        normalizer.poll(exchange)
        watch.every_s = 0  # the next read at once
        await watch()
        normalizer.poll(exchange)

    asyncio.run(twice())
    feed.flush()
    assert [e.open_interest.size for e in sink.events] == ["10660.509", "10661.509"], "every answer"
    streamed = DerivativeStreams(mark=CacheStream("watch_mark_price", "fundingRates", _mark))
    _, mark_watch = derivative_job(streamed, StreamKey("X/Y:Y", Channel.MARK), feed, exchange, poll_s=2.5)
    assert feed.streams.get(StreamKey("X/Y:Y", Channel.MARK)).poll_interval_ms == 0
    assert not isinstance(mark_watch, OpenInterestPoll)
    _, none = derivative_job(streamed, StreamKey("X/Y:Y", Channel.LIQUIDATIONS), feed, exchange, poll_s=1)
    with pytest.raises(ccxt.NotSupported, match="no liquidations"):
        asyncio.run(none())  # the stream stops for good (trademesh/venues/live/streams.py)
    assert LiquidationStream("watch_liquidations", _liquidations).watch == "watch_liquidations"


# ---- into the recorder's rows


def test_the_derivatives_events_become_rows_of_their_tables() -> None:
    def event(**payload: Any) -> md.MarketEvent:
        return md.MarketEvent(venue="v", symbol="BTC/USDT:USDT", ts_event_ns=5, ts_recv_ns=6, **payload)

    market = bus.MarketEvents(
        events=[
            event(mark_price=md.MarkPrice(mark_price="65000.1", index_price="64999.9")),
            event(open_interest=md.OpenInterest(size="123.4")),
            event(liquidation=md.Liquidation(side=common.SIDE_SELL, price="64000", size="0.5")),
            event(notice=md.StreamNotice(kind=md.NOTICE_KIND_GAP, channel=md.CHANNEL_LIQUIDATIONS)),
        ]
    )
    entries: list[Entry] = [("1-0", bus.Envelope(market=market))]
    rows = rows_of(entries)
    assert rows.mark_prices == [("v", "BTC/USDT:USDT", 5, 6, "65000.1", "64999.9")]
    assert rows.open_interest == [("v", "BTC/USDT:USDT", 5, 6, "123.4", "")]
    assert rows.liquidations == [("v", "BTC/USDT:USDT", 5, 6, "sell", "64000", "0.5")]
    assert rows.notices[0][5] == "liquidations"
    assert [table.name for table, _ in rows.tables()] == [
        "notices",
        "mark_prices",
        "open_interest",
        "liquidations",
    ]
    assert Side.SELL.value == "sell"
