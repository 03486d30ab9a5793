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
from pathlib import Path

import grpc
import pytest

from core.foundations.env import (
    DATABASE_URL,
    GATEWAY,
    REDIS_URL,
    SESSION_SECRET,
    TELEGRAM_API_KEY,
    TELEGRAM_BASE_URL,
    TELEGRAM_BOT_TOKEN,
    TOKEN,
)
from core.foundations.process import ServiceProcess, start_service
from tests.integration.gateway_support import create_key
from tests.integration.mesh import WARM_HISTORY_S, MeshProcesses, redis_db, sim_config, venue_link
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from tests.telegram_standin import BotApiStandin, bot_api_standin
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.patch.v1 import patch_pb2_grpc as pb_grpc
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["database_url", "redis_url"]  # fixtures

BOT_TOKEN = "123456:telegram-test-token"
OPS, STRANGER = 4242, 999
AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)


@dataclass
class Mesh:
    standin: BotApiStandin
    detector: ServiceProcess
    inspector: ServiceProcess

    async def patch_states(self, strategy: str) -> set[int]:
        async with grpc.aio.insecure_channel(self.detector.address) as channel:
            listed = await pb_grpc.PatchStub(channel).ListPatches(
                pb.ListPatchesRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
            )
        return {p.state for p in listed.patches if p.patch_id.startswith(f"{strategy}/")}

    async def risk_state(self) -> int:
        async with grpc.aio.insecure_channel(self.inspector.address) as channel:
            got = await rk_grpc.InspectorStub(channel).GetRiskState(
                rk.GetRiskStateRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
            )
        return got.state

    async def ask(self, text: str, chat: int = OPS) -> str:
        """What the bot answers `text` in `chat` (the operators' by default)."""
        before = len(self.standin.sent)
        await self.standin.say(chat, text)
        return await self.standin.reply_to(chat, before, timeout_s=60)


def _gateway(directory: Path, redis: str, database: str) -> ServiceProcess:
    log = (directory / "gateway.log").open("w")
    args = [
        "gateway",
        "--port",
        "0",
        "--grpc-port",
        "0",
        "--heartbeat-interval-s",
        "1",
        "--registry-ttl-s",
        "5",
    ]
    env = {TOKEN: TEST_TOKEN, DATABASE_URL: database, REDIS_URL: redis,
           SESSION_SECRET: "telegram-test-session-secret-0123456789abcdef"}  # fmt: skip
    return start_service(args, env=env, stderr=log, timeout_s=60)


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, database_url: str
) -> AsyncIterator[Mesh]:
    directory = tmp_path_factory.mktemp("telegram")
    async with contextlib.AsyncExitStack() as stack:
        database = await stack.enter_async_context(new_database(database_url, "telegram"))
        redis = await stack.enter_async_context(redis_db(redis_url))
        gateway = _gateway(directory, redis, database)
        stack.callback(gateway.terminate)
        processes = MeshProcesses(directory, redis, database)
        processes.env[GATEWAY] = f"127.0.0.1:{gateway.info['grpc_port']}"
        stack.push_async_callback(processes.stop_all)
        config = sim_config(directory, trades_per_s=5, book_updates_per_s=10, history_s=WARM_HISTORY_S)
        venue = processes.start("venue", "sim", "--config", str(config))
        detector = processes.start("detector", *venue_link("detector", venue.address))
        inspector = processes.start("inspector", *venue_link("inspector", venue.address))
        key = await create_key(database, "telegram", ["read", "trade", "close_all"])
        standin = await stack.enter_async_context(bot_api_standin(BOT_TOKEN))
        bot_env = {**os.environ, TELEGRAM_BOT_TOKEN: BOT_TOKEN, TELEGRAM_API_KEY: key,
                   TELEGRAM_BASE_URL: standin.url}  # fmt: skip
        bot_log = (directory / "telegram.log").open("w")
        gateway_url = f"http://127.0.0.1:{gateway.port}"
        bot = start_service(
            ["telegram", "--port", "0", "--metrics-port", "-1", "--gateway-url", gateway_url,
             "--chat-ids", str(OPS), "--poll-s", "1"],
            env=bot_env, stderr=bot_log, timeout_s=60,
        )  # fmt: skip
        stack.callback(bot.terminate)
        found = Mesh(standin, detector, inspector)

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
