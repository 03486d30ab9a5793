"""Reading the `logs` stream for one Tail: the backlog newest first (XREVRANGE, in pages), or a
resumed tail's lines after its id (XRANGE, in pages); then new entries as they come, from the
one reader every following Tail shares (trademesh.gateway.logs.following). A backlog search looks at the
newest SCAN_LIMIT entries at most, so a filter nothing matches costs a bounded read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol

from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.logs.stream.entry import STREAM, LogEntry, decode_entry
from trademesh.gateway.logs.query import Query

__all__ = ["SCAN_LIMIT", "BoundedReads", "Resumed", "StreamReads", "backlog", "resumed"]

SCAN_LIMIT = 20_000
_PAGE = 500
_START = "0-0"


class StreamReads(Protocol):
    """The reads a Tail makes of the stream (a BusRedis is one)."""

    async def xrange(self, name: str, min: str, max: str, count: int) -> Any: ...

    async def xrevrange(self, name: str, max: str, min: str, count: int) -> Any: ...


class BoundedReads:
    """The Tails' reads with at most `limit` in flight, so at most that many of the pool's
    connections: a thousand Tails at once wait their turn (each read is one page, a few ms)
    where they took a connection each and the pool ran out for everyone."""

    def __init__(self, redis: BusRedis, limit: int) -> None:
        self._redis = redis
        self._slots = asyncio.Semaphore(limit)

    async def xrange(self, name: str, min: str, max: str, count: int) -> Any:
        async with self._slots:
            return await self._redis.xrange(name, min=min, max=max, count=count)

    async def xrevrange(self, name: str, max: str, min: str, count: int) -> Any:
        async with self._slots:
            return await self._redis.xrevrange(name, max=max, min=min, count=count)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def backlog(redis: StreamReads, query: Query) -> tuple[list[LogEntry], str]:
    """Up to query.backlog newest matching entries, oldest first, and the id to follow after."""
    found: list[LogEntry] = []
    newest, upper, scanned = _START, "+", 0
    while scanned < SCAN_LIMIT:
        count = _PAGE if query.backlog else 1
        page: Any = await redis.xrevrange(STREAM, max=upper, min="-", count=count)
        if not page:
            break
        if scanned == 0:
            newest = _text(page[0][0])
        scanned += len(page)
        for entry_id, raw in page:
            entry = decode_entry(entry_id, raw)
            if query.matches(entry):
                found.append(entry)
        if len(found) >= query.backlog:
            break
        upper = f"({_text(page[-1][0])}"
    found = found[: query.backlog]
    found.reverse()
    return found, newest


@dataclass
class Resumed:
    """What a resumed tail reads before it follows: whether the stream still holds the line it
    resumes after, and the id of the last entry read (to follow after)."""

    trimmed: bool
    last: str


async def resumed(redis: StreamReads, query: Query, state: Resumed) -> AsyncIterator[list[LogEntry]]:
    """Each page of matching entries after query.after_id, oldest first, up to the stream's end
    as it is now; `state` says whether that line is gone and ends at the last id read."""
    first: Any = await redis.xrange(STREAM, min="-", max="+", count=1)
    state.trimmed = bool(first) and _older(query.after_id, _text(first[0][0]))
    state.last = query.after_id
    while True:
        page: Any = await redis.xrange(STREAM, min=f"({state.last}", max="+", count=_PAGE)
        if not page:
            return
        state.last = _text(page[-1][0])
        found = [entry for entry in (decode_entry(i, raw) for i, raw in page) if query.matches(entry)]
        if found:
            yield found


def _older(entry_id: str, than: str) -> bool:
    """Whether stream id `entry_id` comes before `than`."""
    ms, _, seq = entry_id.partition("-")
    than_ms, _, than_seq = than.partition("-")
    return (int(ms), int(seq)) < (int(than_ms), int(than_seq))
