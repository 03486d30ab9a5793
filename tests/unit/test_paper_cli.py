"""`--paper` on the command line (docs/paper.md): `trademesh venue NAME --paper [--paper-config
FILE]`, `trademesh up --paper VENUE`, $TRADEMESH_PAPER for compose. Every bad value is one line
naming it, exit code 2; a paper venue never keeps the exchange credentials it was given."""

from __future__ import annotations

import logging
import os
from decimal import Decimal
from pathlib import Path

import pytest

from trademesh.core.cli import build_parser, main
from trademesh.core.cli.mesh.up import UpOptions, _Mesh
from trademesh.core.platform.config.env import PAPER, paper_mode
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.service.command import MeshView, load_command
from trademesh.core.platform.service.registry import Kind, start_order
from trademesh.venues.command import COMMAND, VenueConfig
from trademesh.venues.paper import ignore_credentials
from trademesh.venues.paper.config import load_paper_config


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = int(exc.code or 0)
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_the_sim_cannot_be_paper_traded(capsys: pytest.CaptureFixture[str]) -> None:
    assert "'sim' makes its own market" in _fails(["venue", "sim", "--paper"], capsys)


def test_a_paper_config_without_paper_is_refused_naming_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "paper.toml"
    err = _fails(["venue", "binance", "--paper-config", str(path)], capsys)
    assert f"{path} given without --paper" in err


def test_a_paper_configs_bad_values_are_named_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "paper.toml"
    path.write_text('latency_ms = -5\ntaker_fee_rate = "0.5"\n[balances]\nUSDT = "lots"\n')
    with pytest.raises(InvalidArgument) as refused:
        load_paper_config(path)
    text = str(refused.value)
    assert "latency_ms" in text and "-5" in text and "taker_fee_rate" in text and "'lots'" in text
    assert str(path) in text


def test_a_paper_config_sets_the_account_and_the_fees(tmp_path: Path) -> None:
    path = tmp_path / "paper.toml"
    path.write_text('latency_ms = 0\nmaker_fee_rate = "-0.0001"\n[balances]\nUSDT = "2500.5"\n')
    config = load_paper_config(path)
    assert (config.latency_ms, str(config.maker_fee_rate), config.taker_fee_rate) == (0, "-0.0001", None)
    assert config.balances == (("USDT", Decimal("2500.5")),)


def test_up_paper_takes_only_a_live_venue(capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(["up", "--paper", "sim"], capsys)
    assert "'sim' is not a live venue to paper-trade" in err and "binance" in err
    assert "'kraken2' is not a live venue" in _fails(["up", "--paper", "kraken2"], capsys)


def test_up_paper_runs_no_sim_so_a_sim_config_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(["up", "--paper", "binance", "--sim-config", "market.toml"], capsys)
    assert "market.toml" in err and "--paper binance runs no sim" in err


def test_up_starts_the_paper_venue_in_place_of_the_sim() -> None:
    assert COMMAND.mesh_args(MeshView(venue="okx-swap", paper=True)) == ["okx-swap", "--paper"]
    assert COMMAND.mesh_args(MeshView()) == ["sim"]


def test_the_paper_variable_is_one_or_zero(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PAPER, "1")
    assert paper_mode()
    monkeypatch.setenv(PAPER, "0")
    assert not paper_mode()
    monkeypatch.setenv(PAPER, "yes")
    with pytest.raises(InvalidArgument, match="'yes' is not 1"):
        paper_mode()


def test_the_paper_variable_turns_a_live_venue_to_paper_but_not_the_sim(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(PAPER, "1")
    parser = build_parser()
    live = parser.parse_args(["venue", "binance"])
    assert COMMAND.config(live).paper
    sim = parser.parse_args(["venue", "sim"])
    assert not COMMAND.config(sim).paper
    assert VenueConfig("binance").paper is False


def test_a_paper_venue_drops_its_credentials_and_names_them_without_their_values(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("TRADEMESH_OKX_SWAP_API_KEY", "key-value-1")
    monkeypatch.setenv("TRADEMESH_OKX_SWAP_PASSPHRASE", "pass-value-2")
    monkeypatch.setenv("TRADEMESH_OKX_SWAP_API_SECRET", "")
    with caplog.at_level(logging.WARNING):
        dropped = ignore_credentials("okx-swap")
    assert dropped == ["TRADEMESH_OKX_SWAP_API_KEY", "TRADEMESH_OKX_SWAP_PASSPHRASE"]
    assert "ignores its credentials" in caplog.text
    assert "key-value-1" not in caplog.text and "pass-value-2" not in caplog.text
    assert "TRADEMESH_OKX_SWAP_API_KEY" not in os.environ


def test_up_paper_runs_the_live_venue_paper_trading_in_the_sims_place(tmp_path: Path) -> None:
    mesh = _Mesh(UpOptions(tmp_path, paper="binance"), {}, {})
    venue = next(entry for entry in start_order() if entry.kind is Kind.VENUE)
    spec = mesh.spec(venue, load_command(venue))
    assert spec.name == "binance" and spec.args({})[:3] == ["venue", "binance", "--paper"]
