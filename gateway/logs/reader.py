"""Reading the `logs` stream for one Tail: the backlog newest first (XREVRANGE, in pages), then
new entries as they come (XREAD BLOCK from the last id seen).

Each following Tail holds one blocking read of its own (COUNT FOLLOW_COUNT, BLOCK BLOCK_MS):
one Redis round trip per batch of new lines or per second of quiet, whatever its filters, and
no shared reader to fall behind. A backlog search looks at the newest SCAN_LIMIT entries at
most, so a filter nothing matches costs a bounded read.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from core.foundations.bus.redis import BusRedis
from core.foundations.logstream.entry import STREAM, LogEntry, decode_entry
from gateway.logs.query import Query

__all__ = ["BLOCK_MS", "FOLLOW_COUNT", "SCAN_LIMIT", "backlog", "follow"]

SCAN_LIMIT = 20_000
FOLLOW_COUNT = 200
BLOCK_MS = 1000
_PAGE = 500
_START = "0-0"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def backlog(redis: BusRedis, query: Query) -> tuple[list[LogEntry], str]:
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


async def follow(
    redis: BusRedis, query: Query, after: str, stopping: asyncio.Event
) -> AsyncIterator[list[LogEntry]]:
    """Each batch of new matching entries, until `stopping` is set (seen within BLOCK_MS)."""
    last = after
    while not stopping.is_set():
        answer: Any = await redis.xread({STREAM: last}, count=FOLLOW_COUNT, block=BLOCK_MS)
        batch: list[LogEntry] = []
        for _stream, entries in answer or []:
            for entry_id, raw in entries:
                last = _text(entry_id)
                entry = decode_entry(entry_id, raw)
                if query.matches(entry):
                    batch.append(entry)
        if batch:
            yield batch
