"""A stand-in for the Telegram Bot API (https://trademesh.core.telegram.org/bots/api), speaking its HTTP:
`POST /bot<token>/getUpdates` (form or JSON `offset`, `timeout`, `limit`: long polling, answered as soon
as an update at or past the offset is there, else after `timeout` s with none) and
`POST /bot<token>/sendMessage` (`chat_id`, `text`), each answering `{"ok": true, "result": ...}`,
a wrong token `{"ok": false, "error_code": 401, "description": "Unauthorized"}` as Telegram does.
A test says things into chats (`say`) and reads what the bot sent (`sent`, `reply_to`)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

from aiohttp import web

__all__ = ["BotApiStandin", "bot_api_standin"]

Json = dict[str, Any]
_MAX_WAIT_S = 50.0
_RAW = "__raw__"  # an update's fields as JSON text, sent as they are


class BotApiStandin:
    def __init__(self, token: str) -> None:
        self.token = token
        self.updates: list[Json] = []
        self.sent: list[tuple[int, str]] = []
        self.polls = 0
        self._changed = asyncio.Condition()
        self.url = ""

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/bot{token}/getUpdates", self._get_updates)
        app.router.add_post("/bot{token}/sendMessage", self._send_message)
        return app

    async def say(self, chat: int, text: str, username: str = "alice") -> None:
        """A message from `username` in `chat`, as an update."""
        sender = {"id": 7000 + chat % 1000, "is_bot": False, "first_name": username, "username": username}
        where = {"id": chat, "type": "private"}
        message = {
            "message_id": 1000 + len(self.updates),
            "date": 1_800_000_000,
            "chat": where,
            "from": sender,
            "text": text,
        }
        await self.push({"message": message})

    async def push(self, update: Json) -> None:
        """`update` (anything but its id: a message, an edit, a channel post, a malformed one)
        numbered next, as Telegram numbers them."""
        async with self._changed:
            self.updates.append({"update_id": 1000 + len(self.updates), **update})
            self._changed.notify_all()

    async def push_raw(self, fields: str) -> None:
        """An update whose fields (beside its id) are the JSON text `fields` as given: what no
        json.dumps makes (nested thousands deep, a lone surrogate's escape)."""
        await self.push({_RAW: fields})

    async def reply_to(self, chat: int, after: int, timeout_s: float = 30.0) -> str:
        """The first message the bot sent to `chat` past the first `after` it sent at all."""

        def found() -> str | None:
            return next((text for c, text in self.sent[after:] if c == chat), None)

        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: found() is not None), timeout_s)
            text = found()
            assert text is not None
            return text

    async def polled(self, at_least: int, timeout_s: float = 30.0) -> None:
        """Until the bot has called getUpdates `at_least` times (it is listening)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: self.polls >= at_least), timeout_s)

    async def _params(self, request: web.Request) -> Json:
        if request.content_type == "application/json":
            body = await request.json()
            return dict(body) if isinstance(body, dict) else {}
        return dict(await request.post())

    def _refused(self, request: web.Request) -> web.Response | None:
        if request.match_info["token"] != self.token:
            return web.json_response(
                {"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401
            )
        return None

    async def _get_updates(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        params = await self._params(request)
        offset, wait_s = (
            int(params.get("offset", 0) or 0),
            min(float(params.get("timeout", 0) or 0), _MAX_WAIT_S),
        )
        limit = min(max(int(params.get("limit", 100) or 100), 1), 100)  # the Bot API's 1..100

        def pending() -> list[Json]:
            return [u for u in self.updates if u["update_id"] >= offset][:limit]

        async with self._changed:
            self.polls += 1
            self._changed.notify_all()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: bool(pending())), wait_s)
            result = ", ".join(_update_text(u) for u in pending())
            return web.Response(text=f'{{"ok": true, "result": [{result}]}}', content_type="application/json")

    async def _send_message(self, request: web.Request) -> web.Response:
        refused = self._refused(request)
        if refused is not None:
            return refused
        params = await self._params(request)
        chat, text = int(params["chat_id"]), str(params["text"])
        async with self._changed:
            self.sent.append((chat, text))
            self._changed.notify_all()
        return web.json_response({"ok": True, "result": {"message_id": len(self.sent), "chat": {"id": chat},
                                                         "text": text}})  # fmt: skip


def _update_text(update: Json) -> str:
    if _RAW in update:
        return f'{{"update_id": {update["update_id"]}, {update[_RAW]}}}'
    return json.dumps(update)


@asynccontextmanager
async def bot_api_standin(token: str) -> AsyncIterator[BotApiStandin]:
    standin = BotApiStandin(token)
    runner = web.AppRunner(standin.app())
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    standin.url = f"http://127.0.0.1:{port}"
    try:
        yield standin
    finally:
        await runner.cleanup()
