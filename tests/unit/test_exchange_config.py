"""The simulated exchange's config (trademesh/core/domain/matching/config.py) beside the matching engine:
the sim venue's config extends it with its synthetic market, and a backtest reads a sim config
file's exchange part without the sim's code (trademesh.core.backtest imports no venue)."""

from __future__ import annotations

from dataclasses import fields, replace
from decimal import Decimal
from pathlib import Path

import pytest

from trademesh.core.backtest.assemble import MESH_EXCHANGE, SIM_MARKET_KEYS, SIM_SYMBOL_KEYS, exchange_of
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.domain.matching.config import (
    SIM_VENUE,
    ExchangeConfig,
    SymbolSpec,
    instruments,
    load_exchange,
)
from trademesh.core.platform.errors import InvalidArgument
from trademesh.venues.sim.config import DEMO_MARKET, SimConfig, SymbolConfig, load_config
from trademesh.venues.sim.symbols import VENUE
from trademesh.venues.sim.symbols import instruments as sim_instruments

EXAMPLES = Path(__file__).parents[2] / "trademesh" / "core" / "detector" / "strategies"


def _names(cls: type) -> set[str]:
    return {item.name for item in fields(cls)}


def _exchange_part(config: SimConfig) -> ExchangeConfig:
    """The exchange's fields of a sim config, its symbols as the exchange's."""
    own = {name: getattr(config, name) for name in _names(ExchangeConfig)}
    own["symbols"] = tuple(
        SymbolSpec(**{n: getattr(s, n) for n in _names(SymbolSpec)}) for s in config.symbols
    )
    return ExchangeConfig(**own)


def _spec(symbol: SymbolSpec) -> SymbolSpec:
    return SymbolSpec(**{name: getattr(symbol, name) for name in _names(SymbolSpec)})


def _backtest(sim_config: Path | None) -> BacktestConfig:
    return BacktestConfig(strategies=(EXAMPLES / "trend.toml",), start_ns=0, end_ns=1, sim_config=sim_config)


def test_the_market_keys_a_backtest_leaves_are_the_sims_own() -> None:
    assert set(SIM_MARKET_KEYS) == _names(SimConfig) - _names(ExchangeConfig)
    assert set(SIM_SYMBOL_KEYS) == _names(SymbolConfig) - _names(SymbolSpec)


def test_a_backtests_default_exchange_is_the_demo_markets() -> None:
    assert _exchange_part(load_config(DEMO_MARKET)) == MESH_EXCHANGE
    assert exchange_of(_backtest(None)) == MESH_EXCHANGE


def test_a_backtest_reads_the_exchange_part_of_a_sim_config_file() -> None:
    assert load_exchange(DEMO_MARKET, SIM_MARKET_KEYS, SIM_SYMBOL_KEYS) == MESH_EXCHANGE
    assert exchange_of(_backtest(DEMO_MARKET)) == MESH_EXCHANGE


def test_the_sim_and_a_backtest_list_the_same_instruments() -> None:
    demo = load_config(DEMO_MARKET)
    assert VENUE == SIM_VENUE
    assert sim_instruments(demo) == instruments(MESH_EXCHANGE)
    assert [i.native_symbol for i in instruments(MESH_EXCHANGE)] == ["BTCUSDT", "ETHUSDT", "SOLUSDT"]


@pytest.mark.parametrize(
    ("text", "field", "said"),
    [
        ("maker_fee_rat = \"0.001\"\n", "maker_fee_rat", "unknown key; known: maker_fee_rate, "),
        ('[[symbols]]\nsymbol = "BTC/USDT"\ntick_size = "0.01"\nlot_size = "1"\nstart_prise = "1"\n',
         "symbols[0].start_prise", "unknown key; known: symbol, tick_size, "),
        ('taker_fee_rate = "0.5"\nhistory_s = 60\n', "taker_fee_rate", "must be between 0 and 0.1, got 0.5"),
    ],
)  # fmt: skip
def test_a_backtest_refuses_what_the_sim_would_refuse_in_the_exchange_part(
    tmp_path: Path, text: str, field: str, said: str
) -> None:
    path = tmp_path / "sim.toml"
    path.write_text(text)
    with pytest.raises(InvalidArgument) as caught:
        load_exchange(path, SIM_MARKET_KEYS, SIM_SYMBOL_KEYS)
    [violation] = caught.value.violations
    assert violation.field == field and said in violation.description
    assert violation.description.endswith(f"(in {path})")
    if "unknown key" in said:  # the sim's own keys are known too
        assert "start_price" in violation.description or "history_s" in violation.description


def test_a_sim_symbol_is_an_exchange_symbol_with_its_market() -> None:
    spec = SymbolSpec("BTC/USDT:USDT", Decimal("0.1"), Decimal("0.001"), funding_rate=Decimal("0.0002"))
    symbol = SymbolConfig(**{n: getattr(spec, n) for n in _names(SymbolSpec)}, start_price=Decimal(65000))
    assert symbol.perpetual and isinstance(symbol, SymbolSpec)
    with pytest.raises(InvalidArgument, match="funding_rate: is for perpetuals only"):
        replace(spec, symbol="BTC/USDT")
