"""The recorder's database as `trademesh data` reaches it: one connection, errors said in one
line naming the setting and the URL redacted."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from trademesh.core.platform.config.env import DATABASE_URL, database_url
from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.logs.redact import redact_url, scrub

__all__ = ["CONNECT_TIMEOUT_S", "connected"]

CONNECT_TIMEOUT_S = 10.0


@contextlib.asynccontextmanager
async def connected(flag: str | None) -> AsyncIterator[Any]:
    """A connection to --database-url (else $DATABASE_URL, else the local default), closed after."""
    url = database_url(flag)
    setting = "database-url" if flag else DATABASE_URL
    try:
        conn = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        reason = scrub(str(exc) or type(exc).__name__, url)
        raise Unavailable(f"{setting}: cannot connect to PostgreSQL at {redact_url(url)}: {reason}") from None
    try:
        yield conn
    finally:
        await conn.close()
