"""Notifications of the risk events an operator must hear of at once (a legacy position found, a
stand-down, CLOSE_ALL, a reconciliation divergence, a position left without its protective
pair, an entry on the trading streams refused, at most one a minute): a webhook (the event as
JSON, POSTed) and a Telegram chat (the Bot API's sendMessage, at a configurable base URL). Sent
in the background: a slow or failing target is logged (without the bot's token, which is in the
Bot API's path) and never holds up the inspector."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp

from trademesh.core.inspector.convert import ACTION_TO_PB
from trademesh.core.inspector.engine.events import RiskAction
from trademesh.core.platform.config.env import (
    NOTIFY_WEBHOOK_URL,
    TELEGRAM_BASE_URL,
    TELEGRAM_BOT_TOKEN,
    TELEGRAM_CHAT_ID,
    notice_chat,
    read_secret,
)
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.logs.redact import redact_url, scrub
from trademesh.risk.v1 import inspector_pb2 as rk

__all__ = [
    "NOTIFIED",
    "NOTIFIED_ACTIONS",
    "NOTIFIED_NOTICES",
    "Notifier",
    "Telegram",
    "as_json",
    "http_url",
    "notifier_from_env",
    "text_of",
]

log = logging.getLogger(__name__)

_TIMEOUT_S = 5.0
_TELEGRAM = "https://api.telegram.org"
# What is sent: the operator's attention is for these, not for every verdict.
NOTIFIED_ACTIONS = frozenset({ACTION_TO_PB[RiskAction.STAND_DOWN], ACTION_TO_PB[RiskAction.CLOSE_ALL]})
# A position without its protective pair past the bound, and its end (protected, closed).
NOTIFIED = frozenset(
    {"legacy", "reconcile.position", "protect.rejected", "protect.unprotected", "bus.refused"}
)
# Policies whose events come as fast as someone writes them (a forged entry on the bus: one
# event each, trademesh.core.inspector.bus_auth): at most one notice a minute of each; the risk stream,
# the log and the metric have every one.
_AT_MOST_ONCE_PER_S = {"bus.refused": 60.0}


# Policies whose NOTICE is sent, not their verdicts: a market its venue delisted (and listed again)
# is said once; the entries it then blocks are in the risk stream.
NOTIFIED_NOTICES = frozenset({"instrument.delisted"})


def wanted(event: rk.RiskEvent) -> bool:
    if event.policy in NOTIFIED_NOTICES:
        return event.action == ACTION_TO_PB[RiskAction.NOTICE]
    return event.action in NOTIFIED_ACTIONS or event.policy in NOTIFIED


def text_of(event: rk.RiskEvent) -> str:
    action = rk.RiskAction.Name(event.action).removeprefix("RISK_ACTION_").lower()
    where = " ".join(part for part in (event.venue, event.symbol) if part)
    values = ", ".join(f"{v.name} {v.value}" for v in event.values)
    head = f"trademesh inspector: {action} {event.policy}".strip()
    return "\n".join(part for part in (head, where, event.reason, values) if part)


def as_json(event: rk.RiskEvent) -> dict[str, Any]:
    return {
        "source": "trademesh.inspector",
        "action": rk.RiskAction.Name(event.action).removeprefix("RISK_ACTION_").lower(),
        "policy": event.policy,
        "reason": event.reason,
        "venue": event.venue,
        "symbol": event.symbol,
        "values": {v.name: v.value for v in event.values},
        "ts_ns": event.ts_ns,
    }


@dataclass(frozen=True)
class Telegram:
    base_url: str
    token: str
    chat_id: str


class Notifier:
    def __init__(self, webhook: str | None, telegram: Telegram | None) -> None:
        self.webhook = webhook
        self.telegram = telegram
        self.sent = 0
        self.failed = 0
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._last: dict[str, float] = {}  # a throttled policy's last notice (monotonic)

    @property
    def on(self) -> bool:
        return self.webhook is not None or self.telegram is not None

    def events(self, events: Sequence[rk.RiskEvent]) -> None:
        """Send the events that call for the operator, in the background."""
        for event in events:
            if self.on and wanted(event) and self._due(event.policy):
                task = asyncio.ensure_future(self._send(event))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)

    def _due(self, policy: str) -> bool:
        """False while a throttled policy's last notice is more recent than its interval."""
        every = _AT_MOST_ONCE_PER_S.get(policy)
        if every is None:
            return True
        now = time.monotonic()
        if now - self._last.get(policy, -every) < every:
            return False
        self._last[policy] = now
        return True

    async def _send(self, event: rk.RiskEvent) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_TIMEOUT_S))
        if self.webhook is not None:
            await self._post(self.webhook, as_json(event), redact_url(self.webhook))
        if self.telegram is not None:
            url = f"{self.telegram.base_url}/bot{self.telegram.token}/sendMessage"
            body = {"chat_id": self.telegram.chat_id, "text": text_of(event)}
            await self._post(url, body, f"Telegram at {redact_url(self.telegram.base_url)}")

    async def _post(self, url: str, body: dict[str, Any], shown: str) -> None:
        assert self._session is not None
        try:
            async with self._session.post(url, json=body) as answer:
                if answer.status >= 300:
                    raise RuntimeError(f"HTTP {answer.status}")
            self.sent += 1
        except (aiohttp.ClientError, TimeoutError, RuntimeError, OSError) as exc:
            self.failed += 1
            reason = scrub(str(exc) or type(exc).__name__, url)  # aiohttp's errors may quote the URL
            if self.telegram is not None:
                reason = reason.replace(self.telegram.token, "<token>")
            log.warning("inspector: notifying %s failed: %s", shown, reason)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._session is not None:
            await self._session.close()


def http_url(variable: str, value: str | None) -> str | None:
    """`value` when it is an http(s) URL with a host; InvalidArgument naming the variable, and
    never its value (a webhook's URL often holds its secret), otherwise."""
    if value is not None and _http_host(value) is None:
        raise InvalidArgument.field(variable, "is not an http:// or https:// URL with a host")
    return value


def _http_host(value: str) -> str | None:
    try:
        url = urlsplit(value)
        if url.port == 0:  # urlsplit itself refuses a port past 65535
            return None
    except ValueError:
        return None
    return url.hostname if url.scheme.lower() in ("http", "https") else None


def notifier_from_env() -> Notifier:
    """The targets set in the environment (InvalidArgument naming a half-set Telegram target,
    or a URL that is none)."""
    webhook = http_url(NOTIFY_WEBHOOK_URL, read_secret(NOTIFY_WEBHOOK_URL))
    token, chat = read_secret(TELEGRAM_BOT_TOKEN), read_secret(TELEGRAM_CHAT_ID)
    chat = None if chat is None else notice_chat(chat, TELEGRAM_CHAT_ID)
    if (token is None) != (chat is None):
        missing = TELEGRAM_CHAT_ID if chat is None else TELEGRAM_BOT_TOKEN
        raise InvalidArgument.field(missing, "is needed with the other Telegram variable")
    base = (http_url(TELEGRAM_BASE_URL, read_secret(TELEGRAM_BASE_URL)) or _TELEGRAM).rstrip("/")
    telegram = None if token is None or chat is None else Telegram(base, token, chat)
    return Notifier(webhook, telegram)
