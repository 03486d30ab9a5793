"""`trademesh up --venue-external NAME=HOST:PORT` (trademesh.core.cli.mesh.external): parsed by the rules of a
service's --venue, refused in one line naming it when NAME is bad, given twice or a venue `up`
runs, or when nothing answers at HOST:PORT (tests/integration/test_external_venue_mesh.py runs the
whole mesh with one)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from trademesh.core.cli import build_parser, main
from trademesh.core.cli.mesh.external import ExternalVenue, check_external
from trademesh.core.platform.errors import Unavailable


def _fails(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = int(exc.code or 0)
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_up_takes_external_venues_as_name_equals_host_port() -> None:
    args = build_parser().parse_args(
        ["up", "--venue-external", "node-ref=127.0.0.1:5095", "--venue-external", "acme=10.0.0.7:6070"]
    )
    assert args.venue_external == [
        ExternalVenue("node-ref", "127.0.0.1:5095"),
        ExternalVenue("acme", "10.0.0.7:6070"),
    ]
    assert build_parser().parse_args(["up"]).venue_external == []


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("node-ref", "'node-ref' is not NAME=HOST:PORT"),
        ("Node_Ref=127.0.0.1:5095", "'Node_Ref' is not a venue name"),
        ("node-ref=127.0.0.1", "'127.0.0.1' is not HOST:PORT"),
        ("node-ref=127.0.0.1:70000", "'127.0.0.1:70000' is not HOST:PORT with a port from 1 to 65535"),
    ],
)
def test_a_bad_external_venue_is_refused_naming_it(
    value: str, said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _fails(["up", "--venue-external", value], capsys)
    assert "argument --venue-external" in err and said in err, err


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--venue-external", "sim=127.0.0.1:5095"], "sim=127.0.0.1:5095: up runs a venue named sim"),
        (
            ["--venue-account", "sim=desk-a", "--venue-external", "sim.desk-a=127.0.0.1:1"],
            "sim.desk-a=127.0.0.1:1: up runs a venue named sim.desk-a",
        ),
        (["--paper", "binance", "--venue-external", "binance=127.0.0.1:1"], "up runs a venue named binance"),
        (
            ["--venue-external", "a=127.0.0.1:1", "--venue-external", "a=127.0.0.1:2"],
            "--venue-external a=127.0.0.1:2: a given twice",
        ),
    ],
)
def test_an_external_venue_named_as_one_of_the_mesh_is_refused(
    argv: list[str], said: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = _fails(["up", "--data-dir", str(tmp_path / "data"), *argv], capsys)
    assert err.startswith("trademesh: venue-external: ") and said in err, err
    assert not (tmp_path / "data").exists(), "up started before refusing"


async def test_up_says_which_external_venue_does_not_answer() -> None:
    with socket.socket() as sock:  # a port nobody serves: bound, not listening
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(Unavailable) as caught:
            await check_external(ExternalVenue("node-ref", address), "token", wait_s=1)
    said = str(caught.value)
    assert said.startswith(f"--venue-external node-ref={address}: its health did not say SERVING within 1 s")
    assert "UNAVAILABLE" in said and "\n" not in said
