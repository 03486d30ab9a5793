"""The latest bars of a symbol from the recorder's `bars` table (docs/recorder.md).

The pool is made on first use, so a gateway whose database is down still starts and serves
everything else; every query has a deadline. Library errors become core.errors here, naming
PostgreSQL by its redacted URL (never the password).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import asyncpg

from core.decimals import format_decimal
from core.env import redact_url
from core.errors import FailedPrecondition, InvalidArgument, Unavailable
from gateway.mcp.render import iso_time

__all__ = ["BarStore"]

# Newest first on the primary key (venue, symbol, timeframe, open_time_ns): an index scan.
_LATEST = """
SELECT open_time_ns, open, high, low, close, volume, quote_volume, trade_count, vwap, repaired
FROM bars WHERE venue = $1 AND symbol = $2 AND timeframe = $3
ORDER BY open_time_ns DESC LIMIT $4
"""
_VENUE_HAS_BARS = "SELECT EXISTS (SELECT 1 FROM bars WHERE venue = $1)"
_SYMBOL_HAS_BARS = "SELECT EXISTS (SELECT 1 FROM bars WHERE venue = $1 AND symbol = $2)"
_POOL_CONNECTIONS = 4


class BarStore:
    def __init__(self, database_url: str, timeout_s: float) -> None:
        self._url = database_url
        self._timeout_s = timeout_s
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()

    async def latest(self, venue: str, symbol: str, timeframe: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` bars, oldest first; InvalidArgument when the venue or symbol has none at all."""
        rows = await self._fetch(_LATEST, venue, symbol, timeframe, limit)
        if not rows:
            await self._explain_empty(venue, symbol)
        return [_bar(row) for row in reversed(rows)]

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _explain_empty(self, venue: str, symbol: str) -> None:
        # No bar at this timeframe may just mean none has closed yet; no bar at all means the
        # caller named something the recorder never saw.
        if not (await self._fetch(_VENUE_HAS_BARS, venue))[0][0]:
            raise InvalidArgument.field("venue", f"no bars are recorded for venue {venue!r}")
        if not (await self._fetch(_SYMBOL_HAS_BARS, venue, symbol))[0][0]:
            raise InvalidArgument.field("symbol", f"no bars are recorded for {symbol!r} on venue {venue!r}")

    async def _fetch(self, query: str, *args: object) -> Sequence[asyncpg.Record]:
        try:
            pool = await self._connected()
            async with pool.acquire(timeout=self._timeout_s) as connection:
                rows: list[asyncpg.Record] = await connection.fetch(query, *args, timeout=self._timeout_s)
                return rows
        except asyncpg.UndefinedTableError as exc:
            raise FailedPrecondition(
                "the database has no bars table yet: `trademesh recorder` creates it when it starts"
            ) from exc
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise Unavailable(
                f"PostgreSQL at {redact_url(self._url)} is unavailable ({type(exc).__name__})"
            ) from exc

    async def _connected(self) -> asyncpg.Pool:
        async with self._lock:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._url, min_size=0, max_size=_POOL_CONNECTIONS, timeout=self._timeout_s
                )
            return self._pool


def _decimal(value: Any) -> str | None:
    return None if value is None else format_decimal(value)


def _bar(row: asyncpg.Record) -> dict[str, Any]:
    return {
        "open_time": iso_time(row["open_time_ns"]),
        "open_time_ns": row["open_time_ns"],
        "open": _decimal(row["open"]),
        "high": _decimal(row["high"]),
        "low": _decimal(row["low"]),
        "close": _decimal(row["close"]),
        "volume": _decimal(row["volume"]),
        "quote_volume": _decimal(row["quote_volume"]),
        "trade_count": row["trade_count"],
        "vwap": _decimal(row["vwap"]),
        "repaired": row["repaired"],
    }
