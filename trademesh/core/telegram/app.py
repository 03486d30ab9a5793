"""The Telegram bot: the Bot API long-polled, each message heard by the conversation
(trademesh.core.telegram.commands), its action carried out through the mesh's tools with the bot's own key
(trademesh.core.telegram.tools), the answer sent back. A failing Bot API is retried with backoff and
counted; a refused or failed action is said to the operator in the chat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import aiohttp

from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.errors import TrademeshError, Unavailable
from trademesh.core.platform.mesh_tools import MeshTools
from trademesh.core.platform.service.lifecycle import ServiceContext, WorkerApp
from trademesh.core.telegram import metrics, replies
from trademesh.core.telegram.bot_api import BotApi, Message
from trademesh.core.telegram.commands import Action, CommandKind, Conversation
from trademesh.core.telegram.config import TelegramConfig

__all__ = ["TelegramApp", "TelegramConfig"]

log = logging.getLogger(__name__)


class TelegramApp(WorkerApp[TelegramConfig]):
    name = "telegram"

    def __init__(self, config: TelegramConfig) -> None:
        super().__init__(config)
        self.conversation = Conversation(config.chats)
        self.tools = MeshTools(config.gateway_url, config.api_key)

    async def run(self, ctx: ServiceContext) -> None:
        async with aiohttp.ClientSession() as session:
            bot = BotApi(self.config.base_url, self.config.bot_token, session)
            await ctx.ready()
            await self._poll(bot, ctx.stop)

    async def _poll(self, bot: BotApi, stop: asyncio.Event) -> None:
        offset, backoff = 0, Backoff(0.5, 30.0)
        while not stop.is_set():
            polling = asyncio.ensure_future(bot.updates(offset, self.config.poll_s))
            stopping = asyncio.ensure_future(stop.wait())
            await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if stop.is_set():
                with contextlib.suppress(TrademeshError):
                    await cancel_and_wait(polling)
                return
            try:
                updates = polling.result()
            except TrademeshError as exc:
                metrics.POLL_ERRORS.inc()
                log.warning("telegram: %s", exc)
                await sleep_unless(stop, backoff.next())
                continue
            backoff.reset()
            for update in updates:
                offset = max(offset, int(update["update_id"]) + 1)
                message = Message.of(update)
                if message is not None:
                    await self._answer(bot, message)

    async def _answer(self, bot: BotApi, message: Message) -> None:
        turn = self.conversation.hear(message.chat, message.who, message.text, time.time_ns())
        if turn.ignored:
            metrics.IGNORED.inc()
            return
        reply = turn.reply
        if turn.action is not None:
            reply = await self._act(turn.action)
        else:
            metrics.COMMANDS.labels("none", "said").inc()
        try:
            await bot.send(message.chat, reply)
        except TrademeshError as exc:
            log.warning("telegram: the reply to %s: %s", message.chat, exc)

    async def _act(self, action: Action) -> str:
        try:
            text = await self._call(action)
        except TrademeshError as exc:
            outcome = "unavailable" if isinstance(exc, Unavailable) else "refused"
            metrics.COMMANDS.labels(action.kind.value, outcome).inc()
            return f"{action.kind.value}: {exc}"
        metrics.COMMANDS.labels(action.kind.value, "done").inc()
        return text

    async def _call(self, action: Action) -> str:
        if action.kind is CommandKind.STATUS:
            return replies.status_text(await self.tools.call("inspector_state"))
        if action.kind in (CommandKind.PAUSE, CommandKind.RESUME):
            tool = "pause_strategy" if action.kind is CommandKind.PAUSE else "resume_strategy"
            return replies.switched_text(await self.tools.call(tool, strategy=action.strategy))
        tool = "close_all" if action.kind is CommandKind.CLOSE_ALL else "inspector_resume"
        return replies.mode_text(await self.tools.call(tool, reason=action.reason))
