"""A service's stream subscribers (Overwatch's StreamRegimes, the Screener's StreamResults):
each a bounded queue of the items it asked for, fed without awaiting.

The loop that publishes must never wait on a subscriber: a queue that fills (a client reading
too slowly) ends that subscription (`overflowed`: its stream ends RESOURCE_EXHAUSTED and the
client calls again, starting from a fresh view) rather than dropping an item silently, which
would leave the client's view wrong. Stopping ends every stream after what it had queued."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

__all__ = ["StreamSubscriber", "Watchers"]

T = TypeVar("T")


class StreamSubscriber(Generic[T]):
    def __init__(self, wants: Callable[[T], bool], size: int) -> None:
        self.wants = wants
        self.queue: asyncio.Queue[T | None] = asyncio.Queue(size)
        self.overflowed = False

    def offer(self, item: T) -> bool:
        """Queue an item it asked for; False once it has fallen behind (closed)."""
        if self.overflowed:
            return False
        if not self.wants(item):
            return True
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.overflowed = True
            self.end()
            return False
        return True

    def end(self) -> None:
        """Wake the reader with the end: the queue's oldest item makes room for it."""
        while True:
            try:
                self.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()


class Watchers(Generic[T]):
    def __init__(self, size: int = 1000) -> None:
        self._size = size
        self._watchers: set[StreamSubscriber[T]] = set()
        self.closed = False

    def __len__(self) -> int:
        return len(self._watchers)

    def watch(self, wants: Callable[[T], bool]) -> StreamSubscriber[T]:
        watcher = StreamSubscriber(wants, self._size)
        if self.closed:
            watcher.end()
        else:
            self._watchers.add(watcher)
        return watcher

    def drop(self, watcher: StreamSubscriber[T]) -> None:
        self._watchers.discard(watcher)

    def publish(self, items: Iterable[T]) -> None:
        for item in items:
            for watcher in list(self._watchers):
                if not watcher.offer(item):
                    self._watchers.discard(watcher)

    async def close(self) -> None:
        """End every stream (the service is stopping): each reader sees the end after its queue."""
        self.closed = True
        for watcher in self._watchers:
            watcher.end()
        self._watchers.clear()
