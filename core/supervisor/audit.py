"""The Supervisor's audit trail as its shell keeps it: the latest entries (bounded) and the
StreamAudit subscribers, each with a bounded queue (one that falls behind is ended)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterable

from core.supervisor.engine import AuditEntry

__all__ = ["AuditTrail"]


class AuditTrail:
    def __init__(self, keep: int = 1000, queue_size: int = 1000) -> None:
        self.recent: deque[AuditEntry] = deque(maxlen=keep)
        self._watchers: list[asyncio.Queue[AuditEntry | None]] = []
        self._queue_size = queue_size

    def add(self, entries: Iterable[AuditEntry]) -> None:
        for entry in entries:
            self.recent.append(entry)
            for queue in list(self._watchers):
                try:
                    queue.put_nowait(entry)
                except asyncio.QueueFull:  # fell behind: ended (it calls again for the recent ones)
                    self._watchers.remove(queue)
                    queue.get_nowait()
                    queue.put_nowait(None)

    def watch(self) -> tuple[list[AuditEntry], asyncio.Queue[AuditEntry | None]]:
        """The recent entries and a queue of the next ones (no entry falls between the two)."""
        queue: asyncio.Queue[AuditEntry | None] = asyncio.Queue(self._queue_size)
        self._watchers.append(queue)
        return list(self.recent), queue

    def drop(self, queue: asyncio.Queue[AuditEntry | None]) -> None:
        if queue in self._watchers:
            self._watchers.remove(queue)
