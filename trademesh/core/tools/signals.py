"""The detector's latest signals from the recorder's `signals` table (docs/recorder.md), with
each rule's weight, value and whether it fired: what an agent reads to see why a strategy
spoke. From the recorder rather than one detector, so every instance's signals are there and
they outlive restarts."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.tools.recorded import RecorderDatabase
from trademesh.core.tools.render import iso_time

__all__ = ["SignalStore"]

# Newest first; the (strategy_id, ts_signal_ns) index serves a strategy's.
_RECENT = """
SELECT signal_id, venue, symbol, direction, conviction, score, threshold, strategy_id,
       patch_version, rules, ts_event_ns, ts_signal_ns
FROM signals
WHERE ($1 = '' OR strategy_id = $1) AND ($2 = '' OR symbol = $2)
ORDER BY ts_signal_ns DESC LIMIT $3
"""


class SignalStore:
    def __init__(self, database: RecorderDatabase) -> None:
        self._db = database

    async def recent(self, strategy: str, symbol: str, limit: int) -> list[dict[str, Any]]:
        """Up to `limit` signals, newest first; "" matches every strategy or symbol."""
        rows = await self._db.fetch(_RECENT, strategy, symbol, limit, table="signals")
        return [_signal(row) for row in rows]


def _signal(row: asyncpg.Record) -> dict[str, Any]:
    rules = row["rules"]
    return {
        "signal_id": row["signal_id"],
        "time": iso_time(row["ts_signal_ns"]),
        "ts_signal_ns": row["ts_signal_ns"],
        "ts_event_ns": row["ts_event_ns"],
        "strategy": row["strategy_id"],
        "patch_version": row["patch_version"],
        "venue": row["venue"],
        "symbol": row["symbol"],
        "direction": row["direction"],
        "conviction": format_decimal(row["conviction"]),
        "score": format_decimal(row["score"]),
        "threshold": format_decimal(row["threshold"]),
        "rules": json.loads(rules) if isinstance(rules, str) else rules,
    }
