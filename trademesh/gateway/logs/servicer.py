"""trademesh.logs.v1.Logs, served by the gateway on its gRPC port (and so over gRPC-web).

The Tails' reads of the stream go through a client of their own (the gateway's shared registry
keeps its own: no Tail takes its connections), at most READS_IN_FLIGHT at once, and every
following Tail is fed by one reader (trademesh.gateway.logs.following): a thousand Tails hold at most
READS_IN_FLIGHT + 1 connections. One API key follows at most MAX_FOLLOWING_PER_KEY Tails at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator, Iterator

from redis.exceptions import RedisError

from trademesh.core.platform.access.contracts import KEY_HEADER
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import FailedPrecondition, ResourceExhausted, Unavailable
from trademesh.core.platform.logs.stream.entry import LogEntry
from trademesh.core.platform.rpc.context import Context
from trademesh.gateway.logs.following import Following
from trademesh.gateway.logs.query import Query, as_line, query_of
from trademesh.gateway.logs.reader import BoundedReads, Resumed, StreamReads, backlog, resumed
from trademesh.logs.v1 import logs_pb2 as pb
from trademesh.logs.v1 import logs_pb2_grpc as pb_grpc

__all__ = ["MAX_FOLLOWING_PER_KEY", "READS_IN_FLIGHT", "LogsServicer"]

# Following Tails of one API key at once: a Studio tab's Logs page follows one; a key's tools and
# tabs together fit many times over. Calls on the native port with the mesh token (no key: the
# mesh's own, such as the MCP tool's follow of at most 5 s) are not counted.
MAX_FOLLOWING_PER_KEY = 32
# Reads of the stream in flight (each one page: a backlog's, a resumed tail's, a catch-up's).
READS_IN_FLIGHT = 16
# Lines per answer: the backlog (up to 1000) goes in a few messages, not one huge one.
_LINES_PER_ANSWER = 250
_NOT_CONFIGURED = (
    "the log stream is not configured: start the gateway with --redis-url (or $REDIS_URL) naming "
    "the bus the services log to"
)

Tail = Context[pb.TailRequest, pb.TailResponse]


class LogsServicer(pb_grpc.LogsServicer):
    def __init__(self, redis: BusRedis | None, where: str, stopping: asyncio.Event) -> None:
        self._reads: StreamReads | None = None
        self._following: Following | None = None
        if redis is not None:
            self._reads = BoundedReads(redis, READS_IN_FLIGHT)
            self._following = Following(redis, self._reads, stopping)
        self._where = where  # the redacted URL, for errors
        self._stopping = stopping
        self._per_key: Counter[str] = Counter()

    async def Tail(self, request: pb.TailRequest, context: Tail) -> AsyncIterator[pb.TailResponse]:
        query = query_of(request)
        if self._reads is None or self._following is None:
            raise FailedPrecondition(_NOT_CONFIGURED)
        key = _key_of(context) if query.follow else None
        with self._counted(key):
            await context.send_initial_metadata(())  # the stream is open before its first line
            try:
                async for answer in self._answers(query, self._reads, self._following):
                    yield answer
            except (RedisError, OSError) as exc:
                raise Unavailable(f"the log stream at {self._where}: {type(exc).__name__}: {exc}") from None
        if query.follow:
            raise Unavailable("the gateway is stopping: tail again")

    async def close(self) -> None:
        if self._following is not None:
            await self._following.close()

    async def _answers(
        self, query: Query, reads: StreamReads, following: Following
    ) -> AsyncIterator[pb.TailResponse]:
        if query.after_id:
            state = Resumed(trimmed=False, last=query.after_id)
            async for answer in _resumed(reads, query, state):
                yield answer
            newest = state.last
        else:
            found, newest = await backlog(reads, query)
            for answer in _answers(found):
                yield answer
        if not query.follow:
            return
        async with contextlib.aclosing(following.follow(query, newest)) as batches:
            async for batch in batches:
                for answer in _answers(batch):
                    yield answer

    @contextlib.contextmanager
    def _counted(self, key: str | None) -> Iterator[None]:
        if key is None:
            yield
            return
        if self._per_key[key] >= MAX_FOLLOWING_PER_KEY:
            raise ResourceExhausted(
                f"API key {key!r} follows {self._per_key[key]} Logs/Tail streams, the most one key may "
                f"(MAX_FOLLOWING_PER_KEY, {MAX_FOLLOWING_PER_KEY}): end one first"
            )
        self._per_key[key] += 1
        try:
            yield
        finally:
            self._per_key[key] -= 1
            if self._per_key[key] <= 0:
                del self._per_key[key]


def _key_of(context: Tail) -> str | None:
    """The API key the gateway forwarded this call for (None: the mesh token's own call)."""
    for name, value in context.invocation_metadata() or ():
        if name == KEY_HEADER and isinstance(value, str):
            return value
    return None


async def _resumed(redis: StreamReads, query: Query, state: Resumed) -> AsyncIterator[pb.TailResponse]:
    """A resumed tail's answers: every matching line after query.after_id, the first answer
    marked `trimmed` when that line is gone from the stream (one empty answer says so when no
    line matched since)."""
    first = True
    async for page in resumed(redis, query, state):
        for answer in _answers(page):
            answer.trimmed, first = state.trimmed and first, False
            yield answer
    if first and state.trimmed:
        yield pb.TailResponse(trimmed=True)


def _answers(entries: list[LogEntry]) -> Iterator[pb.TailResponse]:
    for start in range(0, len(entries), _LINES_PER_ANSWER):
        yield pb.TailResponse(lines=[as_line(e) for e in entries[start : start + _LINES_PER_ANSWER]])
