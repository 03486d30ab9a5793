"""`trademesh up --without NAME[,NAME...]`: the services named are left out of the mesh, each
said with why; the gateway, the venue and a service a started one depends on cannot be."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from trademesh.core.cli import build_parser
from trademesh.core.cli.mesh.up import UpOptions, check_without, planned, waves
from trademesh.core.platform.config.env import TELEGRAM_BOT_TOKEN
from trademesh.core.platform.errors import InvalidArgument

UNNEEDED = ("backtester", "overwatch", "screener", "supervisor")


def test_the_services_named_are_left_out_and_said_so_the_rest_in_their_groups(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(TELEGRAM_BOT_TOKEN, raising=False)
    everything, _ = planned()
    started, left = planned(UNNEEDED)
    assert [e.name for e in started] == [e.name for e in everything if e.name not in UNNEEDED]
    assert [(n, why) for n, why in left if n in UNNEEDED] == [(n, "left out (--without)") for n in UNNEEDED]
    groups = waves(started)
    assert [e.name for e in groups[0]] == ["gateway"] and {e.name for e in groups[1]} == {"venue"}


def test_the_flag_takes_lists_and_repeats(tmp_path: Path) -> None:
    args = build_parser().parse_args(["up", "--without", "backtester,screener", "--without", "overwatch"])
    assert args.without == ["backtester", "screener", "overwatch"]
    assert build_parser().parse_args(["up"]).without == []
    assert UpOptions(tmp_path, without=("backtester",)).without == ("backtester",)


@pytest.mark.parametrize(
    ("names", "said"),
    [
        (("nothing",), r"^without: nothing: no such service \(those up can leave out: ingest, "),
        (("gateway",), r"^without: gateway: the mesh needs it"),
        (("venue",), r"^without: venue: the mesh needs it"),
        (("bars",), r"^without: bars: overwatch, screener depend on it \(leave those out too\)$"),
        (("bars", "overwatch"), r"^without: bars: screener depends on it \(leave those out too\)$"),
        (("bridge",), r"^without: bridge: advisor depends on it"),
    ],
)
def test_what_the_mesh_needs_is_refused_naming_the_flag(names: tuple[str, ...], said: str) -> None:
    with pytest.raises(InvalidArgument, match=said) as refused:
        check_without(names)
    assert refused.value.violations[0].field == "without"


def test_a_service_goes_with_those_that_depend_on_it() -> None:
    check_without(("bars", "overwatch", "screener"))
    check_without(("bridge", "advisor"))
    check_without(UNNEEDED)


def test_up_refuses_it_before_starting_anything(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "trademesh.core.cli",
            "up",
            "--data-dir",
            str(tmp_path),
            "--without",
            "gateway",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2, done.stderr
    assert "without" in done.stderr and "gateway: the mesh needs it" in done.stderr
    assert not (tmp_path / "redis").exists() and not (tmp_path / "postgresql").exists()
