"""`trademesh up` starts its services in groups (trademesh.core.cli.mesh.up.waves): the gateway
alone, the venues next, then each service in the first group after all it depends on; and
`up --screens DIR` gives the Screener that directory of screens."""

from __future__ import annotations

from pathlib import Path

import pytest

from trademesh.core.cli import build_parser
from trademesh.core.cli.mesh.up import UpOptions, _Mesh, planned, waves
from trademesh.core.platform.config.env import TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID
from trademesh.core.platform.service.command import load_command
from trademesh.core.platform.service.registry import SERVICES, Kind, start_order


@pytest.mark.parametrize("bot", [False, True])
def test_each_service_starts_in_a_group_after_all_it_depends_on(
    monkeypatch: pytest.MonkeyPatch, bot: bool
) -> None:
    if bot:  # the Telegram bot planned too
        monkeypatch.setenv(TELEGRAM_BOT_TOKEN, "123:token")
        monkeypatch.setenv(TELEGRAM_CHAT_ID, "42")
    entries = planned()[0]
    groups = waves(entries)
    assert [e.name for e in groups[0]] == ["gateway"]
    assert [e.kind for e in groups[1]] == [Kind.VENUE]
    index = {e.name: i for i, group in enumerate(groups) for e in group}
    assert sorted(index) == sorted(e.name for e in entries)  # each once
    for entry in entries:
        for needed in (d for d in entry.depends_on if d in index):
            assert index[needed] < index[entry.name], f"{entry.name} starts with or before {needed}"
        if entry.kind is Kind.CORE:
            assert index[entry.name] >= 2, f"{entry.name} starts beside the venue"
    # Each group at the first it can: one of a later group depends on one of the group before.
    for later, group in enumerate(groups[3:], start=3):
        for entry in group:
            assert any(index[d] == later - 1 for d in entry.depends_on if d in index), entry.name
    assert ("telegram" in index) is bot


def test_the_groups_keep_the_start_order_within_each() -> None:
    order = [e.name for e in start_order()]
    for group in waves(start_order()):
        names = [e.name for e in group]
        assert names == sorted(names, key=order.index)


def test_up_screens_reach_the_screener_alone(tmp_path: Path) -> None:
    args = build_parser().parse_args(["up", "--screens", str(tmp_path)])
    assert args.screens == tmp_path
    assert build_parser().parse_args(["up"]).screens is None
    for options in (
        UpOptions(tmp_path, screens_dir=tmp_path),
        UpOptions(tmp_path, paper="binance", screens_dir=tmp_path),
    ):
        mesh = _Mesh(options, {})
        for name, entry in SERVICES.items():
            given = mesh.spec(entry, load_command(entry)).args({})
            assert ("--screens" in given) is (name == "screener"), given
            if name == "screener":
                assert given[given.index("--screens") + 1] == str(tmp_path)
    shipped = _Mesh(UpOptions(tmp_path), {})
    assert "--screens" not in shipped.spec(SERVICES["screener"], load_command(SERVICES["screener"])).args({})
