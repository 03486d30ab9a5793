"""The Screener's shell pieces, without Redis: symbols read as kinds and quote assets, the bars
and tickers held per venue, a screen's inputs, the wire conversions (metrics as decimal strings),
the screens of a directory, and the results' names checked naming their field."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, cast

import pytest

from tests.screener_support import HOUR, NOW, bars, ticker
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import InstrumentKind, Timeframe
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument
from trademesh.core.screener.convert import (
    candle_of,
    funding_of,
    metric_text,
    result_to_pb,
    screen_to_pb,
    ticker_of,
)
from trademesh.core.screener.engine.definition import parse_screen
from trademesh.core.screener.engine.evaluate import evaluate
from trademesh.core.screener.engine.inputs import Funding
from trademesh.core.screener.feed import ScreenFeed
from trademesh.core.screener.instruments import symbol_facts
from trademesh.core.screener.screen_file import SCREENS_DIR
from trademesh.core.screener.screens import load_screens
from trademesh.core.screener.state import MarketState
from trademesh.core.screener.watchers import Results
from trademesh.marketdata.v1 import marketdata_pb2 as md

SCREEN = """
name = "movers"
venue = "sim"
cadence_s = 60
top = 2
max_age_s = 7200
filters = ["bar_volume >= 100"]

[bars]
timeframe = "1h"
momentum = 2
volatility = 2
volume = 2

