"""A venue's instruments as kept for the services that follow markets (trademesh.core.domain.instruments):
asked once, again when old or when a symbol is missing (at most every `recheck_s`), one call for
askers at once, the last list kept when the venue does not answer."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.instruments import VenueInstruments
from trademesh.core.platform.errors import InvalidArgument, Unavailable


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Venue:
    def __init__(self, *symbols: str) -> None:
        self.symbols = list(symbols)
        self.calls = 0
        self.down = False

    async def __call__(self, venue: str) -> Sequence[common.Instrument]:
        self.calls += 1
        await asyncio.sleep(0)
        if self.down:
            raise Unavailable(f"{venue} does not answer")
        return [common.Instrument(symbol=s) for s in self.symbols]


async def test_an_unknown_symbol_is_invalid_argument_and_asks_again_at_most_every_recheck() -> None:
    clock, venue = Clock(), Venue("BTC/USDT")
    kept = VenueInstruments(venue, max_age_s=300, recheck_s=30, clock=clock)
    assert (await kept.check("sim", "BTC/USDT")).symbol == "BTC/USDT"
    for _ in range(100):
        with pytest.raises(InvalidArgument) as caught:
            await kept.check("sim", "DOGE/USDT", "intent.symbol")
    assert caught.value.violations[0].field == "intent.symbol"
    assert caught.value.violations[0].description.startswith("unknown symbol 'DOGE/USDT'")
    assert venue.calls == 1
    venue.symbols.append("DOGE/USDT")  # listed since
    clock.now = 31
    assert (await kept.check("sim", "DOGE/USDT")).symbol == "DOGE/USDT"
    assert venue.calls == 2


async def test_askers_at_once_share_one_call_and_a_venue_away_keeps_the_last_list() -> None:
    clock, venue = Clock(), Venue("BTC/USDT", "ETH/USDT")
    kept = VenueInstruments(venue, max_age_s=300, recheck_s=30, retry_s=1, clock=clock)
    found = await asyncio.gather(*(kept.split("sim", ["ETH/USDT", "X/Y"]) for _ in range(20)))
    assert found[0] == (["ETH/USDT"], ["X/Y"]) and venue.calls == 1
    venue.down, clock.now = True, 400
    assert set(await kept.instruments("sim")) == {"BTC/USDT", "ETH/USDT"}  # the last list
    new = VenueInstruments(venue, retry_s=1, clock=clock)
    for _ in range(10):
        with pytest.raises(Unavailable):
            await new.instruments("sim")
    assert venue.calls == 3  # one for the old list's refresh, one for the new: a failure is remembered
