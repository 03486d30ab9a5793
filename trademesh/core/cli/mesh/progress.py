"""What `trademesh up` prints every so often: the mesh is working, in numbers.

Events on the bus (from Redis), trades recorded, bars closed, signals, the advisor's decisions
and intents (from PostgreSQL), the inspector's risk events (from Redis), each with its rate
since the previous line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import asyncpg

from trademesh.core.platform.bus.names import MARKET_STREAMS, RISK
from trademesh.core.platform.bus.redis import open_redis

__all__ = ["MeshProgress"]

log = logging.getLogger(__name__)

_QUERIES = {
    "trades recorded": "SELECT count(*) FROM trades",
    "bars closed": "SELECT count(*) FROM bars",
    "signals recorded": "SELECT count(*) FROM signals",
    "decisions recorded": "SELECT count(*) FROM decisions",
    "intents recorded": "SELECT count(*) FROM intents",
    "transfers posted": "SELECT count(*) FROM ledger_transfers",
}


class MeshProgress:
    def __init__(self, redis_url: str, database_url: str) -> None:
        self.redis_url = redis_url
        self.database_url = database_url
        self._last: dict[str, int] = {}
        self._last_at = time.monotonic()

    async def run(self, stop: asyncio.Event, every_s: float, say: Callable[[str], None]) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
            if stop.is_set():
                return
            try:
                say(self.line(await self.sample()))
            except Exception as exc:  # the status line is best effort; services report their own errors
                log.debug("progress: %s", exc)

    async def sample(self) -> dict[str, int]:
        counts = {"bus entries": await self._bus_entries()}
        connection = await asyncpg.connect(self.database_url, timeout=5)
        try:
            for name, query in _QUERIES.items():
                with contextlib.suppress(asyncpg.UndefinedTableError):
                    counts[name] = int(await connection.fetchval(query))
        finally:
            await connection.close()
        counts["risk events"] = await self._risk_events()
        return counts

    def line(self, counts: dict[str, int]) -> str:
        now = time.monotonic()
        elapsed = max(now - self._last_at, 1e-9)
        parts = []
        for name, value in counts.items():
            rate = (value - self._last.get(name, value)) / elapsed
            parts.append(f"{name} {value:,} (+{rate:,.0f}/s)")
        self._last, self._last_at = counts, now
        return "progress: " + ", ".join(parts)

    async def _risk_events(self) -> int:
        """The inspector's verdicts and other risk events (the bus stream `risk`)."""
        client: Any = open_redis(self.redis_url)
        try:
            return int(await client.xlen(RISK))
        finally:
            await client.aclose()

    async def _bus_entries(self) -> int:
        client: Any = open_redis(self.redis_url)
        try:
            total = 0
            async for name in client.scan_iter(match=MARKET_STREAMS, _type="STREAM"):
                total += int(await client.xlen(name))
            return total
        finally:
            await client.aclose()
