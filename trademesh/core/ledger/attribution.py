"""Which strategy an order belongs to: the inspector's ALLOW risk events (bus stream `risk`) name
the client order id it placed for each intent, and the advisor's intents (stream `intents`) name
the decision and signal behind each intent. The ledger links every fill to them by the fill's
client order id, so realised PnL is attributed fill → order → intent → signal → strategy.

The streams are followed with plain reads from a cursor kept in PostgreSQL with the links
(`ledger_orders`, `ledger_cursors`): a restarted ledger reads on where it stopped. Orders the
inspector placed for no intent (protective stops, CLOSE_ALL's flatten) have no link: the
posting core shares their fills among the strategies holding the position (docs/ledger.md).
A protective order's link (the same stream's `links`: its position's latest entry's intent)
names that intent, its decision and signal, so its fills trace back to the signal, but no
strategy: they are still shared pro rata.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import asyncpg
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trademesh.core.ledger.links import OrderLink
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.follow import read_on
from trademesh.core.platform.bus.names import INTENTS, RISK
from trademesh.core.platform.bus.reads import read_after
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import Unavailable
from trademesh.risk.v1 import inspector_pb2 as rk

__all__ = ["Attribution"]

log = logging.getLogger(__name__)

_READ = 1_000  # entries per read
_OUTAGES = (
    RedisConnectionError,
    RedisTimeoutError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    Unavailable,
)
_REMEMBERED = 200_000  # links and intents held in memory (older ones are read from PostgreSQL)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class _Bounded(OrderedDict[str, Any]):
    def put(self, key: str, value: Any) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > _REMEMBERED:
            self.popitem(last=False)


class Attribution:
    def __init__(self, redis: BusRedis, pool: Any) -> None:
        self.redis = redis
        self.pool = pool
        self._links: _Bounded = _Bounded()
        self._intents: _Bounded = _Bounded()  # intent id -> (decision id, signal id)
        # Intents first: an intent is on its stream before the inspector's check of it.
        self._cursors = {INTENTS: "0-0", RISK: "0-0"}

    async def start(self) -> None:
        rows = await self.pool.fetch("SELECT stream, last_id FROM ledger_cursors")
        for row in rows:
            if row["stream"] in self._cursors:
                self._cursors[row["stream"]] = row["last_id"]

    async def catch_up(self) -> int:
        """Read both streams to their end now; the number of entries read."""
        total = 0
        while True:
            read = await self._read(block_ms=None)
            total += read
            if read < _READ:
                return total

    async def follow(self, stop: asyncio.Event) -> None:
        """Read on until stopped; a Redis or PostgreSQL outage is said and waited out."""
        await read_on(self._read_on, stop, _away, outages=_OUTAGES)

    async def _read_on(self) -> None:
        await self._read(block_ms=500)

    async def link(self, client_order_id: str) -> OrderLink | None:
        known = self._links.get(client_order_id)
        if known is not None and not known.signal_id and known.intent_id in self._intents:
            decision, signal = self._intents[known.intent_id]  # the intent was read after its check
            known = replace(known, decision_id=decision, signal_id=signal)
            self._links.put(client_order_id, known)
        if known is not None or not client_order_id:
            return known
        row = await self.pool.fetchrow(
            "SELECT * FROM ledger_orders WHERE client_order_id = $1", client_order_id
        )
        if row is None:
            return None
        found = OrderLink(*(row[f] for f in OrderLink.__dataclass_fields__))
        self._links.put(client_order_id, found)
        return found

    async def _read(self, block_ms: int | None) -> int:
        answer = await read_after(self.redis, dict(self._cursors), count=_READ, block=block_ms)
        if not answer:
            return 0
        links: list[OrderLink] = []
        read = 0
        for stream, entries in sorted(answer, key=lambda item: _text(item[0]) != INTENTS):
            name = _text(stream)
            for entry_id, fields in entries:
                links.extend(self._entry(name, entry_id, fields))
                self._cursors[name] = _text(entry_id)
                read += 1
        await self._keep(links)
        return read

    def _entry(self, stream: str, entry_id: Any, fields: dict[bytes, bytes]) -> list[OrderLink]:
        try:
            envelope = decode(fields)
        except Exception:  # not ours to judge: the stream's writer logs its own
            log.warning("ledger: an undecodable entry %s on %s skipped", entry_id, stream)
            return []
        if stream == INTENTS:
            for intent in envelope.intents.intents:
                self._intents.put(intent.intent_id, (intent.decision_id, intent.signal_id))
            return []
        allowed = [link for event in envelope.risk.events if (link := self._allowed(event)) is not None]
        return allowed + [self._protective(link) for link in envelope.risk.links]

    def _allowed(self, event: rk.RiskEvent) -> OrderLink | None:
        if event.action != rk.RISK_ACTION_ALLOW:
            return None
        values = {v.name: v.value for v in event.values}
        order = values.get("order", "")
        if not order:
            return None
        decision, signal = self._intents.get(event.intent_id, ("", ""))
        link = OrderLink(
            order, event.venue, event.symbol, event.intent_id, event.strategy_id, decision, signal,
            event.event_id, event.ts_ns,
        )  # fmt: skip
        self._links.put(order, link)
        return link

    def _protective(self, link: rk.OrderLink) -> OrderLink:
        """A protective order's link: its position's intent and where it came from; no strategy
        (its fills are shared among the strategies holding the position), no risk event."""
        decision, signal = self._intents.get(link.intent_id, ("", ""))
        found = OrderLink(
            link.client_order_id,
            link.venue,
            link.symbol,
            link.intent_id,
            "",
            decision,
            signal,
            "",
            link.ts_ns,
        )
        self._links.put(found.client_order_id, found)
        return found

    async def _keep(self, links: Sequence[OrderLink]) -> None:
        async with self.pool.acquire() as connection, connection.transaction():
            if links:
                await connection.executemany(
                    "INSERT INTO ledger_orders VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) "
                    "ON CONFLICT (client_order_id) DO NOTHING",
                    [tuple(getattr(link, f) for f in OrderLink.__dataclass_fields__) for link in links],
                )
            await connection.executemany(
                "INSERT INTO ledger_cursors VALUES ($1, $2) ON CONFLICT (stream) DO UPDATE SET last_id = $2",
                list(self._cursors.items()),
            )


def _away(exc: Exception, delay: float, first: bool) -> None:
    log.warning("ledger: reading order links: %s; again in %.1f s", exc, delay)
