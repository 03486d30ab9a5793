"""The inspector's journal: every input of its core, in order, on a Redis stream
(`inspector.journal.{<instance>}`), written before the core acts on it. At a restart the core is
rebuilt by replaying it (trademesh.core.inspector.driver): positions, working orders, the equity curve,
the intents handled, all as they were, before anything is placed.

Now and then the shell appends the core's whole state (a snapshot entry, trademesh.core.inspector.snapshot)
naming the last entry it includes: a restart begins at the latest snapshot and replays only the
entries after that one, and the entries before it are trimmed once every consumer group of the
stream (the recorder's) has read them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from trademesh.core.platform.bus.append import Append
from trademesh.core.platform.bus.codec import FIELD
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.reads import read_back, read_range
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import Corrupt
from trademesh.risk.v1 import journal_pb2 as jr

__all__ = ["EntryId", "InputJournal", "JournalWriter", "entry_text", "parse_id"]

EntryId = tuple[int, int]  # a stream entry's id: (ms, seq)
_PAGE = 1000


class JournalWriter(Protocol):
    """What writes the journal: a Publisher, or the leader's fenced writes
    (trademesh.core.inspector.fenced_writes)."""

    async def write(self, append: Append) -> bytes: ...


def parse_id(raw: bytes | str) -> EntryId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def entry_text(entry_id: EntryId) -> str:
    """An entry's id as Redis writes it ("<ms>-<seq>")."""
    return f"{entry_id[0]}-{entry_id[1]}"


class InputJournal:
    def __init__(self, redis: BusRedis, stream: str, publisher: JournalWriter | None = None) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self.stream = stream
        self.publisher: JournalWriter = publisher or Publisher(redis)
        self.appended = 0

    async def append(self, entry: jr.JournalEntry) -> EntryId:
        """Durable in Redis (as Redis is) when this returns: the entry's id. Appends made while
        a write is on the wire go together in the next (Publisher.write; the leader's are fenced
        by its lease: trademesh.core.inspector.fenced_writes). Untrimmed: `trim` drops what every reader
        has read."""
        entry_id = await self.publisher.write(Append(self.stream, entry.SerializeToString()))
        self.appended += 1
        return parse_id(entry_id)

    async def entries(self) -> AsyncIterator[tuple[EntryId, jr.JournalEntry]]:
        """What a restart replays, oldest first: the latest snapshot, then every entry after the
        last one it includes (other snapshots left out); every entry when there is none."""
        snapshot = await self._latest_snapshot()
        after = "-"
        if snapshot is not None:
            yield snapshot
            through = (snapshot[1].snapshot.through_ms, snapshot[1].snapshot.through_seq)
            after = "(" + entry_text(through)
        async for entry_id, entry in self._range(after):
            if entry.WhichOneof("input") != "snapshot":
                yield entry_id, entry

    async def _range(self, after: str) -> AsyncIterator[tuple[EntryId, jr.JournalEntry]]:
        while True:
            page = await read_range(self.redis, self.stream, min=after, max="+", count=_PAGE)
            for raw_id, fields in page:
                yield parse_id(raw_id), _decode(raw_id, fields)
            if len(page) < _PAGE:
                return
            after = "(" + entry_text(parse_id(page[-1][0]))

    async def _latest_snapshot(self) -> tuple[EntryId, jr.JournalEntry] | None:
        """The newest snapshot entry, read back from the stream's end (a snapshot is taken every
        so many entries, so this reads about that many at most; a journal without one, all)."""
        before = "+"
        while True:
            page = await read_back(self.redis, self.stream, max=before, min="-", count=_PAGE)
            for raw_id, fields in page:
                entry = _decode(raw_id, fields)
                if entry.WhichOneof("input") == "snapshot":
                    return parse_id(raw_id), entry
            if len(page) < _PAGE:
                return None
            before = "(" + entry_text(parse_id(page[-1][0]))

    async def trim(self, through: EntryId) -> int:
        """Drop the entries up to `through` (a snapshot's last) that every consumer group of the
        stream has read and acknowledged; the number dropped."""
        floor = through
        for group in await self.redis.xinfo_groups(self.stream):
            floor = min(floor, parse_id(group["last-delivered-id"]))
            if group["pending"]:
                summary = await self.redis.xpending(self.stream, group["name"])
                floor = min(floor, parse_id(summary["min"]))
        dropped: int = await self.redis.xtrim(self.stream, minid=entry_text(floor), approximate=False)
        return dropped


def _decode(entry_id: Any, fields: dict[bytes, bytes]) -> jr.JournalEntry:
    entry = jr.JournalEntry()
    try:
        entry.ParseFromString(fields[FIELD])
    except Exception as exc:  # a journal we cannot read must stop the start, not be skipped
        raise Corrupt(f"the inspector's journal entry {entry_id!r} cannot be read: {exc}") from None
    return entry
