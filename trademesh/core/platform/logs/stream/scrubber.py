"""The process's secrets, gathered once from the environment, scrubbed from every streamed line.

A service never logs a secret on purpose (callers show URLs through redact_url); this is the
second line for what slips through: a library's error quoting a URL, a token echoed in an
exception. Secrets shorter than MIN_SECRET_CHARS are left alone (scrubbing "ab" would mangle
every line and hide nothing worth hiding).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable

from trademesh.core.platform.config.env import (
    ALERTMANAGER_URL,
    DATABASE_URL,
    LLM_API_KEY,
    LLM_BASE_URL,
    NOTIFY_WEBHOOK_URL,
    REDIS_URL,
    SESSION_SECRET,
    SUPERVISOR_API_KEY,
    TELEGRAM_API_KEY,
    TELEGRAM_BASE_URL,
    TELEGRAM_BOT_TOKEN,
    TOKEN,
    TRADE_TOKEN,
    VENUE_CREDENTIALS,
    VENUE_TRADE_TOKEN,
    read_secret,
)
from trademesh.core.platform.logs.redact import secrets_of
from trademesh.core.platform.logs.stream.config import LOG_STREAM

__all__ = ["MIN_SECRET_CHARS", "Scrubber", "hold_urls"]

MIN_SECRET_CHARS = 4
_HIDDEN = "***"
_SECRETS = (
    TOKEN, TRADE_TOKEN, SESSION_SECRET, LLM_API_KEY, TELEGRAM_BOT_TOKEN, TELEGRAM_API_KEY, SUPERVISOR_API_KEY,
)  # fmt: skip
_URLS = (
    REDIS_URL,
    DATABASE_URL,
    NOTIFY_WEBHOOK_URL,
    LOG_STREAM,
    TELEGRAM_BASE_URL,
    ALERTMANAGER_URL,
    LLM_BASE_URL,
)
# TRADEMESH_<VENUE>_API_KEY and the like, an account's trading credential too
# (trademesh.core.platform.config.env.venue_variable).
_VENUE_SECRET = re.compile(rf"TRADEMESH_[A-Z0-9_]+_({'|'.join([*VENUE_CREDENTIALS, VENUE_TRADE_TOKEN])})")
# The secrets of URLs the command line gave (--gateway-url, --redis-url, ...): not in the
# environment, held here by the CLI before the handler is set up (hold_urls).
_HELD: list[str] = []


def hold_urls(values: Iterable[object]) -> None:
    """The secrets of each value that is a URL (a parsed command line's), scrubbed too by every
    Scrubber made from the environment after this."""
    for value in values:
        if isinstance(value, str) and "://" in value:
            _HELD.extend(secrets_of(value))


def _forms(secret: str) -> set[str]:
    """The secret as it is, and as it reads inside the line's JSON text: a `"`, a `\\` or a
    control character in it is escaped there (the handler scrubs the encoded line)."""
    return {secret, json.dumps(secret, ensure_ascii=False)[1:-1]}


class Scrubber:
    def __init__(self, secrets: list[str]) -> None:
        kept = {form for s in secrets if len(s) >= MIN_SECRET_CHARS for form in _forms(s)}
        # Longest first, so a secret holding another is hidden whole.
        self._secrets = sorted(kept, key=len, reverse=True)

    @classmethod
    def from_environment(cls) -> Scrubber:
        found = [value for name in _SECRETS if (value := read_secret(name)) is not None]
        found += _HELD
        found += [value for name, value in os.environ.items() if value and _VENUE_SECRET.fullmatch(name)]
        for name in _URLS:
            url = read_secret(name)
            if url is not None and "://" in url:
                found += secrets_of(url)
        return cls(found)

    def __call__(self, text: str) -> str:
        for secret in self._secrets:
            if secret in text:
                text = text.replace(secret, _HIDDEN)
        return text
