"""The recorder's database as MCP's tools read it: one lazily made pool, a deadline on every
query, library errors as trademesh.core.platform.errors naming PostgreSQL by its redacted URL (never the
password). A gateway whose database is down still starts and serves everything else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import asyncpg

from trademesh.core.platform.config.env import redact_url
from trademesh.core.platform.errors import FailedPrecondition, Unavailable
from trademesh.core.platform.postgres.connect import open_pool

__all__ = ["RecorderDatabase"]

_POOL_CONNECTIONS = 4


class RecorderDatabase:
    def __init__(self, database_url: str, timeout_s: float) -> None:
        self._url = database_url
        self._timeout_s = timeout_s
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def fetch(self, query: str, *args: object, table: str) -> Sequence[asyncpg.Record]:
        """The rows of `query`; FailedPrecondition when `table` does not exist yet."""
        try:
            pool = await self._connected()
            async with pool.acquire(timeout=self._timeout_s) as connection:
                rows: list[asyncpg.Record] = await connection.fetch(query, *args, timeout=self._timeout_s)
                return rows
        except asyncpg.UndefinedTableError as exc:
            raise FailedPrecondition(
                f"the database has no {table} table yet: `trademesh recorder` creates it when it starts"
            ) from exc
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise Unavailable(
                f"PostgreSQL at {redact_url(self._url)} is unavailable ({type(exc).__name__})"
            ) from exc

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _connected(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                self._pool = await open_pool(
                    self._url, max_size=_POOL_CONNECTIONS, connect_timeout_s=self._timeout_s
                )
            return self._pool
