"""One venue's executions followed into one bus stream: TradeFlow.StreamExecutions -> exec.{<venue>}.

Exactly once across restarts: every venue response carries the venue's (epoch, position) —
the process and the sequence of its last execution — and ingest always subscribes with a
resume point: the last one it published (read back from the bus's last entry after a
restart; epoch 0 on an empty stream, which asks for everything the venue holds). The venue
replays what follows from its bounded history, then goes on live. Each entry goes to the bus
with its point through a publish-once script (core.foundations.bus.publisher), so a retried flush or a
second ingest never writes one twice. When the venue cannot resume (another venue process,
or the point is older than its history) its first response says `gap`, and that response
goes to the bus as a gap marker: consumers re-read open orders. A Redis that came back empty
gets a gap marker too. Executions are never conflated or dropped: a stream the venue ends
as too slow is resumed like any other.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from core.foundations.backoff import Backoff
from core.foundations.bus.names import executions_stream
from core.foundations.logs import bind_log_fields
from core.foundations.mesh_config import VenueLink
from core.foundations.rpc.client import Metadata
from core.foundations.rpc.status import call_failure
from core.ingest.follow import sleep_unless
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["ExecutionFollower", "gap_marker"]

log = logging.getLogger(__name__)

_STREAM_EXECUTIONS = "/trademesh.tradeflow.v1.TradeFlow/StreamExecutions"

# Publishes an encoded Executions to a stream once per (epoch, position); waits while full.
PublishOnce = Callable[[str, bytes, int, int], Awaitable[None]]


def gap_marker(venue: str, epoch: int, position: int, reason: str) -> bytes:
    """An encoded Executions saying executions may be missing before this point."""
    marker = bus.Executions(venue=venue, epoch=epoch, position=position, gap=True, gap_reason=reason)
    return marker.SerializeToString()


class ExecutionFollower:
    def __init__(
        self,
        link: VenueLink,
        channel_factory: Callable[[], grpc.aio.Channel],
        metadata: Metadata,
        publish: PublishOnce,
    ) -> None:
        self.link = link
        self.stream = executions_stream(link.name)
        # The last point handed to the bus: the venue process and its execution sequence.
        self.epoch = 0
        self.position = 0
        self._channel_factory = channel_factory
        self._metadata = metadata
        self._publish = publish
        # Appended to every venue response: names the venue in the entry (encoded messages
        # concatenated are one message with the fields of both).
        self._venue_field = bus.Executions(venue=link.name).SerializeToString()
        # Set when the bus lost entries: the reason of the gap marker to write before going on.
        self._pending_gap: str | None = None
        self.batches = 0
        self.executions = 0
        self.reconnects = 0
        self.gaps = 0

    def note(self, batch: bus.Executions) -> None:
        """Where to resume from: the point of the last entry published (from the bus at start)."""
        if batch.epoch:
            self.epoch, self.position = batch.epoch, batch.position

    async def run(self, stop: asyncio.Event) -> None:
        bind_log_fields(venue=self.link.name, stream=self.stream)
        backoff = Backoff(0.2, 5.0)
        while not stop.is_set():
            try:
                await self._follow_once(backoff)
                reason = "the venue ended the stream"
            except grpc.aio.AioRpcError as exc:
                reason = call_failure(exc)
            if stop.is_set():
                return
            self.reconnects += 1
            delay = backoff.next()
            log.warning(
                "ingest %s: stream lost (%s); resuming after execution %d in %.1f s",
                self.stream,
                reason,
                self.position,
                delay,
            )
            await sleep_unless(stop, delay)

    def mark_bus_loss(self, since_ns: int) -> None:
        """The bus lost entries (Redis restarted empty): a gap marker goes before the next batch."""
        self._pending_gap = "the bus lost entries (Redis restarted without them)"

    def request(self) -> tf.StreamExecutionsRequest:
        request = tf.StreamExecutionsRequest()
        request.resume.epoch = self.epoch
        request.resume.position = self.position
        return request

    async def _follow_once(self, backoff: Backoff) -> None:
        async with self._channel_factory() as channel:
            call: Any = channel.unary_stream(
                _STREAM_EXECUTIONS, request_serializer=tf.StreamExecutionsRequest.SerializeToString
            )
            first = True
            async for raw in call(self.request(), metadata=self._metadata):
                assert isinstance(raw, bytes)
                if first:
                    first = False
                    backoff.reset()
                await self.take(raw)

    async def take(self, raw: bytes) -> None:
        """One venue response (its fields are an Executions'): to the bus when it says something."""
        batch = bus.Executions.FromString(raw)
        if self._pending_gap is not None:
            await self._publish(
                self.stream,
                gap_marker(self.link.name, self.epoch, self.position, self._pending_gap),
                self.epoch,
                self.position,
            )
            self.gaps += 1
            self._pending_gap = None
        if batch.gap:
            self.gaps += 1
            log.warning("ingest %s: gap marker (%s)", self.stream, batch.gap_reason)
        elif not batch.executions:
            if batch.epoch == self.epoch and batch.position == self.position:
                log.info("ingest %s: resumed after execution %d", self.stream, self.position)
            self.note(batch)
            return
        await self._publish(self.stream, raw + self._venue_field, batch.epoch, batch.position)
        self.note(batch)
        self.batches += 1
        self.executions += len(batch.executions)
