"""`trademesh up --venue-account VENUE=ACCOUNT` (docs/accounts.md): the mesh also runs that
account as the venue VENUE.ACCOUNT, its own process on its own ports, with its own trading
credential when one is exported. Bad values are one line naming them, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from trademesh.core.cli import build_parser, main
from trademesh.core.cli.mesh.up import UpOptions, _Mesh
from trademesh.core.platform.config.env import TOKEN, TRADE_TOKEN
from trademesh.core.platform.service.command import load_command
from trademesh.core.platform.service.registry import SERVICES

DESK_A_TOKEN = "TRADEMESH_SIM__DESK_A_TRADE_TOKEN"
DESK_B_TOKEN = "TRADEMESH_SIM__DESK_B_TRADE_TOKEN"


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = int(exc.code or 0)
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_up_takes_venue_accounts_as_venue_equals_account() -> None:
    args = build_parser().parse_args(
        ["up", "--venue-account", "binance=desk-a", "--venue-account", "sim=desk-b"]
    )
    assert args.venue_account == [("binance", "desk-a"), ("sim", "desk-b")]
    assert build_parser().parse_args(["up"]).venue_account == []


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("binance", "'binance' is not VENUE=ACCOUNT (binance=desk-a); venues: binance,"),
        ("kraken2=desk-a", "'kraken2=desk-a' is not VENUE=ACCOUNT"),
        ("binance=Desk_A", "'binance=Desk_A': 'Desk_A' is not an account name"),
        ("binance=", "'binance=': '' is not an account name"),
    ],
)
def test_a_bad_venue_account_is_refused_naming_it(
    value: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _fails(["up", "--venue-account", value], capsys)
    assert "argument --venue-account" in err and said in err, err


def test_one_account_given_twice_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    err = _fails(["up", "--venue-account", "sim=desk-a", "--venue-account", "sim=desk-a"], capsys)
    assert "venue-account: sim=desk-a given twice" in err


def _mesh(tmp_path: Path, restricted: dict[str, str]) -> _Mesh:
    accounts = (("sim", "desk-a"), ("binance", "desk-b"))
    options = UpOptions(tmp_path, sim_config=tmp_path / "market.toml", venue_accounts=accounts)
    return _Mesh(options, {TOKEN: "mesh"}, restricted)


def test_an_account_runs_as_a_venue_command_named_for_it_on_free_ports_then_its_own(
    tmp_path: Path,
) -> None:
    mesh = _mesh(tmp_path, {TRADE_TOKEN: "trade"})
    command = load_command(SERVICES["venue"])
    spec = mesh.account_spec("sim", "desk-a", command)
    assert spec.name == "sim.desk-a"
    parser = build_parser()
    first = parser.parse_args(spec.args({}))
    assert (first.name, first.account, first.port, first.metrics_port) == ("sim", "desk-a", 0, 0)
    assert first.config == tmp_path / "market.toml"  # the mesh's sim config
    # Restarted: the ports it had (the gateway and the mesh's services know them).
    again = parser.parse_args(spec.args({"port": 41234, "metrics_port": 41235}))
    assert (again.port, again.metrics_port) == (41234, 41235)
    live = parser.parse_args(mesh.account_spec("binance", "desk-b", command).args({}))
    assert (live.name, live.account, live.config) == ("binance", "desk-b", None)
    assert spec.restart_delay_max_s == SERVICES["venue"].restart_delay_max_s


def test_an_account_gets_the_trading_credential_and_its_own_and_no_other_accounts(
    tmp_path: Path,
) -> None:
    restricted = {TRADE_TOKEN: "trade", DESK_A_TOKEN: "desk-a-own", DESK_B_TOKEN: "desk-b-own"}
    mesh = _mesh(tmp_path, restricted)
    env = mesh.account_spec("sim", "desk-a", load_command(SERVICES["venue"])).env
    assert (env[TOKEN], env[TRADE_TOKEN], env[DESK_A_TOKEN]) == ("mesh", "trade", "desk-a-own")
    assert env[DESK_B_TOKEN] == ""  # set empty: desk-b's own reaches desk-a's process never
    # The mesh's own venue (the sim) holds no account's own credential.
    plain = mesh.spec(SERVICES["venue"], load_command(SERVICES["venue"])).env
    assert (plain[DESK_A_TOKEN], plain[DESK_B_TOKEN]) == ("", "")
