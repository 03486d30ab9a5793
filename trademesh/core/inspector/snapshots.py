"""When the shell snapshots its core: after every `every` journal entries (counted from the
last snapshot, or from the replay's start), the core and the audit are captured at once, right
after the entry they follow was applied (nothing awaited between: the state is exactly the
journal up to that entry's id), then written and the journal trimmed in the background, one at a
time. A failed write is logged and tried again at the next entry; the journal stays whole."""

from __future__ import annotations

import asyncio
import logging

from trademesh.core.inspector.audit import Audit
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.input_journal import EntryId, InputJournal
from trademesh.core.inspector.snapshot import to_snapshot
from trademesh.risk.v1 import journal_pb2 as jr

__all__ = ["SNAPSHOT_EVERY", "Snapshots"]

log = logging.getLogger(__name__)

# A restart replays at most about this many entries after the latest snapshot (about 15 us each).
SNAPSHOT_EVERY = 5_000


class Snapshots:
    def __init__(self, journal: InputJournal, every: int = SNAPSHOT_EVERY) -> None:
        self.journal = journal
        self.every = every
        self.start = jr.JournalEntry()  # the journal's start entry
        self.policies = ""  # the text of the last policy input
        self.taken = 0
        self.trimmed = 0
        self._since = 0
        self._last: EntryId = (0, 0)
        self._last_ns = 0
        self._writing: asyncio.Task[None] | None = None

    def applied(self, entry_id: EntryId, entry: jr.JournalEntry) -> None:
        """The entry of this id is in the core's state now (its start, a snapshot and policy
        inputs: what the next snapshot carries)."""
        self._last, self._last_ns = entry_id, entry.now_ns
        self._since += 1
        kind = entry.WhichOneof("input")
        if kind == "start":
            self.start, self.policies = entry, entry.start.policies
        elif kind == "snapshot":
            snap = entry.snapshot
            self.start = jr.JournalEntry(now_ns=snap.start_ns, start=snap.start)
            self.policies = snap.policies
        elif kind == "policies":
            self.policies = entry.policies

    def take(self, core: InspectorCore, audit: Audit) -> None:
        """Snapshot now if `every` entries were applied since the last one (and none is being
        written): call right after an entry was applied, with nothing awaited in between."""
        if self._since < self.every or (self._writing is not None and not self._writing.done()):
            return
        snapshot = to_snapshot(core, audit, self.start, self.policies, self._last)
        self._since = 0
        entry = jr.JournalEntry(now_ns=self._last_ns, snapshot=snapshot)
        self._writing = asyncio.create_task(self._write(entry, self._last), name="inspector snapshot")

    async def _write(self, entry: jr.JournalEntry, through: EntryId) -> None:
        try:
            await self.journal.append(entry)
            self.taken += 1
            self.trimmed += await self.journal.trim(through)
        except Exception as exc:  # Redis away: the journal is whole, the next entry tries again
            log.warning("inspector: journal snapshot not written (%s); trying again", exc)
            self._since = self.every

    async def close(self) -> None:
        """The snapshot on its way written (a stop must not cut it off midway)."""
        if self._writing is not None:
            await asyncio.gather(self._writing, return_exceptions=True)
