"""Overwatch's engine (trademesh/core/overwatch/engine; docs/overwatch.md): a classifier per market (venue,
symbol, timeframe), the changes it emits with the time it was given, the board of every market,
redelivered bars dropped and counted, the market limit, driven as a backtest would drive it."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from trademesh.core.domain.model import Timeframe
from trademesh.core.domain.regime import Classifier, Regime
from trademesh.core.overwatch.engine import MarketKey, Overwatch, OverwatchConfig, RegimeChange
from trademesh.core.overwatch.synthetic import SeriesSpec, segment_bars
from trademesh.core.platform.errors import InvalidArgument, ResourceExhausted

NOW0 = 1_800_000_000_000_000_000


def test_each_market_has_its_own_regime_and_the_board_shows_all_in_key_order() -> None:
    engine = Overwatch()
    up = segment_bars(Regime.TREND_UP, 200, 1).bars
    thin = segment_bars(Regime.THIN_LIQUIDITY, 200, 2).bars
    hourly = segment_bars(Regime.HIGH_VOLATILITY, 200, 3, SeriesSpec(timeframe=Timeframe.H1)).bars
    changes: list[RegimeChange] = []
    for index, (a, b, c) in enumerate(zip(up, thin, hourly, strict=True)):
        now = NOW0 + index * 10**9
        for venue, symbol, bar in (("sim", "BTC/USDT", a), ("sim", "ETH/USDT", b), ("sim", "BTC/USDT", c)):
            if (change := engine.on_bar(venue, symbol, bar, now)) is not None:
                changes.append(change)
    board = engine.board(NOW0 + 10**12)
    assert board.as_of_ns == NOW0 + 10**12
    assert [(e.key, e.regime) for e in board.entries] == [
        (MarketKey("sim", "BTC/USDT", "1h"), Regime.HIGH_VOLATILITY),
        (MarketKey("sim", "BTC/USDT", "1m"), Regime.TREND_UP),
        (MarketKey("sim", "ETH/USDT", "1m"), Regime.THIN_LIQUIDITY),
    ]
    last = len(up) - 1
    assert all(e.bars == len(up) and e.updated_ns == NOW0 + last * 10**9 for e in board.entries)
    assert board.entries[1].last_bar_ns == up[-1].open_time_ns
    for entry in board.entries:  # the board says what the change said
        final = [c for c in changes if c.key == entry.key][-1]
        assert (final.regime, final.since_ns, final.features.adx > 0) == (entry.regime, entry.since_ns, True)


def test_changes_follow_the_classifier_and_carry_the_given_time() -> None:
    bars = segment_bars(Regime.TREND_DOWN, 200, 4).bars
    engine, classifier = Overwatch(), Classifier()
    expected, got = [], []
    for index, bar in enumerate(bars):
        reading = classifier.update(bar)
        if reading.changed:
            expected.append((reading.regime, reading.since_ns, bar.open_time_ns, NOW0 + index))
        change = engine.on_bar("sim", "SOL/USDT", bar, NOW0 + index)
        if change is not None:
            got.append((change.regime, change.since_ns, change.at_bar_ns, change.at_ns))
            assert change.previous is not change.regime
    assert got == expected
    assert got[0][0] is Regime.RANGE and got[-1][0] is Regime.TREND_DOWN
    assert engine.regime(MarketKey("sim", "SOL/USDT", "1m")) is Regime.TREND_DOWN
    assert engine.regime(MarketKey("sim", "XRP/USDT", "1m")) is Regime.UNKNOWN


def test_a_bar_not_after_the_last_is_dropped_and_counted() -> None:
    bars = segment_bars(Regime.RANGE, 10, 5).bars
    engine = Overwatch()
    for index, bar in enumerate(bars[:50]):
        engine.on_bar("sim", "BTC/USDT", bar, NOW0 + index)
    before = engine.board(NOW0).entries[0]
    assert engine.on_bar("sim", "BTC/USDT", bars[49], NOW0 + 99) is None
    assert engine.on_bar("sim", "BTC/USDT", bars[10], NOW0 + 99) is None
    assert engine.stale_bars == 2
    assert engine.board(NOW0).entries[0] == before
    with pytest.raises(InvalidArgument, match="closed"):
        engine.on_bar("sim", "BTC/USDT", replace(bars[50], closed=False), NOW0)


def test_markets_beyond_the_limit_are_refused_and_a_forgotten_one_starts_over() -> None:
    engine = Overwatch(OverwatchConfig(max_markets=2))
    bar = segment_bars(Regime.RANGE, 1, 6).bars[0]
    engine.on_bar("sim", "A/USDT", bar, NOW0)
    with pytest.raises(InvalidArgument, match="close"):  # a new market's bad first bar ...
        engine.on_bar("sim", "X/USDT", replace(bar, close=Decimal(0)), NOW0)
    engine.on_bar("sim", "B/USDT", bar, NOW0)  # ... took no slot
    with pytest.raises(ResourceExhausted):
        engine.on_bar("sim", "C/USDT", bar, NOW0)
    assert engine.forget(MarketKey("sim", "A/USDT", "1m"))
    assert not engine.forget(MarketKey("sim", "A/USDT", "1m"))
    engine.on_bar("sim", "A/USDT", bar, NOW0)  # its last bar went with it: not stale
    assert engine.stale_bars == 0
    assert [(e.key.symbol, e.bars) for e in engine.board(NOW0).entries] == [("A/USDT", 1), ("B/USDT", 1)]
    with pytest.raises(ResourceExhausted):
        engine.on_bar("sim", "C/USDT", bar, NOW0)


@pytest.mark.parametrize("value", [0, 2_000_000, True])
def test_a_bad_market_limit_is_named(value: int) -> None:
    with pytest.raises(InvalidArgument, match=r"overwatch\.max_markets"):
        OverwatchConfig(max_markets=value)
