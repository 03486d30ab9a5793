"""The Telegram bot against Bot API answers it cannot read (issue 57 item 12): a getUpdates
answer nested thousands deep stopped the bot with a RecursionError, and again after each
restart (the update stayed in Telegram's queue). Now such an answer is refused in one warning
line, the update is skipped alone, and the operators' message after it is answered. The bot is
a process, the Bot API a stand-in speaking its HTTP (tests/telegram_standin.py); no gateway is
needed for a message that is no command (the bot answers it with its help)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.telegram_standin import bot_api_standin
from trademesh.core.platform.config.env import TELEGRAM_API_KEY, TELEGRAM_BASE_URL, TELEGRAM_BOT_TOKEN
from trademesh.core.platform.service.process import start_service

pytestmark = pytest.mark.integration

BOT_TOKEN = "123456:telegram-test-token"
OPS = 4242
DEEP = {
    "a message nested deep": '"message": {"chat": {"id": 4242}, "text": ' + "[" * 5000 + "]" * 5000 + "}",
    "a deep unknown field": '"poll": ' + '{"a": ' * 3000 + "1" + "}" * 3000,
}


@pytest.mark.parametrize("fields", DEEP.values(), ids=DEEP.keys())
async def test_a_deeply_nested_update_is_skipped_in_one_line_and_the_next_message_answered(
    tmp_path: Path, fields: str
) -> None:
    async with bot_api_standin(BOT_TOKEN) as standin:
        env = {
            **os.environ,
            TELEGRAM_BOT_TOKEN: BOT_TOKEN,
            TELEGRAM_API_KEY: "tmk_x",
            TELEGRAM_BASE_URL: standin.url,
        }
        log_path = tmp_path / "telegram.log"
        with log_path.open("w") as log:
            bot = start_service(
                ["telegram", "--port", "0", "--metrics-port", "-1", "--gateway-url", "http://127.0.0.1:1",
                 "--chat-ids", str(OPS), "--poll-s", "1"],
                env=env, stderr=log, timeout_s=60,
            )  # fmt: skip
        try:
            await standin.push_raw(fields)
            await standin.say(OPS, "hello")
            reply = await standin.reply_to(OPS, 0, timeout_s=30)
            assert "/status" in reply  # the help
            assert bot.process.poll() is None
        finally:
            bot.terminate()
        logged = log_path.read_text()
        assert "Traceback" not in logged and "RecursionError" not in logged, logged
        skipped = [line for line in logged.splitlines() if "nested deeper than 64 levels" in line]
        assert len(skipped) == 1 and "update 1000 skipped" in skipped[0], logged
        assert BOT_TOKEN not in logged
