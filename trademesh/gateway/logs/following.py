"""Every following Tail fed by one reader of the `logs` stream (issue 57, item 10).

Each following Tail held a blocking XREAD of its own, so a pool connection each: 128 tails of
one key took the gateway's whole Redis pool (redis-py's 100 connections), and everyone else's
Tail, the MCP tool `logs_tail` and the replicas' shared registry failed UNAVAILABLE. Now one
task reads the stream (XREAD BLOCK, one connection) while any tail follows, started with the
first follower and stopped with the last, and hands each batch to every follower's queue.

A follower joins after a backlog or a resumed read that ended at some id; the reader may be
behind or ahead of it. So a follower reads the entries between its id and the reader's position
itself (XRANGE, in pages: short commands), then takes the reader's batches, skipping any entry
it has seen. A follower whose queue is full (a slow client) is marked behind and its queue
dropped: it catches up the same way, from its last id, so nothing is lost while the stream holds
it, and it never slows the reader or the other followers.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.logs.stream.entry import STREAM, LogEntry, decode_entry
from trademesh.gateway.logs.query import Query
from trademesh.gateway.logs.reader import StreamReads

__all__ = ["BLOCK_MS", "FOLLOW_COUNT", "QUEUED_BATCHES", "Follower", "Following", "entry_key"]

FOLLOW_COUNT = 200
BLOCK_MS = 1000
# Batches waiting for one follower (each up to FOLLOW_COUNT lines): past it, it catches up alone.
QUEUED_BATCHES = 64
_PAGE = 500


def entry_key(entry_id: str) -> tuple[int, int]:
    """A stream id's order (ms, sequence)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass(eq=False)  # each one itself, in the reader's set
class Follower:
    """One following Tail: the reader's batches for it, and where it has read to."""

    last: str
    queue: asyncio.Queue[list[LogEntry] | BaseException] = field(
        default_factory=lambda: asyncio.Queue(QUEUED_BATCHES)
    )
    behind: bool = False

    def offer(self, batch: list[LogEntry]) -> None:
        if self.behind:
            return
        try:
            self.queue.put_nowait(batch)
        except asyncio.QueueFull:
            self.behind = True  # it catches up from its last id by itself
            while not self.queue.empty():
                self.queue.get_nowait()
            self.queue.put_nowait([])  # wakes it to catch up

    def fail(self, error: BaseException) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(error)


class Following:
    """The one reader of the stream for every following Tail of a gateway."""

    def __init__(self, redis: BusRedis, reads: StreamReads, stopping: asyncio.Event) -> None:
        self._redis = redis  # the reader's blocking XREAD: one connection
        self._reads = reads  # the catching up's pages: among the Tails' bounded reads
        self._stopping = stopping
        self._followers: set[Follower] = set()
        self._task: asyncio.Task[None] | None = None
        self.position = "0-0"  # the last id the reader has handed out (or starts after)

    @property
    def followers(self) -> int:
        return len(self._followers)

    async def follow(self, query: Query, after: str) -> AsyncGenerator[list[LogEntry]]:
        """Each batch of new matching entries after `after`, until the gateway stops."""
        with self._joined(after) as follower:
            while not self._stopping.is_set():
                if follower.behind or entry_key(follower.last) < entry_key(self.position):
                    follower.behind = False
                    async for page in self._catch_up(follower, query):
                        yield page
                    continue
                batch = await self._next(follower)
                if batch is None:
                    return
                fresh = [e for e in batch if entry_key(e.id) > entry_key(follower.last)]
                if fresh:
                    follower.last = fresh[-1].id
                    found = [e for e in fresh if query.matches(e)]
                    if found:
                        yield found

    @contextlib.contextmanager
    def _joined(self, after: str) -> Iterator[Follower]:
        follower = Follower(after)
        self._followers.add(follower)
        if self._task is None or self._task.done():
            self.position = after  # the first follower's id: the reader starts after it
            self._task = asyncio.create_task(self._read(), name="logs following")
        try:
            yield follower
        finally:
            self._followers.discard(follower)
            if not self._followers and self._task is not None:
                self._task.cancel()  # nobody follows: no read held
                self._task = None

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def _next(self, follower: Follower) -> list[LogEntry] | None:
        """The follower's next batch; None when the gateway stops first."""
        getting = asyncio.ensure_future(follower.queue.get())
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            if not getting.done():
                getting.cancel()
        if not getting.done() or getting.cancelled():
            return None
        item = getting.result()
        if isinstance(item, BaseException):
            raise item
        return item

    async def _catch_up(self, follower: Follower, query: Query) -> AsyncIterator[list[LogEntry]]:
        """The entries after the follower's last id up to the reader's position, in pages."""
        while entry_key(follower.last) < entry_key(self.position) and not self._stopping.is_set():
            after = f"({follower.last}"
            page: Any = await self._reads.xrange(STREAM, min=after, max=self.position, count=_PAGE)
            if not page:
                return
            entries = [decode_entry(i, raw) for i, raw in page]
            follower.last = entries[-1].id
            found = [e for e in entries if query.matches(e)]
            if found:
                yield found

    async def _read(self) -> None:
        try:
            while True:
                answer: Any = await self._redis.xread(
                    {STREAM: self.position}, count=FOLLOW_COUNT, block=BLOCK_MS
                )
                batch = [decode_entry(i, raw) for _stream, entries in answer or [] for i, raw in entries]
                if batch:
                    self.position = batch[-1].id
                    for follower in list(self._followers):
                        follower.offer(batch)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # Redis gone or refusing: every follower ends with it
            for follower in list(self._followers):
                follower.fail(exc)
