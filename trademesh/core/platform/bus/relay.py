"""A venue's streams relayed into the bus, whoever carries them: what ingest's followers (over
gRPC, trademesh.core.ingest) and a venue's own direct writer (in process,
trademesh.venues.runtime.direct) share, so the bus gets the same entries, numbering and gap
markers from either.

- MarketRelay: one venue stream (venue, channel) -> md.{<venue>}.<channel>. The venue's batches go
  to the bus as they are (a SubscribeResponse and a bus MarketEvents share field numbers). After a
  lost stream it is opened again with the position of the last batch published, so the venue
  sends what was missed; when it cannot (it restarted, or too long passed) its first message
  opens with GAP notices, and the relay adds a gap marker per symbol since the last event
  published. On the trades channel a trade published already (a restarted venue's subscribe
  snapshot) is dropped (trademesh.core.platform.bus.trade_repeats).
- ExecutionRelay: a venue's executions -> exec.{<venue>}, each batch at most once per venue
  point (epoch, position) (trademesh.core.platform.bus.publisher), a gap entry where the venue could
  not resume.
- last_point / resume_*: where the last writer stopped, read back from the stream's last entries
  (whichever writer it was: the venue's numbering is the same).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.domain.convert import CHANNEL_TO_PB
from trademesh.core.domain.model import Channel
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.gaps import execution_gap_marker, gap_markers, opens_with_gap_notice
from trademesh.core.platform.bus.names import executions_stream, market_stream
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.bus.trade_repeats import PublishedTrades
from trademesh.core.platform.errors import Corrupt
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = [
    "ExecutionRelay",
    "MarketRelay",
    "Publish",
    "PublishOnce",
    "StreamPoint",
    "last_point",
    "resume_executions",
    "resume_market",
]

log = logging.getLogger(__name__)

# Publishes an encoded MarketEvents to a stream; waits while the writer is full.
Publish = Callable[[str, bytes], Awaitable[None]]
# Publishes an encoded Executions to a stream once per (epoch, position); waits while full.
PublishOnce = Callable[[str, bytes, int, int], Awaitable[None]]

BUS_LOSS = "the bus lost entries (Redis restarted without them)"
# Entries of a trades stream read back at start for the trades published last (per symbol).
TRADE_SEED_ENTRIES = 500


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


class MarketRelay:
    """One venue stream into one bus stream: the numbering, the refusals and the gap markers.

    The carrier opens the venue's stream with `request()`, hands its first message to `opened`
    and every later one to `take`, and calls `lost()` when the stream ends."""

    def __init__(
        self, venue: str, channel: Channel, symbols: list[str], publish: Publish, who: str = "ingest"
    ) -> None:
        self.venue = venue
        self.channel = channel
        self.symbols = symbols
        self.stream = market_stream(venue, channel)
        self.position = StreamPoint()
        self.who = who  # in the log lines
        self._publish = publish
        self._last_raw: bytes | None = None
        # Set when the bus lost entries: the start of the gap to mark before the next batch.
        self._pending_gap: int | None = None
        # On the trades channel: what was published, so a trade the venue sends again is dropped.
        self.trades = PublishedTrades() if channel is Channel.TRADES else None
        self.batches = 0
        self.reconnects = 0
        self.gaps = 0

    def request(self) -> md.SubscribeRequest:
        """The venue stream to open: DISCONNECT when too slow (a lost stream resumes; conflation
        would lose), from the last position published when there is one."""
        request = md.SubscribeRequest(symbols=self.symbols, channels=[CHANNEL_TO_PB[self.channel]])
        request.overflow_policy = md.OVERFLOW_POLICY_DISCONNECT
        if self.position.epoch:
            request.resume.epoch = self.position.epoch
            request.resume.position = self.position.position
        return request

    async def opened(self, raw: bytes) -> None:
        """A (re)opened stream's first message: refusals kept off the bus, a gap marker when the
        venue could not resume, then the rest as any batch."""
        raw, any_left = self._without_refusals(raw)
        await self._after_connect(raw)
        if any_left:
            await self.take(raw)

    async def take(self, raw: bytes) -> None:
        if self._pending_gap is not None:
            await self._gap(self._pending_gap, BUS_LOSS)
            self._pending_gap = None
        if self.trades is not None:
            kept = self.trades.without_repeats(raw)
            if kept is None:  # every event a trade published already
                return
            raw = kept
        await self._publish(self.stream, raw)
        self._last_raw = raw
        self.batches += 1

    def lost(self) -> None:
        """The venue stream ended: where to resume from (parsed from the last batch published
        only, not every batch)."""
        if self._last_raw is not None:
            self.position.update(self._last_raw)
            self._last_raw = None

    def mark_bus_loss(self, since_ns: int) -> None:
        """The bus lost entries (Redis restarted empty): the next batch goes after a gap marker."""
        self._pending_gap = since_ns

    async def mark_left(self, reason: str) -> None:
        """The venue is no longer relayed: a gap marker since the last event published, when there
        was one (what it sends from now on may be missing until it is relayed again)."""
        self.lost()
        if self.position.last_event_ns:
            await self._gap(self.position.last_event_ns, reason)

    def _without_refusals(self, raw: bytes) -> tuple[bytes, bool]:
        """The first message without the venue's REFUSED notices (a word to this subscriber, not
        market data: not for the bus), and whether events are left; a refused symbol is not
        asked for again."""
        batch = bus.MarketEvents.FromString(raw)
        refused = [e for e in batch.events if _refusal(e)]
        if not refused:
            return raw, bool(batch.events)
        for event in refused:
            reason = event.notice.reason
            log.warning("%s %s: %s not followed: %s", self.who, self.stream, event.symbol, reason)
        gone = {e.symbol for e in refused}
        self.symbols = [s for s in self.symbols if s not in gone]
        kept = [e for e in batch.events if not _refusal(e)]
        del batch.events[:]
        batch.events.extend(kept)
        return batch.SerializeToString(), bool(kept)

    async def _after_connect(self, raw: bytes) -> None:
        batch = bus.MarketEvents.FromString(raw)
        resumed_seamlessly = self.position.epoch != 0 and not opens_with_gap_notice(batch)
        if self.position.last_event_ns and not resumed_seamlessly:
            reason = f"{self.who} reconnected; the venue could not resume"
            await self._gap(self.position.last_event_ns, reason)
        if resumed_seamlessly:
            log.info("%s %s: resumed after position %d", self.who, self.stream, self.position.position)

    async def _gap(self, since_ns: int, reason: str) -> None:
        self.gaps += 1
        log.warning("%s %s: gap marker (%s)", self.who, self.stream, reason)
        markers = gap_markers(self.venue, self.symbols, self.channel, since_ns, reason)
        await self._publish(self.stream, markers)


def _refusal(event: md.MarketEvent) -> bool:
    return event.HasField("notice") and event.notice.kind == md.NOTICE_KIND_REFUSED


class ExecutionRelay:
    """A venue's executions into exec.{<venue>}, exactly once across restarts.

    Every venue response carries the venue's (epoch, position); the carrier always opens the
    stream with `request()`'s resume point (epoch 0 on an empty stream: everything the venue
    holds) and hands each response to `take`."""

    def __init__(self, venue: str, publish: PublishOnce, who: str = "ingest") -> None:
        self.venue = venue
        self.stream = executions_stream(venue)
        self.who = who
        # The last point handed to the bus: the venue process and its execution sequence.
        self.epoch = 0
        self.position = 0
        self._publish = publish
        # Appended to every venue response: names the venue in the entry (encoded messages
        # concatenated are one message with the fields of both).
        self._venue_field = bus.Executions(venue=venue).SerializeToString()
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

    def mark_bus_loss(self, since_ns: int) -> None:
        """The bus lost entries (Redis restarted empty): a gap marker goes before the next batch."""
        self._pending_gap = BUS_LOSS

    def request(self) -> tf.StreamExecutionsRequest:
        request = tf.StreamExecutionsRequest()
        request.resume.epoch = self.epoch
        request.resume.position = self.position
        return request

    async def take(self, raw: bytes) -> None:
        """One venue response (its fields are an Executions'): to the bus when it says something."""
        batch = bus.Executions.FromString(raw)
        if self._pending_gap is not None:
            marker = execution_gap_marker(self.venue, self.epoch, self.position, self._pending_gap)
            await self._publish(self.stream, marker, self.epoch, self.position)
            self.gaps += 1
            self._pending_gap = None
        if batch.gap:
            self.gaps += 1
            log.warning("%s %s: gap marker (%s)", self.who, self.stream, batch.gap_reason)
        elif not batch.executions:
            if batch.epoch == self.epoch and batch.position == self.position:
                log.info("%s %s: resumed after execution %d", self.who, self.stream, self.position)
            self.note(batch)
            return
        await self._publish(self.stream, raw + self._venue_field, batch.epoch, batch.position)
        self.note(batch)
        self.batches += 1
        self.executions += len(batch.executions)


async def last_point(redis: BusRedis, stream: str, body: str) -> Any:
    """The newest of the stream's last entries whose `body` ("market", "executions") holds a
    venue point (an epoch): where the last writer stopped; None on a stream without one."""
    entries: Any = await redis.xrevrange(stream, count=20)
    for _, fields in entries or []:
        try:
            envelope = decode(fields)
        except Corrupt:
            continue
        if envelope.WhichOneof("body") == body and getattr(envelope, body).epoch:
            return getattr(envelope, body)
    return None


async def resume_market(redis: BusRedis, relay: MarketRelay) -> None:
    """Where the last writer stopped: the last entry on the stream carries the venue's position."""
    if relay.trades is not None:
        await _seed_trades(redis, relay.stream, relay.trades)
    batch = await last_point(redis, relay.stream, "market")
    if batch is not None:
        relay.position.note(batch)
        log.info("%s %s: will resume after position %d", relay.who, relay.stream, relay.position.position)


async def _seed_trades(redis: BusRedis, stream: str, trades: PublishedTrades) -> None:
    """The trades of the stream's last entries, oldest first, as published (by any writer)."""
    entries: Any = await redis.xrevrange(stream, count=TRADE_SEED_ENTRIES)
    for _, fields in reversed(entries or []):
        try:
            envelope = decode(fields)
        except Corrupt:
            continue
        if envelope.WhichOneof("body") == "market":
            trades.note(envelope.market)


async def resume_executions(redis: BusRedis, relay: ExecutionRelay) -> None:
    """Where the last writer stopped: the last entry of exec.{<venue>} carries the venue's point."""
    batch = await last_point(redis, relay.stream, "executions")
    if batch is not None:
        relay.note(batch)
        log.info("%s %s: will resume after execution %d", relay.who, relay.stream, relay.position)
