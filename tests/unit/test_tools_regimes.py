"""The regimes MCP tool (trademesh.core.tools.regimes) against Overwatch's own gRPC service in this process,
its engine fed synthetic bars: the board rendered (regime words, ISO times, the timeframe's
label), the venue and symbol filters, and bad arguments refused before any call, every bad one
named."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import pytest

from trademesh.core.domain.model import Candle
from trademesh.core.domain.regime import ClassifierConfig, Regime
from trademesh.core.overwatch.api import overwatch_service
from trademesh.core.overwatch.convert import close_time_ns
from trademesh.core.overwatch.engine import Overwatch, OverwatchConfig
from trademesh.core.overwatch.synthetic import SeriesSpec, segment_bars
from trademesh.core.overwatch.watchers import RegimeWatchers
from trademesh.core.platform.errors import InvalidArgument, NotFound
from trademesh.core.platform.rpc.server import ServerOptions, create_server
from trademesh.core.tools.regimes import OVERWATCH, RegimeTools
from trademesh.core.tools.upstream import Upstream

MINUTE_NS = 60 * 10**9


class _At:
    """A Resolver with the one Overwatch instance (None: none registered); counts what it resolves."""

    def __init__(self, address: str | None) -> None:
        self.address = address
        self.resolved = 0

    def resolve(self, service: str, target: str | None) -> str:
        assert service == OVERWATCH
        self.resolved += 1
        if self.address is None:
            raise NotFound(f"no live instance serves {service} (is it running, registered with the gateway?)")
        return self.address

    def names(self, service: str) -> list[str]:
        return [] if self.address is None else ["overwatch"]


@dataclass
class Served:
    tools: RegimeTools
    resolver: _At
    thin: Sequence[Candle]  # the bars of sim BTC/USDT, ending thin


def _feed(engine: Overwatch, venue: str, symbol: str, candles: Sequence[Candle]) -> None:
    for candle in candles:
        engine.on_bar(venue, symbol, candle, close_time_ns(candle))


@pytest.fixture
async def served() -> AsyncIterator[Served]:
    engine = Overwatch(OverwatchConfig(ClassifierConfig()))
    thin = segment_bars(Regime.THIN_LIQUIDITY, 80, seed=7, spec=SeriesSpec(warmup_bars=150)).bars
    _feed(engine, "sim", "BTC/USDT", thin)
    _feed(engine, "sim", "ETH/USDT", thin[:10])  # still warming up: unknown
    _feed(engine, "kraken", "BTC/USDT", thin[:10])
    server = await create_server([overwatch_service(engine, RegimeWatchers())], ServerOptions())
    resolver = _At(f"127.0.0.1:{server.port}")
    upstream = Upstream(resolver, 5.0)
    try:
        yield Served(RegimeTools(upstream), resolver, thin)
    finally:
        await upstream.close()
        await server.server.stop(None)


async def test_the_board_shows_every_market_with_its_regime_and_times(served: Served) -> None:
    got = await served.tools.regimes()
    markets = got["markets"]
    assert [(m["venue"], m["symbol"]) for m in markets] == [
        ("kraken", "BTC/USDT"),
        ("sim", "BTC/USDT"),
        ("sim", "ETH/USDT"),
    ]
    thin = markets[1]
    assert thin["regime"] == "thin_liquidity" and thin["timeframe"] == "1m"
    assert thin["bars"] == len(served.thin)
    assert thin["last_bar_ns"] == served.thin[-1].open_time_ns
    assert thin["updated_ns"] == thin["last_bar_ns"] + MINUTE_NS
    assert thin["since"].endswith("Z")
    assert served.thin[0].open_time_ns < thin["since_ns"] < thin["last_bar_ns"]
    assert 0 < thin["features"]["volume_ratio"] <= 0.6 and 0 <= thin["features"]["adx"] <= 100
    assert markets[2]["regime"] == "unknown" and markets[2]["bars"] == 10
    assert got["as_of"].endswith("Z") and got["as_of_ns"] > 0


async def test_a_venue_or_a_symbol_narrows_the_board_and_no_match_is_an_empty_list(served: Served) -> None:
    by_venue = await served.tools.regimes(venue="sim")
    assert {m["symbol"] for m in by_venue["markets"]} == {"BTC/USDT", "ETH/USDT"}
    by_symbol = await served.tools.regimes(symbol="BTC/USDT")
    assert {m["venue"] for m in by_symbol["markets"]} == {"sim", "kraken"}
    both = await served.tools.regimes(venue="kraken", symbol="BTC/USDT")
    assert [(m["venue"], m["symbol"]) for m in both["markets"]] == [("kraken", "BTC/USDT")]
    assert (await served.tools.regimes(venue="binance"))["markets"] == []
    assert len((await served.tools.regimes(venue="", symbol=""))["markets"]) == 3  # empty: no filter


async def test_a_bad_venue_and_symbol_are_both_named_before_any_call(served: Served) -> None:
    with pytest.raises(InvalidArgument) as refused:
        await served.tools.regimes(venue="Not A Venue", symbol="BTCUSDT")
    named = {v.field: v.description for v in refused.value.violations}
    assert set(named) == {"venue", "symbol"}
    assert "'BTCUSDT' is not a canonical symbol such as BTC/USDT" in named["symbol"]
    assert "is not a venue name" in named["venue"]
    assert served.resolver.resolved == 0


async def test_no_overwatch_running_is_not_found_naming_the_service() -> None:
    upstream = Upstream(_At(None), 5.0)
    try:
        with pytest.raises(NotFound, match=re.escape(OVERWATCH)):
            await RegimeTools(upstream).regimes()
    finally:
        await upstream.close()
