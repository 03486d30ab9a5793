"""Strategies on history of bars alone (trademesh.core.backtest.bar_feed) and `--bars TF`: which sources
are fed bars, what the strategies become, and the option as the config reads it."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from trademesh.core.backtest.bar_feed import bar_sources, fed_from_bars, on_timeframe
from trademesh.core.backtest.config import backtest_config
from trademesh.core.backtest.summary import config_view, run_id
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.strategy_file import ModuleDecl, Strategy, build_patches, load_strategy
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.errors import InvalidArgument

TREND = Path("trademesh/core/detector/strategies/trend.toml")
M1, S1 = Timeframe.from_label("1m"), Timeframe.from_label("1s")


def trend(*symbols: str) -> Strategy:
    base = load_strategy(TREND, Catalog.builtin())
    return dataclasses.replace(base, venues=("binance",), symbols=symbols)


def source(strategy: Strategy) -> ModuleDecl:
    return next(d for d in strategy.modules if d.id == "bars")


def test_bars_puts_every_bar_source_on_the_timeframe_and_leaves_the_rest() -> None:
    base = trend("BTC/USDT")
    on_1m = on_timeframe(base, "1m")
    assert source(base).params["timeframe"] == "1s"
    assert source(on_1m).type == "trade_bars"
    assert dict(source(on_1m).params) == {**source(base).params, "timeframe": "1m"}
    assert [d for d in on_1m.modules if d.id != "bars"] == [d for d in base.modules if d.id != "bars"]


def test_a_symbol_with_bars_and_no_trades_has_its_trade_bars_source_made_a_bars_source() -> None:
    strategy = on_timeframe(trend("BTC/USDT"), "1m")
    assert bar_sources([strategy], "binance") == {("BTC/USDT", M1)}
    fed, timeframes = fed_from_bars([strategy], "binance", lambda symbol, tf: True)
    assert timeframes == {M1}
    assert len(fed) == 1 and source(fed[0]) == ModuleDecl("bars", "bars", {"timeframe": "1m"})
    # It builds as the detector builds it: a `bars` source of the patch's venue and symbol.
    engine = Engine(Catalog.builtin(), timer=lambda: 0)
    [patch] = build_patches(engine, fed[0], 0)
    assert patch.id == "trend/binance/BTC/USDT"


def test_a_run_over_trades_keeps_its_strategies_as_they_are() -> None:
    strategies = [trend("BTC/USDT", "ETH/USDT")]
    fed, timeframes = fed_from_bars(strategies, "binance", lambda symbol, tf: False)
    assert fed == strategies and fed[0] is strategies[0] and timeframes == set()


def test_a_strategy_whose_symbols_part_is_split_by_symbol() -> None:
    strategy = on_timeframe(trend("BTC/USDT", "ETH/USDT"), "1m")
    fed, timeframes = fed_from_bars([strategy], "binance", lambda symbol, tf: symbol == "ETH/USDT")
    assert timeframes == {M1}
    by_symbols = {s.symbols: source(s).type for s in fed}
    assert by_symbols == {("BTC/USDT",): "trade_bars", ("ETH/USDT",): "bars"}
    assert {s.id for s in fed} == {"trend"}


def test_a_source_of_another_venue_is_left_alone() -> None:
    strategy = trend("BTC/USDT")
    other = dataclasses.replace(
        strategy,
        modules=tuple(
            dataclasses.replace(d, params={**d.params, "venue": "okx"}) if d.id == "bars" else d
            for d in strategy.modules
        ),
    )
    assert bar_sources([other], "binance") == set()
    assert fed_from_bars([other], "binance", lambda symbol, tf: True) == ([other], set())


def test_the_bars_option_takes_a_timeframe_and_leaves_a_runs_id_alone_when_not_given() -> None:
    flags = {"strategies": [str(TREND)], "from": "2024-01-01", "to": "2024-02-01"}
    plain = backtest_config({}, flags)
    assert plain.bars == ""
    assert backtest_config({"bars": "1m"}, flags).bars == "1m"
    assert backtest_config({}, {**flags, "bars": "5m"}).bars == "5m"
    # The option's default leaves the config's view, so a run's id stays what it was.
    assert "bars" not in config_view(plain)
    assert config_view(backtest_config({}, {**flags, "bars": "1m"}))["bars"] == "1m"
    assert run_id(backtest_config({}, {**flags, "bars": "1m"})) != run_id(plain)
    with pytest.raises(InvalidArgument, match="bars"):
        backtest_config({}, {**flags, "bars": "3m"})
