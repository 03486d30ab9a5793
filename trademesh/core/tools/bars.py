"""The latest bars of a symbol from the recorder's `bars` table (docs/recorder.md).

Queries go through trademesh.core.tools.recorded (its pool, deadlines and error mapping).
"""

from __future__ import annotations

from typing import Any

import asyncpg

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.tools.recorded import RecorderDatabase
from trademesh.core.tools.render import iso_time

__all__ = ["BarStore"]

# Newest first on the primary key (venue, symbol, timeframe, open_time_ns): an index scan.
_LATEST = """
SELECT open_time_ns, open, high, low, close, volume, quote_volume, trade_count, vwap, repaired
FROM bars WHERE venue = $1 AND symbol = $2 AND timeframe = $3
ORDER BY open_time_ns DESC LIMIT $4
"""
_VENUE_HAS_BARS = "SELECT EXISTS (SELECT 1 FROM bars WHERE venue = $1)"
_SYMBOL_HAS_BARS = "SELECT EXISTS (SELECT 1 FROM bars WHERE venue = $1 AND symbol = $2)"


class BarStore:
    def __init__(self, database: RecorderDatabase) -> None:
        self._db = database

    async def latest(self, venue: str, symbol: str, timeframe: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` bars, oldest first; InvalidArgument when the venue or symbol has none at all."""
        rows = await self._db.fetch(_LATEST, venue, symbol, timeframe, limit, table="bars")
        if not rows:
            await self._explain_empty(venue, symbol)
        return [_bar(row) for row in reversed(rows)]

    async def _explain_empty(self, venue: str, symbol: str) -> None:
        # No bar at this timeframe may just mean none has closed yet; no bar at all means the
        # caller named something the recorder never saw.
        if not (await self._db.fetch(_VENUE_HAS_BARS, venue, table="bars"))[0][0]:
            raise InvalidArgument.field("venue", f"no bars are recorded for venue {venue!r}")
        if not (await self._db.fetch(_SYMBOL_HAS_BARS, venue, symbol, table="bars"))[0][0]:
            raise InvalidArgument.field("symbol", f"no bars are recorded for {symbol!r} on venue {venue!r}")


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
