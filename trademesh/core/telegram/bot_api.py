"""The Telegram Bot API, as the bot uses it: `getUpdates` (long polling) and `sendMessage`
(https://trademesh.core.telegram.org/bots/api), at a configurable base URL (a stand-in in tests). The
token is in the Bot API's path: never logged, never in an error (the URL is redacted)."""

from __future__ import annotations

import logging
import re
from typing import Any

import aiohttp

from trademesh.core.platform.errors import InvalidArgument, Unavailable
from trademesh.core.platform.logs.redact import redact_url
from trademesh.core.platform.parsing import loads_json

__all__ = ["BotApi", "MalformedAnswer", "Message"]

log = logging.getLogger(__name__)

Json = dict[str, Any]
_TEXT_LIMIT = 4096  # the Bot API's longest message
# getUpdates answers at most 100 updates of at most a few KiB each.
_MAX_ANSWER_BYTES = 16 * 1024 * 1024
_UPDATE_ID = re.compile(rb'"update_id"\s*:\s*(\d{1,19})')


class MalformedAnswer(Unavailable):
    """An answer that is not the Bot API's JSON (cut off, nested past the bound, too large)."""

    def __init__(self, message: str, body: bytes) -> None:
        super().__init__(message)
        self.body = body


class Message:
    """A text message from an update: its update id, chat, sender and text."""

    def __init__(self, update_id: int, chat: int, who: str, text: str) -> None:
        self.update_id, self.chat, self.who, self.text = update_id, chat, who, text

    @classmethod
    def of(cls, update: Json) -> Message | None:
        """The update's text message; None for anything else: not a message (an edit, a channel
        post, a button's callback), not text (a photo, a member joining), or a field not of the
        Bot API's type (a chat that is no object, an id that is no number): nothing to hear."""
        message = _object(update.get("message"))
        chat, text = _object(message.get("chat")).get("id"), message.get("text")
        if not isinstance(chat, int) or isinstance(chat, bool) or not isinstance(text, str):
            return None
        sender = _object(message.get("from"))
        who = sender.get("username") or sender.get("first_name") or str(sender.get("id", "someone"))
        return cls(int(update["update_id"]), chat, _utf8(str(who)), _utf8(text))


def _object(value: Any) -> Json:
    return value if isinstance(value, dict) else {}


def _utf8(text: str) -> str:
    """`text` as UTF-8 carries it: a lone surrogate (JSON's escapes carry one, UTF-8 cannot) is
    '?', so that a reply quoting it, or a reason naming its sender, can be sent on."""
    return text.encode("utf-8", "replace").decode("utf-8")


class BotApi:
    def __init__(self, base_url: str, token: str, session: aiohttp.ClientSession) -> None:
        self._root = f"{base_url.rstrip('/')}/bot{token}"
        self._shown = f"{redact_url(base_url.rstrip('/'))}/bot***"  # a proxy's URL may hold a password
        self._session = session

    async def updates(self, offset: int, wait_s: int) -> list[Json]:
        """The updates from `offset` on, waiting up to `wait_s` for one (long polling)."""
        try:
            return await self._updates(offset, wait_s, 100)
        except MalformedAnswer:
            pass
        # One of them cannot be read: asked alone, the first is read on, or is the one skipped.
        try:
            return await self._updates(offset, 0, 1)
        except MalformedAnswer as exc:
            return _skipped(exc, offset)

    async def _updates(self, offset: int, wait_s: int, limit: int) -> list[Json]:
        params = {"offset": str(offset), "timeout": str(wait_s), "limit": str(limit)}
        params["allowed_updates"] = '["message"]'
        got = await self._call("getUpdates", params, wait_s + 10)
        if not isinstance(got, list):
            raise Unavailable(f"Telegram getUpdates at {self._shown}: an answer whose result is no list")
        return [u for u in got if isinstance(u, dict) and isinstance(u.get("update_id"), int)]

    async def send(self, chat: int, text: str) -> None:
        await self._call("sendMessage", {"chat_id": str(chat), "text": text[:_TEXT_LIMIT]}, 10)

    async def _call(self, method: str, params: dict[str, str], timeout_s: float) -> Any:
        try:
            async with self._session.post(
                f"{self._root}/{method}", data=params, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as response:
                text = await _bounded_body(response)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"Telegram {method} at {self._shown}: {type(exc).__name__}") from None
        try:
            body = loads_json(text, "answer", max_bytes=_MAX_ANSWER_BYTES)
        except InvalidArgument as exc:
            raise MalformedAnswer(f"Telegram {method} at {self._shown}: {exc}", text) from None
        if not isinstance(body, dict) or not body.get("ok"):
            said = body.get("description", "") if isinstance(body, dict) else ""
            raise Unavailable(f"Telegram {method} at {self._shown}: refused {str(said)[:200]!r}")
        return body.get("result")


async def _bounded_body(response: aiohttp.ClientResponse) -> bytes:
    """The body, or its first _MAX_ANSWER_BYTES and more (refused then)."""
    body = bytearray()
    async for chunk in response.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > _MAX_ANSWER_BYTES:
            break
    return bytes(body)


def _skipped(malformed: MalformedAnswer, offset: int) -> list[Json]:
    """An update Telegram's answer cannot carry readably stays in its queue until an offset past
    it confirms it: refused alone, it was refused again on every poll, and after every restart.
    So it is skipped: an empty update of its id (the first at or past `offset` in the answer of
    that update alone) moves the offset past it. Without an id, Unavailable (retried)."""
    ids = [int(found) for found in _UPDATE_ID.findall(malformed.body[:_MAX_ANSWER_BYTES])]
    ids = [i for i in ids if i >= offset]
    if not ids:
        raise malformed
    log.warning("%s: update %d skipped", malformed, min(ids))
    return [{"update_id": min(ids)}]