[score]
weights = { momentum = 1.0 }
"""

TICKER_SCREEN = SCREEN.replace('"movers"', '"tight"').replace("momentum = 1.0", "spread_bps = -1.0")


def test_a_symbol_says_its_kind_and_quote_asset() -> None:
    cases = {
        "BTC/USDT": (InstrumentKind.SPOT, "USDT"),
        "BTC/USDT:USDT": (InstrumentKind.PERPETUAL, "USDT"),
        "BTC/USD:BTC-261225": (InstrumentKind.FUTURE, "USD"),
        "BTC/USD:BTC-261225-100000-C": (InstrumentKind.OPTION, "USD"),
    }
    for symbol, (kind, quote) in cases.items():
        facts = symbol_facts(symbol)
        assert (facts.kind, facts.quote_asset) == (kind, quote), symbol


def _bus_bar(close: str, open_time_ns: int, symbol: str = "BTC/USDT") -> bus.Bar:
    bar = bus.Bar(venue="sim", symbol=symbol, timeframe=common.TIMEFRAME_1_HOUR, open_time_ns=open_time_ns)
    bar.open = bar.high = bar.low = bar.close = close
    bar.volume, bar.quote_volume = "1", "100"
    return bar


def test_the_state_keeps_the_newest_bars_a_screen_reads_and_drops_older_ones() -> None:
    screen = parse_screen(SCREEN, "movers.toml")
    state = MarketState([screen])
    assert state.keep == {("sim", Timeframe.H1): 3}  # momentum 2 and volatility 2 read 3 closes
    assert state.ticker_venues == set()  # no ticker metric: no ticker stream read
    for index, close in enumerate(["100", "101", "102", "103"]):
        assert state.add_bar("sim", "BTC/USDT", candle_of(_bus_bar(close, index * HOUR)))
    assert not state.add_bar("sim", "BTC/USDT", candle_of(_bus_bar("99", 0)))  # older than a full window
    m1 = bus.Bar(venue="sim", symbol="BTC/USDT", timeframe=common.TIMEFRAME_1_MINUTE, open="1", high="1",
                 low="1", close="1", volume="1")  # fmt: skip
    assert not state.add_bar("sim", "BTC/USDT", candle_of(m1))  # a timeframe no screen reads
    assert not state.add_bar("other", "BTC/USDT", candle_of(_bus_bar("1", 9 * HOUR)))
    [inputs] = state.inputs(screen)
    assert [c.close for c in inputs.bars] == [Decimal("101"), Decimal("102"), Decimal("103")]
    assert (inputs.kind, inputs.quote_asset, inputs.ticker) == (InstrumentKind.SPOT, "USDT", None)


def test_a_bar_published_late_takes_its_place_and_a_repair_replaces_its_bar() -> None:
    screen = parse_screen(SCREEN, "movers.toml")
    state = MarketState([screen])
    for index in (3, 4):  # live bars first, then the backfill of the hours before them
        assert state.add_bar("sim", "BTC/USDT", candle_of(_bus_bar(str(100 + index), index * HOUR)))
    for index in (1, 2):
        assert state.add_bar("sim", "BTC/USDT", candle_of(_bus_bar(str(100 + index), index * HOUR)))
    assert state.add_bar("sim", "BTC/USDT", candle_of(_bus_bar("203", 3 * HOUR)))  # a repair of hour 3
    [inputs] = state.inputs(screen)
    assert [(c.open_time_ns // HOUR, c.close) for c in inputs.bars] == [
        (2, Decimal(102)), (3, Decimal(203)), (4, Decimal(104)),
    ]  # fmt: skip


def test_a_screen_of_a_ticker_metric_takes_the_newest_ticker_of_each_symbol() -> None:
    screen = parse_screen(TICKER_SCREEN, "tight.toml")
    state = MarketState([screen])
    assert state.ticker_venues == {"sim"}
    state.add_ticker("sim", "ETH/USDT", ticker(ts_ns=NOW))
    state.add_ticker("sim", "ETH/USDT", ticker("1", "2", ts_ns=NOW - 1))  # older: kept out
    state.add_ticker("elsewhere", "ETH/USDT", ticker())  # a venue no screen reads
    [inputs] = state.inputs(screen)
    assert inputs.symbol == "ETH/USDT" and inputs.ticker is not None and inputs.ticker.ts_ns == NOW
    assert inputs.ticker.bid == Decimal("99.99")


def test_a_wire_ticker_reads_as_decimals_and_a_bad_price_names_its_field() -> None:
    event = md.MarketEvent(venue="sim", symbol="BTC/USDT", ts_event_ns=5,
                           ticker=md.Ticker(best_bid="1.5", best_ask="1.6", best_bid_size="2"))  # fmt: skip
    got = ticker_of(event)
    assert (got.ts_ns, got.bid, got.ask, got.bid_size, got.ask_size) == (5, Decimal("1.5"), Decimal("1.6"),
                                                                          Decimal(2), None)  # fmt: skip
    event.ticker.best_ask = "NaN"
    with pytest.raises(InvalidArgument) as caught:
        ticker_of(event)
    assert [v.field for v in caught.value.violations] == ["best_ask"]


def test_a_wire_tickers_24h_volumes_and_a_funding_rate_read_as_decimals() -> None:
    event = md.MarketEvent(ts_event_ns=5, ticker=md.Ticker(base_volume_24h="12.5", quote_volume_24h="1250"))
    got = ticker_of(event)
    assert (got.volume_24h, got.base_volume_24h) == (Decimal(1250), Decimal("12.5"))
    assert ticker_of(md.MarketEvent(ticker=md.Ticker())).volume_24h is None, "not stated: absent, not 0"
    funding = md.MarketEvent(ts_event_ns=7, funding_rate=md.FundingRate(rate="-0.0001", next_funding_ns=9))
    assert funding_of(funding) == Funding(Decimal("-0.0001"), 7)
    funding.funding_rate.rate = "Infinity"
    with pytest.raises(InvalidArgument) as caught:
        funding_of(funding)
    assert [v.field for v in caught.value.violations] == ["rate"]


def test_a_screen_of_the_funding_rate_reads_its_venues_funding_stream_and_the_newest_rate() -> None:
    screen = parse_screen(SCREEN.replace("momentum = 1.0", "funding_rate = 1.0"), "carry.toml")
    state = MarketState([screen])
    assert (state.funding_venues, state.ticker_venues) == ({"sim"}, set())
    assert "md.{sim}.funding" in ScreenFeed(cast(Any, None), state, ticker_age_ms=1000).streams
    state.add_funding("sim", "BTC/USDT:USDT", Funding(Decimal("0.0001"), NOW))
    state.add_funding("sim", "BTC/USDT:USDT", Funding(Decimal("0.0009"), NOW - 1))  # older: kept out
    state.add_funding("elsewhere", "ETH/USDT:USDT", Funding(Decimal("0.0009"), NOW))  # not read
    [inputs] = state.inputs(screen)  # a symbol with a funding rate alone is in the universe
    assert inputs.symbol == "BTC/USDT:USDT" and inputs.funding == Funding(Decimal("0.0001"), NOW)


def test_metrics_go_on_the_wire_as_plain_decimal_strings() -> None:
    assert metric_text(1e-05) == "0.00001"
    assert metric_text(1e16) == "10000000000000000"
    assert metric_text(0.1) == "0.1" and metric_text(-2.5) == "-2.5"


def test_a_result_goes_on_the_wire_ranked_with_its_metrics_and_counts() -> None:
    screen = parse_screen(SCREEN, "movers.toml")
    state = MarketState([screen])
    for symbol, closes in {"A/USDT": ["100", "150", "200"], "B/USDT": ["100", "100", "125"]}.items():
        for candle in bars(closes, end_ns=NOW):
            state.add_bar("sim", symbol, candle)
    state.add_bar("sim", "C/USDT", bars(["5"], end_ns=NOW)[0])  # one bar: no momentum, left out
    message = result_to_pb(evaluate(screen, state.inputs(screen), NOW))
    assert [(r.rank, r.symbol) for r in message.ranked] == [(1, "A/USDT"), (2, "B/USDT")]
    first = {m.metric: m.value for m in message.ranked[0].metrics}
    assert first == {"bar_volume": "2000.0", "momentum": "1.0"}
    assert (message.universe, message.left_out, dict(message.missing)) == (
        3,
        1,
        {"bar_volume": 1, "momentum": 1},
    )
    assert message.computed_ns == NOW and message.top_n == 2


def test_the_shipped_screens_load_and_go_on_the_wire_as_defined() -> None:
    screens = load_screens(SCREENS_DIR)
    definition = screen_to_pb(screens["momentum"])
    assert definition.venue == "binanceusdm" and definition.bars.timeframe == common.TIMEFRAME_1_HOUR
    assert list(definition.filters) == ["volume_24h >= 1e+06", "spread_bps <= 5"]
    assert [(w.metric, w.weight) for w in definition.score.weights] == [
        ("momentum", 1.0),
        ("volatility", -0.25),
    ]
    assert definition.min_hold_s == 900 and list(definition.universe.kinds) == ["perpetual"]


def test_a_directory_without_screens_or_with_one_name_twice_is_refused(tmp_path: Path) -> None:
    with pytest.raises(FailedPrecondition):
        load_screens(tmp_path)
    (tmp_path / "a.toml").write_text(SCREEN)
    (tmp_path / "b.toml").write_text(SCREEN)
    with pytest.raises(InvalidArgument) as caught:
        load_screens(tmp_path)
    [violation] = caught.value.violations
    assert (
        violation.field == "name" and "a.toml" in violation.description and "b.toml" in violation.description
    )


def test_names_not_loaded_are_refused_naming_each_item() -> None:
    results = Results({"movers": parse_screen(SCREEN, "movers.toml")})
    assert results.names([], "screens") == frozenset({"movers"})
    with pytest.raises(InvalidArgument) as caught:
        results.names(["movers", "nope", "Bad Name"], "screens")
    assert [v.field for v in caught.value.violations] == ["screens[1]", "screens[2]"]
    assert "loaded: movers" in caught.value.violations[0].description
    with pytest.raises(InvalidArgument) as one:
        results.screen("nope", "screen")
    assert [v.field for v in one.value.violations] == ["screen"]


async def test_a_watcher_that_falls_behind_is_ended_and_others_go_on() -> None:
    screen = parse_screen(SCREEN, "movers.toml")
    results = Results({"movers": screen}, queue_size=1)
    slow, other = results.watch(frozenset({"movers"})), results.watch(frozenset({"elsewhere"}))
    message = result_to_pb(evaluate(screen, [], NOW))
    results.publish(message)
    results.publish(message)
    assert slow.overflowed and await slow.queue.get() is None
    assert results.latest["movers"] is message and len(results) == 1 and not other.overflowed
