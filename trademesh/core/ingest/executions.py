"""One venue's executions followed into one bus stream: TradeFlow.StreamExecutions -> exec.{<venue>}.

Exactly once across restarts: every venue response carries the venue's (epoch, position) —
the process and the sequence of its last execution — and ingest always subscribes with a
resume point: the last one it published (read back from the bus's last entry after a
restart; epoch 0 on an empty stream, which asks for everything the venue holds). The venue
replays what follows from its bounded history, then goes on live. Each entry goes to the bus
with its point through a publish-once script (trademesh.core.platform.bus.publisher), so a retried flush or a
second ingest never writes one twice. When the venue cannot resume (another venue process,
or the point is older than its history) its first response says `gap`, and that response
goes to the bus as a gap marker: consumers re-read open orders. A Redis that came back empty
gets a gap marker too. Executions are never conflated or dropped: a stream the venue ends
as too slow is resumed like any other.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from trademesh.core.ingest.dial import VenueDial
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.bus.gaps import execution_gap_marker as gap_marker
from trademesh.core.platform.bus.relay import ExecutionRelay, PublishOnce
from trademesh.core.platform.logs.setup import bind_log_fields
from trademesh.core.platform.rpc.follow import follow
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["ExecutionFollower", "gap_marker"]

log = logging.getLogger(__name__)

_STREAM_EXECUTIONS = "/trademesh.tradeflow.v1.TradeFlow/StreamExecutions"


class ExecutionFollower(ExecutionRelay):
    """The gRPC side of the relay (trademesh.core.platform.bus.relay.ExecutionRelay): StreamExecutions
    from the relay's point, resumed after a lost stream with a backoff."""

    def __init__(self, dial: VenueDial, publish: PublishOnce) -> None:
        super().__init__(dial.venue, publish)
        self.dial = dial

    async def run(self, stop: asyncio.Event) -> None:
        bind_log_fields(venue=self.dial.venue, stream=self.stream)
        await follow(self._follow_once, stop, Backoff(0.2, 5.0), self._lost)

    def _lost(self, reason: str, delay: float) -> None:
        self.reconnects += 1
        log.warning(
            "ingest %s: stream lost (%s); resuming after execution %d in %.1f s",
            self.stream,
            reason,
            self.position,
            delay,
        )

    async def _follow_once(self, backoff: Backoff) -> None:
        async with self.dial.channel() as channel:
            call: Any = channel.unary_stream(
                _STREAM_EXECUTIONS, request_serializer=tf.StreamExecutionsRequest.SerializeToString
            )
            first = True
            async for raw in call(self.request(), metadata=self.dial.metadata):
                assert isinstance(raw, bytes)
                if first:
                    first = False
                    backoff.reset()
                await self.take(raw)
