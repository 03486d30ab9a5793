"""`trademesh up`'s secrets: the mesh token for every service, the trading credential for the venues
and the inspector only, each trading stream's signing key for its writer and the inspector only."""

from __future__ import annotations

from pathlib import Path

import pytest

from trademesh.core.cli.mesh.up import SIGNING_KEY_FILES, UpOptions, _Mesh, _secret
from trademesh.core.platform.config.env import (
    ADVISOR_SIGNING_KEY,
    DETECTOR_SIGNING_KEY,
    TOKEN,
    TRADE_TOKEN,
    account_trade_tokens,
)
from trademesh.core.platform.service.command import load_command
from trademesh.core.platform.service.registry import Kind, start_order


def test_only_venues_and_the_inspector_get_the_trading_credential(tmp_path: Path) -> None:
    mesh = _Mesh(UpOptions(tmp_path), {TOKEN: "mesh"}, {TRADE_TOKEN: "trade"})
    given = {}
    for entry in start_order():
        env = mesh.spec(entry, load_command(entry)).env
        assert env[TOKEN] == "mesh", entry.name
        given[entry.name] = env[TRADE_TOKEN]
    assert given["venue"] == given["inspector"] == "trade"
    # Every other service has it set empty: one exported in up's own environment reaches none.
    others = {name: value for name, value in given.items() if name not in ("venue", "inspector")}
    assert others and set(others.values()) == {""}
    assert {e.name for e in start_order() if e.kind is Kind.VENUE} == {"venue"}


def test_the_trading_credential_is_made_once_and_kept_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TRADE_TOKEN, raising=False)
    monkeypatch.delenv(TOKEN, raising=False)
    made = _secret(TRADE_TOKEN, tmp_path, "trade-token")
    assert len(made) >= 32
    assert (tmp_path / "trade-token").stat().st_mode & 0o777 == 0o600
    assert _secret(TRADE_TOKEN, tmp_path, "trade-token") == made
    assert made != _secret(TOKEN, tmp_path, "token")
    monkeypatch.setenv(TRADE_TOKEN, "from-the-environment")
    assert _secret(TRADE_TOKEN, tmp_path, "trade-token") == "from-the-environment"


def test_an_accounts_own_trading_credential_in_ups_shell_reaches_the_inspector_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRADEMESH_SIM__DESK_A_TRADE_TOKEN", "desk-a-own")
    restricted = {TRADE_TOKEN: "trade", **account_trade_tokens()}
    assert restricted == {TRADE_TOKEN: "trade", "TRADEMESH_SIM__DESK_A_TRADE_TOKEN": "desk-a-own"}
    mesh = _Mesh(UpOptions(tmp_path), {TOKEN: "mesh"}, restricted)
    given = {
        e.name: mesh.spec(e, load_command(e)).env["TRADEMESH_SIM__DESK_A_TRADE_TOKEN"] for e in start_order()
    }
    assert given.pop("inspector") == "desk-a-own"
    # Set empty everywhere else (the child's environment would otherwise inherit up's).
    assert given and set(given.values()) == {""}


def test_each_signing_key_reaches_its_writer_and_the_inspector_alone(tmp_path: Path) -> None:
    """docs/bus.md, "Who may write the trading streams": the advisor holds its key, the detector
    its own, the inspector both (it checks what they sign); no other service holds either."""
    restricted = {
        TRADE_TOKEN: "trade",
        ADVISOR_SIGNING_KEY: "advisor-key",
        DETECTOR_SIGNING_KEY: "detector-key",
    }
    mesh = _Mesh(UpOptions(tmp_path), {TOKEN: "mesh"}, restricted)
    given = {}
    for entry in start_order():
        env = mesh.spec(entry, load_command(entry)).env
        given[entry.name] = (env[ADVISOR_SIGNING_KEY], env[DETECTOR_SIGNING_KEY], env[TRADE_TOKEN])
    assert given.pop("advisor") == ("advisor-key", "", "")
    assert given.pop("detector") == ("", "detector-key", "")
    assert given.pop("inspector") == ("advisor-key", "detector-key", "trade")
    # Set empty everywhere else, so one exported in up's shell reaches no other service.
    assert given and {keys[:2] for keys in given.values()} == {("", "")}


def test_the_signing_keys_are_made_once_each_and_kept_private(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = {}
    for variable, file_name in SIGNING_KEY_FILES.items():
        monkeypatch.delenv(variable, raising=False)
        made[variable] = _secret(variable, tmp_path, file_name)
        assert len(made[variable]) >= 32 and _secret(variable, tmp_path, file_name) == made[variable]
        assert (tmp_path / file_name).stat().st_mode & 0o777 == 0o600
    assert len(set(made.values())) == 2  # a key of each writer's own
