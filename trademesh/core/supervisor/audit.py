"""The Supervisor's audit trail as its shell keeps it: the latest entries (bounded) and the
StreamAudit subscribers, each with a bounded queue (one that falls behind is ended), and the
entries not yet on the bus (trademesh.core.supervisor.recording). Each entry
about a proposal (and each mode change) is also a log line naming its id, so the log path (LogHub,
Studio's Logs page, Loki) finds a proposal's story after the trail has moved on."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque
from collections.abc import Iterable

from trademesh.core.supervisor import metrics
from trademesh.core.supervisor.engine import AuditEntry

__all__ = ["AuditTrail"]

log = logging.getLogger(__name__)
_LOGGED_DETAIL = 500  # a model's prompt is no proposal's entry; a detail past this is cut in the line


class AuditTrail:
    def __init__(
        self, keep: int = 1000, queue_size: int = 1000, book: str = "", unrecorded: int = 10_000
    ) -> None:
        self.recent: deque[AuditEntry] = deque(maxlen=keep)
        # Kept, not yet on the bus (trademesh.core.supervisor.recording takes them); the oldest dropped
        # past the bound, while the bus is away.
        self.unrecorded: deque[AuditEntry] = deque(maxlen=unrecorded)
        self._watchers: list[asyncio.Queue[AuditEntry | None]] = []
        self._queue_size = queue_size
        self._book, self._count = book, 0

    def restore(self, entries: Iterable[AuditEntry]) -> None:
        """The trail a run before this one left on the bus: recent again, not recorded again."""
        self.recent.extend(entries)

    def add(self, entries: Iterable[AuditEntry]) -> list[AuditEntry]:
        """Each entry kept with an id of its own (the book and a count), streamed and queued for
        the bus; the entries as kept."""
        kept = []
        for entry in entries:
            if not entry.id:
                self._count += 1
                entry = dataclasses.replace(entry, id=f"{self._book}a{self._count}")
            kept.append(entry)
            self.recent.append(entry)
            self.unrecorded.append(entry)
            if entry.proposal_id or entry.kind == "mode":
                who = entry.who or "supervisor"
                detail = entry.detail[:_LOGGED_DETAIL]
                log.info("supervisor %s %s by %s: %s", entry.kind, entry.proposal_id or "-", who, detail)
            for queue in list(self._watchers):
                try:
                    queue.put_nowait(entry)
                except asyncio.QueueFull:  # fell behind: ended (it calls again for the recent ones)
                    self._watchers.remove(queue)
                    queue.get_nowait()
                    queue.put_nowait(None)
        metrics.WATCHERS.set(len(self._watchers))
        return kept

    def watch(self) -> tuple[list[AuditEntry], asyncio.Queue[AuditEntry | None]]:
        """The recent entries and a queue of the next ones (no entry falls between the two)."""
        queue: asyncio.Queue[AuditEntry | None] = asyncio.Queue(self._queue_size)
        self._watchers.append(queue)
        metrics.WATCHERS.set(len(self._watchers))
        return list(self.recent), queue

    def drop(self, queue: asyncio.Queue[AuditEntry | None]) -> None:
        if queue in self._watchers:
            self._watchers.remove(queue)
        metrics.WATCHERS.set(len(self._watchers))
