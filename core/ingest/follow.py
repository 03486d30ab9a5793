"""One venue stream followed into one bus stream: (venue, channel) -> md.{<venue>}.<channel>.

The venue's batches go to the bus as they are (no parsing: a venue's SubscribeResponse and
the bus's MarketEvents share field numbers). After a lost stream it resubscribes with the
position of the last batch it published, so the venue sends what was missed; when the
venue cannot (it restarted, or too long passed) it sends GAP notices, and ingest adds its
own gap marker per symbol saying since when events may be missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import grpc

from core.foundations.backoff import Backoff
from core.foundations.bus.names import market_stream
from core.foundations.convert import CHANNEL_TO_PB
from core.foundations.logs import bind_log_fields
from core.foundations.mesh_config import VenueLink
from core.foundations.model import Channel
from core.foundations.rpc.client import Metadata
from core.foundations.rpc.status import REFUSED_AS_ASKED, call_failure
from core.ingest.gaps import gap_markers, opens_with_gap_notice
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["Follower", "StreamPoint", "sleep_unless"]

log = logging.getLogger(__name__)

_SUBSCRIBE = "/trademesh.marketdata.v1.MarketData/Subscribe"

# Publishes an encoded MarketEvents to a stream; waits while the publisher is full.
Publish = Callable[[str, bytes], Awaitable[None]]


@dataclass
class StreamPoint:
    """Where a stream stands: the last published batch's venue position and latest event time."""

    epoch: int = 0
    position: int = 0
    last_event_ns: int = 0

    def update(self, raw: bytes) -> None:
        batch = bus.MarketEvents.FromString(raw)
        self.note(batch)

    def note(self, batch: bus.MarketEvents) -> None:
        if batch.epoch:
            self.epoch, self.position = batch.epoch, batch.position
        if batch.events:
            self.last_event_ns = max(self.last_event_ns, max(e.ts_event_ns for e in batch.events))


class Follower:
    def __init__(
        self,
        link: VenueLink,
        channel: Channel,
        symbols: list[str],
        channel_factory: Callable[[], grpc.aio.Channel],
        metadata: Metadata,
        publish: Publish,
    ) -> None:
        self.link = link
        self.channel = channel
        self.symbols = symbols
        self.stream = market_stream(link.name, channel)
        self.position = StreamPoint()
        self._channel_factory = channel_factory
        self._metadata = metadata
        self._publish = publish
        self._last_raw: bytes | None = None
        # Set when the bus lost entries: the start of the gap to mark before the next batch.
        self._pending_gap: int | None = None
        self.batches = 0
        self.reconnects = 0
        self.gaps = 0

    async def run(self, stop: asyncio.Event) -> None:
        bind_log_fields(venue=self.link.name, stream=self.stream)
        backoff = Backoff(0.2, 5.0)
        while not stop.is_set():
            try:
                await self._follow_once(backoff)
                reason = "the venue ended the stream"
            except grpc.aio.AioRpcError as exc:
                if exc.code() in REFUSED_AS_ASKED:  # sent again unchanged, it would be refused again
                    log.warning("ingest %s: refused (%s): not asked again", self.stream, exc.details())
                    await stop.wait()
                    return
                reason = call_failure(exc)
            if stop.is_set() or not self.symbols:
                return
            self._settle_position()
            self.reconnects += 1
            delay = backoff.next()
            log.warning("ingest %s: stream lost (%s); resubscribing in %.1f s", self.stream, reason, delay)
            await sleep_unless(stop, delay)

    def mark_bus_loss(self, since_ns: int) -> None:
        """The bus lost entries (Redis restarted empty): the next batch goes after a gap marker."""
        self._pending_gap = since_ns

    async def mark_left(self, reason: str) -> None:
        """The venue is no longer followed (stopped): a gap marker since the last event published,
        when there was one (what it sends from now on may be missing until it is followed again)."""
        self._settle_position()
        if self.position.last_event_ns:
            await self._gap(self.position.last_event_ns, reason)

    async def _follow_once(self, backoff: Backoff) -> None:
        async with self._channel_factory() as channel:
            call: Any = channel.unary_stream(
                _SUBSCRIBE, request_serializer=md.SubscribeRequest.SerializeToString
            )
            stream = call(self._request(), metadata=self._metadata)
            first = True
            async for raw in stream:
                assert isinstance(raw, bytes)
                if first:
                    first = False
                    backoff.reset()
                    raw, any_left = self._without_refusals(raw)
                    await self._after_connect(raw)
                    if not any_left:
                        continue  # only refusals: nothing for the bus
                if self._pending_gap is not None:
                    await self._gap(self._pending_gap, "the bus lost entries (Redis restarted without them)")
                    self._pending_gap = None
                await self._publish(self.stream, raw)
                self._last_raw = raw
                self.batches += 1

    def _request(self) -> md.SubscribeRequest:
        request = md.SubscribeRequest(symbols=self.symbols, channels=[CHANNEL_TO_PB[self.channel]])
        request.overflow_policy = (
            md.OVERFLOW_POLICY_DISCONNECT
        )  # a lost stream resumes; conflation would lose
        if self.position.epoch:
            request.resume.epoch = self.position.epoch
            request.resume.position = self.position.position
        return request

    def _without_refusals(self, raw: bytes) -> tuple[bytes, bool]:
        """The first message without the venue's REFUSED notices (a word to this subscriber, not
        market data: not for the bus), and whether events are left; a refused symbol is not
        asked for again."""
        batch = bus.MarketEvents.FromString(raw)
        refused = [e for e in batch.events if _refusal(e)]
        if not refused:
            return raw, bool(batch.events)
        for event in refused:
            log.warning("ingest %s: %s not followed: %s", self.stream, event.symbol, event.notice.reason)
        gone = {e.symbol for e in refused}
        self.symbols = [s for s in self.symbols if s not in gone]
        kept = [e for e in batch.events if not _refusal(e)]
        del batch.events[:]
        batch.events.extend(kept)
        return batch.SerializeToString(), bool(kept)

    async def _after_connect(self, raw: bytes) -> None:
        """A (re)subscription's first message: a venue that could not resume says GAP first."""
        batch = bus.MarketEvents.FromString(raw)
        resumed_seamlessly = self.position.epoch != 0 and not opens_with_gap_notice(batch)
        if self.position.last_event_ns and not resumed_seamlessly:
            await self._gap(self.position.last_event_ns, "ingest reconnected; the venue could not resume")
        if resumed_seamlessly:
            log.info("ingest %s: resumed after position %d", self.stream, self.position.position)

    async def _gap(self, since_ns: int, reason: str) -> None:
        self.gaps += 1
        log.warning("ingest %s: gap marker (%s)", self.stream, reason)
        await self._publish(
            self.stream, gap_markers(self.link.name, self.symbols, self.channel, since_ns, reason)
        )

    def _settle_position(self) -> None:
        """Parse only the last batch published (not every batch): where to resume from."""
        if self._last_raw is not None:
            self.position.update(self._last_raw)
            self._last_raw = None


def _refusal(event: md.MarketEvent) -> bool:
    return event.HasField("notice") and event.notice.kind == md.NOTICE_KIND_REFUSED


async def sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
