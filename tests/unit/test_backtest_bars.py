"""The advisor's bars in a backtest (trademesh.core.backtest.advise.BarKeeper): each recorded bar becomes
the closed Candle the live advisor's context holds. The keeper makes them without the frozen
dataclass's __init__ (a bar's cheapest part); these tests hold it to the dataclass's own."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.backtest.advise import BarKeeper
from trademesh.core.domain.convert import TIMEFRAME_TO_PB
from trademesh.core.domain.model import Candle, Timeframe

S = 1_000_000_000


def _bar(n: int, quote_volume: str = "1234.5") -> bus.Bar:
    return bus.Bar(
        venue="sim", symbol="BTC/USDT", timeframe=TIMEFRAME_TO_PB[Timeframe.M1], open_time_ns=n * 60 * S,
        open=f"6500{n}.5", high=f"6510{n}.25", low="64999.01", close=f"6505{n}", volume="0.12345",
        quote_volume=quote_volume, trade_count=7 + n,
    )  # fmt: skip


def _made(bar: bus.Bar) -> Candle:
    return Candle(
        Timeframe.M1, bar.open_time_ns, Decimal(bar.open), Decimal(bar.high), Decimal(bar.low),
        Decimal(bar.close), Decimal(bar.volume), Decimal(bar.quote_volume or "0"), bar.trade_count, True,
    )  # fmt: skip


def test_each_kept_candle_is_the_dataclasss_own_candle_of_its_bar() -> None:
    keeper = BarKeeper("sim", "1m", kept=3)
    bars = [_bar(n) for n in range(4)] + [_bar(4, quote_volume="")]
    keeper.on_bars(bars)
    kept = keeper.bars("BTC/USDT")
    assert kept == tuple(_made(bar) for bar in bars[-3:])  # the newest 3
    for candle, bar in zip(kept, bars[-3:], strict=True):
        expected = _made(bar)
        assert type(candle) is Candle
        assert repr(candle) == repr(expected) and hash(candle) == hash(expected)
        assert dataclasses.astuple(candle) == dataclasses.astuple(expected)
    assert kept[-1].quote_volume == Decimal(0) and kept[-1].closed


def test_a_kept_candle_is_frozen() -> None:
    keeper = BarKeeper("sim", "1m", kept=2)
    keeper.on_bars([_bar(1)])
    candle = keeper.bars("BTC/USDT")[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        candle.close = Decimal(1)  # type: ignore[misc]
    assert dataclasses.replace(candle, close=Decimal(1)).close == Decimal(1)


def test_a_candle_of_prices_made_already_is_the_candle_of_its_text() -> None:
    """The run's bar walk makes a bar's open, high, low and close as Decimals and hands them on
    (BarKeeper.on_bars' `prices`, None for a bar it did not walk): the candle kept is the one
    made from the bar's text, exponents included."""
    bars = [_bar(n) for n in range(3)]
    for bar in bars:
        bar.high = "65200.50"  # a trailing zero: Decimal keeps it
    made = [(Decimal(b.open), Decimal(b.high), Decimal(b.low), Decimal(b.close)) for b in bars]
    given, fresh = BarKeeper("sim", "1m", kept=3), BarKeeper("sim", "1m", kept=3)
    given.on_bars(bars, [made[0], None, made[2]])
    fresh.on_bars(bars)
    assert repr(given.bars("BTC/USDT")) == repr(fresh.bars("BTC/USDT")) == repr(tuple(_made(b) for b in bars))
    assert given.bars("BTC/USDT")[0].high is made[0][1]  # not made again
