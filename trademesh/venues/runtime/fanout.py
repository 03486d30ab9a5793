"""A venue's market events to its MarketData/Subscribe streams, each with its own bounded queue.

Events arrive already encoded as SubscribeResponse field chunks, so a batch for a
subscriber is a byte join: no per-subscriber protobuf work, and a slow subscriber
costs the venue nothing but a full queue, handled by its overflow policy. (The bridge's
LiveData fan-out is trademesh.core.bridge.fanout; what both share is trademesh.core.platform.rpc.fanout.)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from trademesh.core.domain.model import Channel, Timeframe
from trademesh.core.platform.errors import ResourceExhausted
from trademesh.core.platform.rpc.fanout import Overflow, QueuedSubscriber, joined, too_slow
from trademesh.venues.runtime.history import History, ResumePoint

__all__ = [
    "JOIN_BYTES",
    "JOIN_MOST",
    "MarketFanout",
    "MarketInterest",
    "MarketRoute",
    "MarketSubscriber",
    "joined",
]

# Where an event goes: (symbol, channel, candle timeframe or None).
MarketRoute = tuple[str, Channel, Timeframe | None]
# A subscriber that has fallen behind gets the batches queued for it joined into one message, up
# to these bounds: the per-message costs (gRPC's, and the consumer's own per message) are paid
# once for many. One that keeps up gets each batch alone, at once, as before.
JOIN_MOST = 64
JOIN_BYTES = 1 << 20


@dataclass(frozen=True)
class MarketInterest:
    """What a Subscribe stream follows."""

    routes: frozenset[MarketRoute]
    overflow: Overflow

    @property
    def book_symbols(self) -> list[str]:
        return sorted({symbol for symbol, channel, _ in self.routes if channel is Channel.BOOK})


class MarketSubscriber(QueuedSubscriber[MarketInterest, bytes]):
    def offer(self, batch: bytes) -> bool:
        return self.outbox.offer(batch)

    async def batches(self) -> AsyncIterator[bytes]:
        """The queued batches, joined (JOIN_MOST, JOIN_BYTES). A join of encoded
        SubscribeResponses is one SubscribeResponse: the events in order, and the last
        batch's position and epoch (protobuf: a repeated field appends, a scalar's last wins)."""
        async for items in self.outbox.batches(JOIN_MOST):
            for message in joined(items, JOIN_BYTES):
                yield message


class MarketFanout:
    """Routes encoded events to the subscribers interested in them."""

    def __init__(
        self, queue_batches: int, recover: Callable[[str, Channel], bytes], history: History | None = None
    ) -> None:
        self._queue_batches = queue_batches
        # Every dispatch is numbered (position, epoch) and kept a while for resuming subscribers.
        self.history = history or History(window_s=0, max_bytes=0)
        # (symbol, channel) -> what a conflated subscriber gets instead of what it missed:
        # a GAP notice on that channel, plus a fresh snapshot for a book.
        self._recover = recover
        self._index: dict[MarketRoute, set[MarketSubscriber]] = {}
        self.subscribers: set[MarketSubscriber] = set()
        self.dropped = 0
        self.conflated = 0
        # Called before a subscriber is added (the runtime's: its feed starts encoding, VenueRuntime.listen).
        self.on_subscribe: Callable[[], None] | None = None

    def subscribe(
        self, interest: MarketInterest, initial: bytes, resume: ResumePoint | None = None
    ) -> MarketSubscriber:
        """A new subscriber: `initial` first (snapshots), or, resuming, `initial` (its own
        notices, if any) then what it missed since the point.

        Call can_resume first: a point that cannot be resumed is the caller's to handle.
        """
        if self.on_subscribe is not None:
            self.on_subscribe()
        subscriber = MarketSubscriber(interest, self._queue_batches)
        if resume is not None:
            if initial:
                subscriber.outbox.put(initial)
            for message in self.history.replay(resume, frozenset(interest.routes)):
                subscriber.outbox.put(message)
        elif initial:
            subscriber.offer(initial + self.history.trailer(self.history.position))
        for route in interest.routes:
            self._index.setdefault(route, set()).add(subscriber)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: MarketSubscriber) -> None:
        self.subscribers.discard(subscriber)
        for route in subscriber.interest.routes:
            members = self._index.get(route)
            if members is not None:
                members.discard(subscriber)
                if not members:
                    del self._index[route]

    def total(self) -> int:
        """Subscribers across every route (one subscriber counts once per route it follows)."""
        return sum(len(members) for members in self._index.values())

    def max_depth(self) -> int:
        """The longest subscriber queue, in batches."""
        return max((s.depth for members in self._index.values() for s in members), default=0)

    def count(self, route: MarketRoute) -> int:
        return len(self._index.get(route, ()))

    def dispatch(self, pending: dict[MarketRoute, bytes]) -> None:
        """Send each subscriber one batch: the join of its routes' encoded SubscribeResponses."""
        trailer = self.history.record(pending)
        batches: dict[MarketSubscriber, list[bytes]] = {}
        for route, encoded in pending.items():
            for subscriber in self._index.get(route, ()):
                batches.setdefault(subscriber, []).append(encoded)
        for subscriber, parts in batches.items():
            parts.append(trailer)
            if not subscriber.offer(b"".join(parts)):
                self._overflow(subscriber)

    def end_all(self) -> int:
        ended = len(self.subscribers)
        for subscriber in list(self.subscribers):
            subscriber.end()
            self.unsubscribe(subscriber)
        return ended

    def _overflow(self, subscriber: MarketSubscriber) -> None:
        if subscriber.interest.overflow is Overflow.CONFLATE:
            self.conflated += 1
            subscriber.conflations += 1
            streams = sorted({(symbol, channel.value) for symbol, channel, _ in subscriber.interest.routes})
            recovery = b"".join(self._recover(s, Channel(c)) for s, c in streams)
            subscriber.outbox.replace(recovery + self.history.trailer(self.history.position))
            return
        self.drop(subscriber, too_slow(subscriber.queue_batches, "batches"))

    def drop(self, subscriber: MarketSubscriber, reason: str) -> bool:
        """End `subscriber`'s stream with RESOURCE_EXHAUSTED (`reason`), as a full DISCONNECT queue
        does (what it queued is dropped; it resumes from its last position); False when it was
        not subscribed (ended already)."""
        if subscriber not in self.subscribers:
            return False
        self.dropped += 1
        self.unsubscribe(subscriber)
        subscriber.end(ResourceExhausted(reason))
        return True
