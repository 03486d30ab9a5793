"""Operators' Telegram commands (`trademesh telegram`, docs/telegram.md) against a real mesh:
a gateway, the sim, a detector running the example strategies and an inspector as processes,
the bot as a process with its own API key (read, trade, close_all), and a stand-in for the
Bot API speaking its HTTP (tests/telegram_standin.py). What each command did is read back from
the services themselves (the detector's patches, the inspector's state), not from the bot."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from tests.integration.client_mesh import ClientMesh, client_mesh
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from tests.telegram_standin import BotApiStandin, bot_api_standin
from trademesh.core.platform.config.env import TELEGRAM_API_KEY, TELEGRAM_BASE_URL, TELEGRAM_BOT_TOKEN
from trademesh.core.platform.service.process import start_service
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.risk.v1 import inspector_pb2 as rk

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["database_url", "redis_url"]  # fixtures

BOT_TOKEN = "123456:telegram-test-token"
OPS, STRANGER = 4242, 999


@dataclass
class Mesh:
    standin: BotApiStandin
    services: ClientMesh

    async def patch_states(self, strategy: str) -> set[int]:
        return await self.services.patch_states(strategy)

    async def risk_state(self) -> int:
        return await self.services.risk_state()

    async def ask(self, text: str, chat: int = OPS) -> str:
        """What the bot answers `text` in `chat` (the operators' by default)."""
        before = len(self.standin.sent)
        await self.standin.say(chat, text)
        return await self.standin.reply_to(chat, before, timeout_s=60)


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, database_url: str
) -> AsyncIterator[Mesh]:
    directory = tmp_path_factory.mktemp("telegram")
    async with contextlib.AsyncExitStack() as stack:
        scopes = ["read", "trade", "close_all"]
        services = await stack.enter_async_context(client_mesh(directory, redis_url, database_url, scopes))
        standin = await stack.enter_async_context(bot_api_standin(BOT_TOKEN))
        bot_env = {**os.environ, TELEGRAM_BOT_TOKEN: BOT_TOKEN, TELEGRAM_API_KEY: services.key,
                   TELEGRAM_BASE_URL: standin.url}  # fmt: skip
        bot_log = (directory / "telegram.log").open("w")
        bot = start_service(
            ["telegram", "--port", "0", "--metrics-port", "-1", "--gateway-url", services.gateway_url,
             "--chat-ids", str(OPS), "--poll-s", "1"],
            env=bot_env, stderr=bot_log, timeout_s=60,
        )  # fmt: skip
        stack.callback(bot.terminate)
        found = Mesh(standin, services)

        async def registered() -> bool | None:  # the gateway knows the detector and the inspector
            reply = await found.ask("/status")
            return True if reply.startswith("Risk: active") else None

        await until(registered, 60, 1.0, "the bot to read the inspector's state through the gateway")
        yield found


async def test_a_stranger_gets_no_answer_and_the_operators_get_the_status(mesh: Mesh) -> None:
    await mesh.standin.say(STRANGER, "/status")
    reply = await mesh.ask("/status")
    # The bot reads its updates in order: the stranger's was handled before the operators' reply.
    assert reply.startswith("Risk: active") and "Equity" in reply, reply
    assert not [chat for chat, _ in mesh.standin.sent if chat == STRANGER]


async def test_pause_and_resume_switch_the_strategys_patches_at_the_detector(mesh: Mesh) -> None:
    paused = await mesh.ask("/pause trend")
    assert paused.startswith("trend:") and "paused" in paused, paused
    assert await mesh.patch_states("trend") == {pb.PATCH_STATE_PAUSED}
    resumed = await mesh.ask("/resume trend")
    assert "active" in resumed and "paused" not in resumed, resumed
    assert await mesh.patch_states("trend") == {pb.PATCH_STATE_ACTIVE}


async def test_pause_and_resume_switch_the_patches_not_yet_switched_and_refuse_none_already_there(
    mesh: Mesh,
) -> None:
    """/pause twice, and /resume of a strategy paused on one of its markets only (by hand at the
    detector): the fuzz's bot once met each refused at the first patch already switched."""
    await mesh.ask("/pause trend")
    again = await mesh.ask("/pause trend")
    assert again.startswith("trend: 2 patches") and again.count(": paused") == 2, again
    await mesh.services.set_patches("trend", paused=False, market="sim/BTC/USDT")
    assert await mesh.patch_states("trend") == {pb.PATCH_STATE_PAUSED, pb.PATCH_STATE_ACTIVE}
    resumed = await mesh.ask("/resume trend")
    assert resumed.startswith("trend: 2 patches") and resumed.count(": active") == 2, resumed
    assert await mesh.patch_states("trend") == {pb.PATCH_STATE_ACTIVE}


async def test_a_strategy_no_detector_runs_and_a_bad_name_are_said_and_change_nothing(mesh: Mesh) -> None:
    assert "no detector runs a strategy 'nosuch'" in await mesh.ask("/pause nosuch")
    assert "is not a strategy id" in await mesh.ask("/pause ../trend")
    assert await mesh.patch_states("trend") == {pb.PATCH_STATE_ACTIVE}


async def test_closeall_waits_for_its_confirm_then_halts_and_resume_takes_it_back(mesh: Mesh) -> None:
    asked = await mesh.ask("/closeall")
    assert "/confirm" in asked and await mesh.risk_state() == rk.RISK_STATE_ACTIVE
    assert (await mesh.ask("/confirm")) == "Risk: halted"
    assert await mesh.risk_state() == rk.RISK_STATE_HALTED
    assert (await mesh.ask("/confirm")).startswith("Nothing to confirm")  # single use
    assert (await mesh.ask("/resume")) == "Risk: active"
    assert await mesh.risk_state() == rk.RISK_STATE_ACTIVE
