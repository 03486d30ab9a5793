"""The sim's 24h open (Ticker.open_24h): the price of the first of its own trades in the rolling
24h window (trademesh/venues/sim/volume.py), the last price when the window holds none."""

from __future__ import annotations

from decimal import Decimal

from tests.unit.test_sim_market_stats import SPOT, _events
from trademesh.core.domain.model import Channel
from trademesh.venues.sim.config import SimConfig
from trademesh.venues.sim.venue import SimVenue
from trademesh.venues.sim.volume import BUCKET_NS, WINDOW_NS, RollingVolume

S = 1_000_000_000


def test_the_rolling_open_is_the_first_trade_of_the_window_at_a_minutes_resolution() -> None:
    volume = RollingVolume()
    assert volume.opening(0, None) is None, "no trade, no last price: not known"
    t0 = 1_700_000_000 * S - 1_700_000_000 * S % BUCKET_NS  # a minute's start
    volume.add(t0 + 5 * S, price_ticks=100, lots=2)
    volume.add(t0 + 59 * S, price_ticks=110, lots=1)  # the same minute
    volume.add(t0 + 61 * S, price_ticks=120, lots=4)  # the next
    volume.add(t0 + 3 * BUCKET_NS, price_ticks=130, lots=1)
    assert volume.opening(t0 + 3 * BUCKET_NS, 130) == 100
    assert volume.opening(t0 + WINDOW_NS + BUCKET_NS - 1, 130) == 100, (
        "a minute leaves once all of it is 24 h old"
    )
    assert volume.opening(t0 + WINDOW_NS + BUCKET_NS, 130) == 120, "the next minute's first trade"
    assert volume.opening(t0 + WINDOW_NS + 3 * BUCKET_NS, 130) == 130
    assert volume.opening(t0 + WINDOW_NS + 4 * BUCKET_NS, 130) == 130, (
        "no trade in the window: the last price"
    )
    assert volume.totals(t0 + WINDOW_NS + 4 * BUCKET_NS) == (0, 0), "the volume's window, the same"
    volume.add(t0 + WINDOW_NS + 5 * BUCKET_NS, price_ticks=90, lots=1)
    assert volume.opening(t0 + WINDOW_NS + 5 * BUCKET_NS, 90) == 90


def test_the_rolling_open_keeps_at_most_a_day_of_minutes() -> None:
    volume, t0 = RollingVolume(), 1_700_000_000 * S - 1_700_000_000 * S % BUCKET_NS
    for minute in range(3 * 1440):
        for second in range(0, 60, 20):
            volume.add(t0 + minute * BUCKET_NS + second * S, price_ticks=minute, lots=1)
        volume.opening(t0 + minute * BUCKET_NS, minute)
        assert len(volume._buckets) <= 1442
    end = t0 + (3 * 1440 - 1) * BUCKET_NS
    assert volume.opening(end, 3 * 1440 - 1) == 3 * 1440 - 1 - 1440, (
        "the first minute of the last day's window"
    )


def test_a_sim_ticker_states_its_24h_open_exact() -> None:
    venue = SimVenue(SimConfig(symbols=(SPOT,)))
    events = _events(venue, {Channel.TRADES, Channel.TICKERS}, run=200)
    first = ""
    tickers = 0
    for event in events:
        if event.HasField("trade"):
            first = first or event.trade.price
        elif first:
            tickers += 1
            # every trade so far is within the day: the window opens at the first of them
            assert event.ticker.open_24h == first
            assert Decimal(event.ticker.open_24h) % SPOT.tick_size == 0
    assert tickers > 10
    ticker = venue.publisher.latest_ticker(SPOT.symbol, events[-1].ts_event_ns)
    assert ticker is not None and ticker.ticker.open_24h == first, "GetTickers' the same"
