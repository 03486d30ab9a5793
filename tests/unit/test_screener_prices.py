"""The Screener's tickers at once (trademesh.core.screener.prices), without a venue: a GetTickers answer as
the engine's tickers (exact decimals; an untimed ticker as of its answer; one that is no number
left out), the fresh age per venue from the screens reading a ticker metric, and which venues are
due (none with a fresh ticker, none asked within every_s)."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.screener.engine.definition import parse_screen
from trademesh.core.screener.engine.inputs import Ticker
from trademesh.core.screener.prices import TickerSeed, fresh_ages, tickers_of
from trademesh.core.screener.state import MarketState
from trademesh.core.tools.resolver import MeshResolver
from trademesh.marketdata.v1 import marketdata_pb2 as md

SECOND = 1_000_000_000
NOW = 1_800_000_000 * SECOND


def _screen(name: str, venue: str, metric: str, max_age_s: int) -> str:
    return f"""
name = "{name}"
venue = "{venue}"
cadence_s = 60
top = 2
max_age_s = {max_age_s}

[score]
weights = {{ {metric} = 1.0 }}
"""


SCREENS = [
    parse_screen(_screen("a", "sim", "spread_bps", 300), "a.toml"),
    parse_screen(_screen("b", "sim", "volume_24h", 60), "b.toml"),
    parse_screen(_screen("c", "kraken", "volume_24h", 120), "c.toml"),
    parse_screen(_screen("d", "okx", "funding_rate", 30), "d.toml"),  # no ticker metric
]


def test_an_answer_becomes_the_engines_tickers_exact_and_timed() -> None:
    answer = md.GetTickersResponse(
        tickers=[
            md.SymbolTicker(
                symbol="BTC/USDT",
                ts_event_ns=NOW - SECOND,
                ticker=md.Ticker(
                    best_bid="65000.1",
                    best_bid_size="0.5",
                    best_ask="65000.2",
                    best_ask_size="1",
                    last_price="65000.15",
                    quote_volume_24h="123456789.01",
                ),
            ),
            md.SymbolTicker(symbol="ETH/USDT", ticker=md.Ticker(best_bid="3000", best_ask="3000.5")),
            md.SymbolTicker(symbol="SOL/USDT", ticker=md.Ticker(best_bid="not a number")),
        ]
    )
    found = dict(tickers_of(answer, NOW))
    assert set(found) == {"BTC/USDT", "ETH/USDT"}
    assert found["BTC/USDT"] == Ticker(
        ts_ns=NOW - SECOND,
        bid=Decimal("65000.1"),
        ask=Decimal("65000.2"),
        last=Decimal("65000.15"),
        bid_size=Decimal("0.5"),
        ask_size=Decimal("1"),
        volume_24h=Decimal("123456789.01"),
    )
    assert found["ETH/USDT"].ts_ns == NOW  # the venue did not say: as of the answer
    assert found["ETH/USDT"].last is None


def test_the_fresh_age_of_a_venue_is_the_shortest_of_its_ticker_screens() -> None:
    assert fresh_ages(SCREENS) == {"sim": 60 * SECOND, "kraken": 120 * SECOND}


def test_a_venue_is_due_without_a_fresh_ticker_and_not_asked_again_within_every_s() -> None:
    clock = [100.0]
    seed = TickerSeed(fresh_ages(SCREENS), MeshResolver(None), every_s=10.0, monotonic=lambda: clock[0])
    state = MarketState(SCREENS)
    assert seed.due(state, NOW) == ["kraken", "sim"]
    state.add_ticker("sim", "BTC/USDT", Ticker(ts_ns=NOW - 30 * SECOND))
    state.add_ticker("kraken", "BTC/USD", Ticker(ts_ns=NOW - 121 * SECOND))
    assert seed.due(state, NOW) == ["kraken"]  # sim's is fresh, kraken's too old


async def test_a_venue_nobody_serves_is_asked_once_per_every_s_and_leaves_the_state_as_it_was() -> None:
    clock = [100.0]
    seed = TickerSeed({"sim": 60 * SECOND}, MeshResolver(None), every_s=10.0, monotonic=lambda: clock[0])
    state = MarketState(SCREENS)
    try:
        assert await seed.seed(state, NOW) == 0  # no instance of sim: a failure, said once
        assert seed.due(state, NOW) == []
        clock[0] += 9.9
        assert seed.due(state, NOW) == []
        clock[0] += 0.1
        assert seed.due(state, NOW) == ["sim"]
        assert state.tickers["sim"] == {}
    finally:
        await seed.close()
