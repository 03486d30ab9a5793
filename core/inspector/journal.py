"""The inspector's journal: every input of its core, in order, on a Redis stream
(`inspector.journal.<instance>`), written before the core acts on it. At a restart the core is
rebuilt by replaying it (core.inspector.driver): positions, working orders, the equity curve,
the intents handled, all as they were, before anything is placed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from core.bus.codec import FIELD
from core.errors import Corrupt
from core.inspector.writes import GroupWriter
from trademesh.risk.v1 import journal_pb2 as jr

__all__ = ["Journal"]

_PAGE = 1000


class Journal:
    def __init__(self, redis: Any, stream: str, writer: GroupWriter | None = None) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self.stream = stream
        self.writer = writer or GroupWriter(redis)
        self.appended = 0

    async def append(self, entry: jr.JournalEntry) -> None:
        """Durable in Redis (as Redis is) when this returns; never trimmed. Appends made while
        a write is on the wire go together in the next (core.inspector.writes)."""
        await self.writer.add(self.stream, entry.SerializeToString())
        self.appended += 1

    async def entries(self) -> AsyncIterator[jr.JournalEntry]:
        """Every entry, oldest first."""
        after = "-"
        while True:
            page = await self.redis.xrange(self.stream, min=after, max="+", count=_PAGE)
            for entry_id, fields in page:
                yield _decode(entry_id, fields)
            if len(page) < _PAGE:
                return
            last = page[-1][0]
            after = "(" + (last.decode() if isinstance(last, bytes) else str(last))


def _decode(entry_id: Any, fields: dict[bytes, bytes]) -> jr.JournalEntry:
    entry = jr.JournalEntry()
    try:
        entry.ParseFromString(fields[FIELD])
    except Exception as exc:  # a journal we cannot read must stop the start, not be skipped
        raise Corrupt(f"the inspector's journal entry {entry_id!r} cannot be read: {exc}") from None
    return entry
