"""The Telegram Bot API, as the bot uses it: `getUpdates` (long polling) and `sendMessage`
(https://core.telegram.org/bots/api), at a configurable base URL (a stand-in in tests). The
token is in the Bot API's path: never logged, never in an error (the URL is redacted)."""

from __future__ import annotations

from typing import Any

import aiohttp

from core.foundations.errors import Unavailable

__all__ = ["BotApi", "Message"]

Json = dict[str, Any]
_TEXT_LIMIT = 4096  # the Bot API's longest message


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
        self._shown = f"{base_url.rstrip('/')}/bot***"
        self._session = session

    async def updates(self, offset: int, wait_s: int) -> list[Json]:
        """The updates from `offset` on, waiting up to `wait_s` for one (long polling)."""
        params = {"offset": str(offset), "timeout": str(wait_s), "allowed_updates": '["message"]'}
        got = await self._call("getUpdates", params, wait_s + 10)
        return [u for u in got if isinstance(u, dict) and isinstance(u.get("update_id"), int)]

    async def send(self, chat: int, text: str) -> None:
        await self._call("sendMessage", {"chat_id": str(chat), "text": text[:_TEXT_LIMIT]}, 10)

    async def _call(self, method: str, params: dict[str, str], timeout_s: float) -> Any:
        try:
            async with self._session.post(
                f"{self._root}/{method}", data=params, timeout=aiohttp.ClientTimeout(total=timeout_s)
            ) as response:
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            raise Unavailable(f"Telegram {method} at {self._shown}: {type(exc).__name__}") from None
        if not isinstance(body, dict) or not body.get("ok"):
            said = body.get("description", "") if isinstance(body, dict) else ""
            raise Unavailable(f"Telegram {method} at {self._shown}: refused {str(said)[:200]!r}")
        return body.get("result")
