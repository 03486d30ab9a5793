"""The sim's 24h volume on its tickers and its perpetuals' funding rates, through the runtime feed in
process (no gRPC): what the Screener ranks by."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from trademesh.core.domain.model import Channel, StreamKey
from trademesh.core.platform.rpc.fanout import Overflow
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.runtime.fanout import MarketFanout, MarketInterest
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.stats import StreamTable
from trademesh.venues.runtime.venue import VenueContext
from trademesh.venues.sim.config import SimConfig, SymbolConfig
from trademesh.venues.sim.venue import SimVenue
from trademesh.venues.sim.volume import BUCKET_NS, WINDOW_NS, RollingVolume

D = Decimal
S = 1_000_000_000
PERP = SymbolConfig(
    symbol="BTC/USDT:USDT", start_price=D("65000"), tick_size=D("0.1"), lot_size=D("0.001"),
    funding_rate=D("-0.00025"), funding_interval_s=3600,
)  # fmt: skip
SPOT = SymbolConfig(symbol="ETH/USDT", start_price=D("3000"), tick_size=D("0.01"), lot_size=D("0.0001"))


def test_the_rolling_volume_keeps_a_day_of_trades_at_a_minutes_resolution() -> None:
    volume = RollingVolume()
    t0 = 1_700_000_000 * S - 1_700_000_000 * S % BUCKET_NS  # a minute's start
    volume.add(t0 + 5 * S, price_ticks=100, lots=2)
    volume.add(t0 + 59 * S, price_ticks=110, lots=1)  # the same minute
    volume.add(t0 + 61 * S, price_ticks=120, lots=4)  # the next
    assert volume.totals(t0 + 2 * BUCKET_NS) == (7, 2 * 100 + 110 + 4 * 120)
    # the first minute leaves once all of it is older than 24 h; its trades together
    assert volume.totals(t0 + WINDOW_NS + BUCKET_NS - 1) == (7, 790)
    assert volume.totals(t0 + WINDOW_NS + BUCKET_NS) == (4, 480)
    assert volume.totals(t0 + WINDOW_NS + 2 * BUCKET_NS) == (0, 0)
    volume.add(t0 + WINDOW_NS + 3 * BUCKET_NS, price_ticks=1, lots=1)
    assert volume.totals(t0 + WINDOW_NS + 3 * BUCKET_NS) == (1, 1)


def _events(venue: SimVenue, channels: set[Channel], run: int) -> list[md.MarketEvent]:
    """The events of `channels` the sim publishes while its market takes `run` steps."""
    feed = MarketFeed("sim", StreamTable())
    fanout = MarketFanout(10**9, lambda symbol, channel: b"")
    feed.attach(fanout)
    streams = venue.default_streams()
    routes = frozenset((key.symbol, key.channel, None) for key in streams if key.channel in channels)
    subscriber = fanout.subscribe(MarketInterest(routes, Overflow.DISCONNECT), b"")
    venue.publisher.attach(VenueContext(feed, lambda execution: None), streams)
    venue.market.prime()
    for _ in range(run):
        venue.market.step()
        now_ns = time.time_ns()  # the exchange's clock, which stamps its trades
        venue.publisher.publish_tickers(now_ns)
        venue.publisher.publish_funding(now_ns)
        feed.flush()
    fanout.end_all()

    async def read() -> list[md.MarketEvent]:
        batches = [batch async for batch in subscriber.batches()]
        return [event for batch in batches for event in md.SubscribeResponse.FromString(batch).events]

    return asyncio.run(read())


def test_a_ticker_states_the_24h_volume_of_the_sims_own_trades() -> None:
    venue = SimVenue(SimConfig(symbols=(SPOT,)))
    events = _events(venue, {Channel.TRADES, Channel.TICKERS}, run=200)
    base = quote = D(0)
    tickers = 0
    for event in events:  # a step's trades, then its ticker
        if event.HasField("trade"):
            base += D(event.trade.size)
            quote += D(event.trade.price) * D(event.trade.size)
        else:
            tickers += 1
            volumes = (D(event.ticker.base_volume_24h), D(event.ticker.quote_volume_24h))
            assert volumes == (base, quote), "every trade so far: within a day none leaves the window"
    assert tickers > 10 and base > 0


def test_a_perpetual_states_its_funding_rate_and_a_spot_pair_none() -> None:
    venue = SimVenue(SimConfig(symbols=(PERP, SPOT)))
    assert StreamKey(PERP.symbol, Channel.FUNDING) in venue.default_streams()
    assert StreamKey(SPOT.symbol, Channel.FUNDING) not in venue.default_streams()
    events = _events(venue, {Channel.FUNDING}, run=3)
    assert [e.symbol for e in events] == [PERP.symbol] * 3, "one a call, whether it changed or not"
    funding = events[-1].funding_rate
    assert D(funding.rate) == D("-0.00025")
    # the next multiple of the interval since the epoch after the exchange opened
    assert funding.next_funding_ns % (3600 * S) == 0 and funding.next_funding_ns > time.time_ns()
    book = venue.exchange.book(PERP.symbol)
    bid, ask = book.best_bid(), book.best_ask()
    assert bid is not None and ask is not None
    assert D(funding.mark_price) == D(bid + ask) / 2 * PERP.tick_size, "the book's mid, as funding is paid at"
    assert funding.index_price == "", "the sim has no index"
