"""`trademesh up` and the Telegram bot (docs/telegram.md): started only when configured (a bot
token and the chats allowed in up's environment), after the gateway, given the mesh's gateway and
a key of its own that no other service gets (nor the bot any other service's)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from trademesh.core.cli import build_parser
from trademesh.core.cli.mesh.up import UpOptions, _Mesh, planned
from trademesh.core.platform.config.env import (
    SUPERVISOR_API_KEY,
    TELEGRAM_API_KEY,
    TELEGRAM_BOT_TOKEN,
    TELEGRAM_CHAT_ID,
    TELEGRAM_COMMAND_CHAT_IDS,
    TOKEN,
    TRADE_TOKEN,
)
from trademesh.core.platform.service.command import load_command
from trademesh.core.platform.service.registry import SERVICES

GATEWAY_URL = "http://127.0.0.1:8081"


@pytest.fixture
def no_bot(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for variable in (TELEGRAM_BOT_TOKEN, TELEGRAM_CHAT_ID, TELEGRAM_COMMAND_CHAT_IDS, TELEGRAM_API_KEY):
        monkeypatch.delenv(variable, raising=False)
    return monkeypatch


def test_without_a_bot_token_or_a_chat_up_leaves_the_bot_out_and_says_why(no_bot: pytest.MonkeyPatch) -> None:
    started, left = planned()
    assert "telegram" not in {e.name for e in started} and "supervisor" in {e.name for e in started}
    assert left == [("telegram", f"{TELEGRAM_BOT_TOKEN} is not set (docs/telegram.md)")]
    no_bot.setenv(TELEGRAM_BOT_TOKEN, "123:token")
    _, left = planned()
    assert left == [
        ("telegram", f"no chat allowed: set {TELEGRAM_COMMAND_CHAT_IDS} (or the notices' {TELEGRAM_CHAT_ID})")
    ]


def test_with_a_bot_token_and_its_chats_up_starts_the_bot_after_the_gateway_on_the_mesh(
    no_bot: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    no_bot.setenv(TELEGRAM_BOT_TOKEN, "123:token")
    no_bot.setenv(TELEGRAM_COMMAND_CHAT_IDS, "42,-1001")
    started, left = planned()
    names = [e.name for e in started]
    assert left == [] and set(names) == set(SERVICES)
    assert names.index("gateway") < names.index("telegram")
    mesh = _Mesh(UpOptions(tmp_path), {TOKEN: "mesh"}, {TRADE_TOKEN: "trade", TELEGRAM_API_KEY: "bot-key"})
    mesh.view = dataclasses.replace(mesh.view, gateway_url=GATEWAY_URL)
    spec = mesh.spec(SERVICES["telegram"], load_command(SERVICES["telegram"]))
    args = spec.args({})
    assert args == ["telegram", "--gateway-url", GATEWAY_URL]
    # What up gives it makes a whole config: its gateway, its key, the chats of up's environment.
    no_bot.setenv(TELEGRAM_API_KEY, spec.env[TELEGRAM_API_KEY])
    config = load_command(SERVICES["telegram"]).config(build_parser().parse_args(args))
    assert (config.gateway_url, config.api_key) == (GATEWAY_URL, "bot-key")
    assert config.chats == frozenset({42, -1001})


def test_the_bots_and_the_supervisors_keys_reach_their_own_service_alone(tmp_path: Path) -> None:
    restricted = {TRADE_TOKEN: "trade", TELEGRAM_API_KEY: "bot-key", SUPERVISOR_API_KEY: "sv-key"}
    mesh = _Mesh(UpOptions(tmp_path), {TOKEN: "mesh"}, restricted)
    envs = {e.name: mesh.spec(e, load_command(e)).env for e in SERVICES.values()}
    given = {name: (env[TELEGRAM_API_KEY], env[SUPERVISOR_API_KEY]) for name, env in envs.items()}
    assert given.pop("telegram") == ("bot-key", "")
    assert given.pop("supervisor") == ("", "sv-key")
    # Every other service has both set empty: the inspector too (it holds accounts' trading
    # credentials besides the mesh's, no service's key).
    assert "inspector" in given and set(given.values()) == {("", "")}
