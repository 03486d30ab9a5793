"""Group commit: the inspector's Redis writes (journal entries, risk events) made while one
pipeline is on the wire go together in the next one. A write is awaited until its pipeline has
run, so the journal is still written before the core acts; under load many inputs share one
round trip instead of taking one each. Writes complete in the order they were made (futures
resolve in that order, and asyncio resumes their waiters in that order)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from core.foundations.bus.codec import FIELD

__all__ = ["GroupWriter"]

_MOST = 500  # writes per pipeline at most


@dataclass
class _Write:
    stream: str
    data: bytes
    maxlen: int | None
    done: asyncio.Future[bytes]


class GroupWriter:
    def __init__(self, redis: Any) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self._queue: list[_Write] = []
        self._flushing: asyncio.Task[None] | None = None
        self.pipelines = 0
        self.writes = 0

    async def add(self, stream: str, data: bytes, maxlen: int | None = None) -> bytes:
        """XADD `data` (field "d") to `stream`; the entry id once it is written."""
        done: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._queue.append(_Write(stream, data, maxlen, done))
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())
        return await done

    async def _flush(self) -> None:
        while self._queue:
            batch, self._queue = self._queue[:_MOST], self._queue[_MOST:]
            try:
                ids = await self._write(batch)
            except BaseException as exc:  # each waiter gets the error: its input was not written
                for write in batch:
                    if not write.done.done():
                        write.done.set_exception(exc if isinstance(exc, Exception) else RuntimeError(exc))
                if not isinstance(exc, Exception):
                    raise
                continue
            for write, entry_id in zip(batch, ids, strict=True):
                if not write.done.done():
                    write.done.set_result(entry_id)

    async def _write(self, batch: list[_Write]) -> list[bytes]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for write in batch:
                if write.maxlen is None:
                    pipe.xadd(write.stream, {FIELD: write.data})
                else:
                    pipe.xadd(write.stream, {FIELD: write.data}, maxlen=write.maxlen, approximate=True)
            ids: list[bytes] = await pipe.execute()
        self.pipelines += 1
        self.writes += len(batch)
        return ids
