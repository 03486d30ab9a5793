"""StreamRegimes' subscribers: each a bounded queue of changes, fed without awaiting.

The read loop must never wait on a subscriber: a queue that fills (a client reading too slowly)
closes that subscription (its stream ends RESOURCE_EXHAUSTED; the client calls again and starts
from a fresh board) rather than dropping a change silently, which would leave its board wrong.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from core.overwatch.engine import RegimeChange
from core.overwatch.filters import Markets

__all__ = ["Watcher", "Watchers"]


class Watcher:
    def __init__(self, markets: Markets, size: int) -> None:
        self.markets = markets
        self.queue: asyncio.Queue[RegimeChange | None] = asyncio.Queue(size)
        self.overflowed = False

    def offer(self, change: RegimeChange) -> bool:
        """Queue a change it asked for; False once it has fallen behind (closed)."""
        if self.overflowed:
            return False
        if change.key not in self.markets:
            return True
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.overflowed = True
            self._end()
            return False
        return True

    def _end(self) -> None:
        """Wake the reader with the end: the queue's oldest item makes room for it."""
        while True:
            try:
                self.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()


class Watchers:
    def __init__(self, size: int = 1000) -> None:
        self._size = size
        self._watchers: set[Watcher] = set()
        self.closed = False

    def __len__(self) -> int:
        return len(self._watchers)

    def watch(self, markets: Markets) -> Watcher:
        watcher = Watcher(markets, self._size)
        if self.closed:
            watcher._end()
        else:
            self._watchers.add(watcher)
        return watcher

    def drop(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)

    def publish(self, changes: Iterable[RegimeChange]) -> None:
        for change in changes:
            for watcher in list(self._watchers):
                if not watcher.offer(change):
                    self._watchers.discard(watcher)

    async def close(self) -> None:
        """End every stream (the service is stopping): each reader sees the end after its queue."""
        self.closed = True
        for watcher in self._watchers:
            watcher._end()
        self._watchers.clear()
