"""A client stream's outbox: a bounded queue that can end cleanly or with an error.

The bound is checked by offer(), not by asyncio.Queue itself, so the end marker
always fits even when the outbox is full.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Generic, TypeVar

from trademesh.core.platform.errors import ResourceExhausted

__all__ = ["Outbox"]

T = TypeVar("T")


class Outbox(Generic[T]):
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._queue: asyncio.Queue[T | None] = asyncio.Queue()
        self._error: ResourceExhausted | None = None

    @property
    def depth(self) -> int:
        return self._queue.qsize()

    def offer(self, item: T) -> bool:
        """Queue an item; False when the outbox is full."""
        if self._queue.qsize() >= self.limit:
            return False
        self._queue.put_nowait(item)
        return True

    def put(self, item: T) -> None:
        """Queue an item past the bound (a resumed stream's replay, bounded by the venue's history)."""
        self._queue.put_nowait(item)

    def end(self, error: ResourceExhausted | None = None) -> None:
        """End the stream: cleanly after what is queued, or at once with an error."""
        self._error = error
        if error is not None:
            self._clear()
        self._queue.put_nowait(None)

    def replace(self, item: T) -> None:
        """Drop everything queued and queue this instead."""
        self._clear()
        self._queue.put_nowait(item)

    def _clear(self) -> None:
        while not self._queue.empty():
            self._queue.get_nowait()

    async def batches(self, most: int) -> AsyncIterator[list[T]]:
        """What is queued, up to `most` items at a time; raises the error it was ended with."""
        while True:
            first = await self._queue.get()
            batch = [first]
            while first is not None and not self._queue.empty() and len(batch) < most:
                batch.append(self._queue.get_nowait())
            items = [item for item in batch if item is not None]
            if items:
                yield items
            if batch[-1] is None:
                if self._error is not None:
                    raise self._error
                return
