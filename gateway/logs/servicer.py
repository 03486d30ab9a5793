"""trademesh.logs.v1.Logs, served by the gateway on its gRPC port (and so over gRPC-web)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

from redis.exceptions import RedisError

from core.foundations.bus.redis import BusRedis
from core.foundations.errors import FailedPrecondition, Unavailable
from core.foundations.logstream.entry import LogEntry
from core.foundations.rpc.context import Context
from gateway.logs.query import Query, as_line, query_of
from gateway.logs.reader import Resumed, backlog, follow, resumed
from trademesh.logs.v1 import logs_pb2 as pb
from trademesh.logs.v1 import logs_pb2_grpc as pb_grpc

__all__ = ["LogsServicer"]

# Lines per answer: the backlog (up to 1000) goes in a few messages, not one huge one.
_LINES_PER_ANSWER = 250
_NOT_CONFIGURED = (
    "the log stream is not configured: start the gateway with --redis-url (or $REDIS_URL) naming "
    "the bus the services log to"
)

Tail = Context[pb.TailRequest, pb.TailResponse]


class LogsServicer(pb_grpc.LogsServicer):
    def __init__(self, redis: BusRedis | None, where: str, stopping: asyncio.Event) -> None:
        self._redis = redis
        self._where = where  # the redacted URL, for errors
        self._stopping = stopping

    async def Tail(self, request: pb.TailRequest, context: Tail) -> AsyncIterator[pb.TailResponse]:
        query = query_of(request)
        if self._redis is None:
            raise FailedPrecondition(_NOT_CONFIGURED)
        await context.send_initial_metadata(())  # the stream is open before its first line
        try:
            if query.after_id:
                state = Resumed(trimmed=False, last=query.after_id)
                async for answer in _resumed(self._redis, query, state):
                    yield answer
                newest = state.last
            else:
                found, newest = await backlog(self._redis, query)
                for answer in _answers(found):
                    yield answer
            if not query.follow:
                return
            async for batch in follow(self._redis, query, newest, self._stopping):
                for answer in _answers(batch):
                    yield answer
        except (RedisError, OSError) as exc:
            raise Unavailable(f"the log stream at {self._where}: {type(exc).__name__}: {exc}") from None
        raise Unavailable("the gateway is stopping: tail again")


async def _resumed(redis: BusRedis, query: Query, state: Resumed) -> AsyncIterator[pb.TailResponse]:
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
