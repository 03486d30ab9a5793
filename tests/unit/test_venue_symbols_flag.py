"""`trademesh venue NAME --symbols A,B,...` (docs/venues.md): the symbols a venue serves instead of
its config's. A live venue's (and a paper venue's) LiveConfig.symbols are replaced, a symbol its
exchange has no market of refused at start naming it; the sim serves a subset of its config's
markets and refuses another naming it; a plug-in gets them only when its create_venue takes them.
And `trademesh data download`, which starts a venue by name, passes them unless its venue
arguments name the symbols themselves."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.unit.test_venue_plugins import write_package
from trademesh.core.cli import build_parser, main
from trademesh.core.history.download_venue import _names_symbols, _refused_symbols
from trademesh.core.platform.errors import InvalidArgument
from trademesh.venues.binance.spec import SPEC
from trademesh.venues.command import COMMAND, VenueConfig, symbol_list
from trademesh.venues.live.config import load_config
from trademesh.venues.live.markets import choose_symbols
from trademesh.venues.paper import create_paper_venue
from trademesh.venues.registry import _takes_symbols, create_venue
from trademesh.venues.sim.config import load_config as load_sim_config


def _refused(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = int(exc.code or 0)
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_the_flag_is_a_comma_separated_list_each_symbol_once_in_the_order_given() -> None:
    assert symbol_list("ETH/USDT") == ("ETH/USDT",)
    assert symbol_list("ETH/USDT, BTC/USDT,ETH/USDT") == ("ETH/USDT", "BTC/USDT")
    assert symbol_list("BTC/USDT:USDT,BTC/USD:BTC-240329-50000-C") == (
        "BTC/USDT:USDT",
        "BTC/USD:BTC-240329-50000-C",
    )
    for bad in ("", "BTC/USDT,", ",ETH/USDT", "BTC/USDT,,ETH/USDT", "BTC /USDT"):
        with pytest.raises(argparse.ArgumentTypeError):
            symbol_list(bad)


def test_the_parsed_flag_reaches_the_venues_config_and_is_left_out_by_default() -> None:
    parser = build_parser()
    given = COMMAND.config(parser.parse_args(["venue", "binance", "--symbols", "ETH/USDT,SOL/USDT"]))
    assert given.symbols == ("ETH/USDT", "SOL/USDT")
    assert COMMAND.config(parser.parse_args(["venue", "binance"])).symbols is None
    with pytest.raises(InvalidArgument, match="symbols"):
        VenueConfig("binance", symbols=())


def test_a_bad_list_is_one_line_naming_it_and_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    err = _refused(["venue", "binance", "--symbols", "BTC/USDT,,ETH/USDT"], capsys)
    assert "--symbols" in err and "'BTC/USDT,,ETH/USDT' names an empty symbol" in err


def test_a_live_venues_symbols_replace_its_configs_and_its_defaults(tmp_path: Path) -> None:
    path = tmp_path / "binance.toml"
    path.write_text('symbols = ["BTC/USDT", "NKN/USDT"]\nflush_ms = 0\n')
    assert load_config(SPEC, path).symbols == ("BTC/USDT", "NKN/USDT")
    replaced = load_config(SPEC, path, ["ETH/USDT"])
    assert replaced.symbols == ("ETH/USDT",) and replaced.flush_ms == 0  # the rest is the file's
    assert load_config(SPEC, None).symbols == ()  # the spec's defaults, chosen at start
    assert load_config(SPEC, None, ["ETH/USDT"]).symbols == ("ETH/USDT",)
    venue: Any = create_venue("binance", None, symbols=["ETH/USDT"])
    assert venue.config.symbols == ("ETH/USDT",)
    paper: Any = create_paper_venue("binance", path, None, None, ["SOL/USDT"])
    assert paper.inner.config.symbols == ("SOL/USDT",)


def test_a_symbol_the_exchange_has_no_market_of_is_refused_at_start_naming_it() -> None:
    config = load_config(SPEC, None, ["ETH/USDT", "FOO/USDT", "BAR/USDT"])
    markets: Any = {"BTC/USDT": {}, "ETH/USDT": {}}
    with pytest.raises(InvalidArgument) as refused:
        choose_symbols(SPEC, config, markets, None)
    assert "binance has no market FOO/USDT, BAR/USDT" in str(refused.value)
    # On a replay too: the symbols named, not the session's markets.
    assert choose_symbols(SPEC, load_config(SPEC, None, ["ETH/USDT"]), markets, ["NKNUSDT"]) == ["ETH/USDT"]


def test_the_sim_serves_a_subset_of_its_markets_and_refuses_another_naming_it(tmp_path: Path) -> None:
    assert [s.symbol for s in load_sim_config(None).symbols] == ["BTC/USDT", "ETH/USDT", "SOL/USDT"]
    chosen = load_sim_config(None, ["SOL/USDT", "BTC/USDT"])
    assert [s.symbol for s in chosen.symbols] == ["SOL/USDT", "BTC/USDT"]
    with pytest.raises(InvalidArgument) as refused:
        load_sim_config(None, ["ETH/USDT", "XRP/USDT"])
    assert "the sim has no market XRP/USDT (its markets: BTC/USDT, ETH/USDT, SOL/USDT" in str(refused.value)
    path = tmp_path / "sim.toml"
    path.write_text(
        '[[symbols]]\nsymbol = "NKN/USDT"\nstart_price = "0.5"\ntick_size = "0.0001"\nlot_size = "1"\n'
    )
    with pytest.raises(InvalidArgument, match="no market BTC/USDT"):
        load_sim_config(path, ["BTC/USDT"])
    venue = create_venue("sim", None, symbols=["ETH/USDT"])
    assert [i.symbol for i in venue.instruments()] == ["ETH/USDT"]


def test_a_plug_ins_create_venue_gets_symbols_only_when_it_takes_them() -> None:
    def old(config_path: Any, replay: Any = None, account: Any = None) -> None: ...

    def new(config_path: Any, replay: Any = None, account: Any = None, symbols: Any = None) -> None: ...

    def loose(config_path: Any, *args: Any, **kwargs: Any) -> None: ...

    assert not _takes_symbols(old)
    assert _takes_symbols(new) and _takes_symbols(loose)


def test_a_download_passes_the_symbols_unless_its_venue_arguments_name_them(tmp_path: Path) -> None:
    assert _names_symbols(["--replay", "BINANCE.0"]) == ""
    assert _names_symbols(["--config", "binance.toml"]) == "--config"
    assert _names_symbols(["--replay", "x", "--config=binance.toml"]) == "--config"
    assert _names_symbols(["--symbols=BTC/USDT"]) == "--symbols"
    log = tmp_path / "binance.log"
    log.write_text("INFO replay stand-in on port 1\ntrademesh: symbols: binance has no market FOO/USDT\n")
    assert _refused_symbols(log) == "binance has no market FOO/USDT"
    log.write_text("trademesh: replay: no such file\n")
    assert _refused_symbols(log) is None


def test_a_plug_in_without_a_symbols_parameter_refuses_the_flag_in_one_line(tmp_path: Path) -> None:
    create = "def create_venue(config_path, replay=None, account=None):\n    raise AssertionError\n"
    write_package(tmp_path, "old-venue", {"old": "old_venue"}, {"old_venue": create})
    args = ["venue", "old", "--port", "0", "--metrics-port", "-1", "--symbols", "BTC/USDT"]
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "trademesh.core.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "trademesh: symbols: venue 'old' of package old-venue 0.1.0 takes no --symbols (its create_venue "
        "has no `symbols` parameter): its config names the symbols it serves"
    ]
