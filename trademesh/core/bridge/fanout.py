"""The bridge's fan-out: bus events to LiveData subscribers, each with its own bounded queue.

Subscriptions are indexed by route (venue, kind, symbol), with ANY for an empty filter, so
finding an event's subscribers is at most four dict lookups per kind it reaches, however
many unrelated subscribers there are; the answer is kept per route until a subscription
changes. Events are offered to queues, never awaited: a subscriber whose queue is full is
conflated (its queue replaced by GAP notices and fresh snapshots) or disconnected.

A round is one bus read: events are framed as they come, gathered per subscriber, and each
subscriber is offered one message at the end of the round (or sooner when it grows past
MESSAGE_BYTES, so messages stay under clients' default 4 MiB limit). (A venue's own fan-out
to its Subscribe streams is trademesh.venues.runtime.fanout; what both share is
trademesh.core.platform.rpc.fanout.)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass

from trademesh.core.bridge.metrics import SLOW_SUBSCRIBERS
from trademesh.core.bridge.routes import ANY, Key, targets
from trademesh.core.platform.errors import ResourceExhausted
from trademesh.core.platform.rpc.fanout import Overflow, QueuedSubscriber, joined, too_slow

__all__ = ["MESSAGE_BYTES", "LiveFanout", "LiveInterest", "LiveRoute", "LiveSubscriber"]

# A subscriber's message is closed once it reaches this size.
MESSAGE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class LiveInterest:
    """What a subscriber follows; empty venues or symbols mean all."""

    venues: frozenset[str]
    symbols: frozenset[str]
    kinds: frozenset[str]  # route kinds (see trademesh.core.bridge.routes)
    overflow: Overflow

    def index_keys(self) -> Iterator[Key]:
        for venue in self.venues or (ANY,):
            for kind in self.kinds:
                for symbol in self.symbols or (ANY,):
                    yield venue, kind, symbol

    def covers(self, venue: str, symbol: str) -> bool:
        return (not self.venues or venue in self.venues) and (not self.symbols or symbol in self.symbols)


class LiveRoute:
    """One stream of events as the bridge sees it: who follows it, and what passed."""

    __slots__ = ("events_total", "key", "last_event_ns", "subscribers", "version")

    def __init__(self, key: Key) -> None:
        self.key = key
        self.subscribers: tuple[LiveSubscriber, ...] = ()
        self.version = -1
        self.events_total = 0
        self.last_event_ns = 0


class LiveSubscriber(QueuedSubscriber[LiveInterest, tuple[int, bytes]]):
    """A LiveData stream; each queued message is (when queued, encoded SubscribeResponse)."""

    def __init__(self, interest: LiveInterest, queue_batches: int, now_ns: int) -> None:
        super().__init__(interest, queue_batches)
        self.pending: list[bytes] = []  # this round's chunks, not yet offered
        self.pending_bytes = 0
        # When the last message it took was queued: anything after may be lost in a conflation.
        self.taken_ns = now_ns
        self.closed = False

    def offer(self, now_ns: int, data: bytes) -> bool:
        return self.outbox.offer((now_ns, data))

    def end(self, error: ResourceExhausted | None = None) -> None:
        self.closed = True
        super().end(error)

    async def messages(self) -> AsyncIterator[bytes]:
        async for items in self.outbox.batches(1):
            self.taken_ns, data = items[0]
            yield data


# Given a subscriber that fell behind: what replaces its queue (GAP notices, fresh snapshots).
Recover = Callable[[LiveSubscriber, int], list[bytes]]


class LiveFanout:
    def __init__(self, queue_batches: int, recover: Recover, clock: Callable[[], int] = time.time_ns) -> None:
        self.queue_batches = queue_batches
        self._recover = recover
        self._clock = clock
        self._index: dict[Key, set[LiveSubscriber]] = {}
        self._routes: dict[Key, LiveRoute] = {}
        self._version = 0
        self._touched: list[LiveSubscriber] = []
        self._now_ns = 0
        self.subscribers: set[LiveSubscriber] = set()
        self.disconnected = 0
        self.conflated = 0

    # ---- subscriptions

    def subscribe(self, interest: LiveInterest, initial: Iterable[bytes]) -> LiveSubscriber:
        """A new subscriber; its first message (always sent, maybe empty) holds `initial`."""
        now_ns = self._clock()
        subscriber = LiveSubscriber(interest, self.queue_batches, now_ns)
        messages = _messages(list(initial))
        if len(messages) > self.queue_batches:
            raise ResourceExhausted(_too_big(len(messages), self.queue_batches))
        for message in messages:
            subscriber.offer(now_ns, message)
        for key in interest.index_keys():
            self._index.setdefault(key, set()).add(subscriber)
        self.subscribers.add(subscriber)
        self._version += 1
        return subscriber

    def unsubscribe(self, subscriber: LiveSubscriber) -> None:
        if subscriber not in self.subscribers:
            return
        self.subscribers.discard(subscriber)
        for key in subscriber.interest.index_keys():
            members = self._index.get(key)
            if members is not None:
                members.discard(subscriber)
                if not members:
                    del self._index[key]
        self._version += 1

    def max_depth(self) -> int:
        """The deepest subscriber queue, in messages.

        Called from the metrics server's thread while the loop subscribes and unsubscribes: the
        set is copied in one step (a C-level copy holds the GIL) before it is walked."""
        return max((subscriber.depth for subscriber in tuple(self.subscribers)), default=0)

    def end_all(self) -> int:
        ended = len(self.subscribers)
        for subscriber in list(self.subscribers):
            self.unsubscribe(subscriber)
            subscriber.end()
        return ended

    # ---- routes

    def route(self, key: Key) -> LiveRoute:
        """The route of an event's (venue, kind, symbol), with its subscribers up to date."""
        route = self._routes.get(key)
        if route is None:
            route = self._routes[key] = LiveRoute(key)
        if route.version != self._version:
            route.subscribers = self._lookup(key)
            route.version = self._version
        return route

    def routes(self) -> list[LiveRoute]:
        return list(self._routes.values())

    def _lookup(self, key: Key) -> tuple[LiveSubscriber, ...]:
        venue, kind, symbol = key
        found: dict[LiveSubscriber, None] = {}
        for target in targets(kind):
            for candidate in ((venue, target, symbol), (venue, target, ANY), (ANY, target, symbol)):
                found.update(dict.fromkeys(self._index.get(candidate, ())))
            found.update(dict.fromkeys(self._index.get((ANY, target, ANY), ())))
        return tuple(found)

    # ---- rounds

    def start_round(self) -> None:
        self._now_ns = self._clock()

    def send(self, subscribers: tuple[LiveSubscriber, ...], chunk: bytes) -> None:
        """Add an encoded chunk to each subscriber's message of this round."""
        for subscriber in subscribers:
            if not subscriber.pending:
                self._touched.append(subscriber)
            subscriber.pending.append(chunk)
            subscriber.pending_bytes += len(chunk)
            if subscriber.pending_bytes >= MESSAGE_BYTES:
                self._deliver(subscriber)

    def end_round(self) -> None:
        touched, self._touched = self._touched, []
        for subscriber in touched:
            if subscriber.pending:
                self._deliver(subscriber)

    def _deliver(self, subscriber: LiveSubscriber) -> None:
        data = b"".join(subscriber.pending)
        subscriber.pending.clear()
        subscriber.pending_bytes = 0
        if subscriber.closed:
            return
        if not subscriber.offer(self._now_ns, data):
            self._overflow(subscriber)

    def _overflow(self, subscriber: LiveSubscriber) -> None:
        if subscriber.interest.overflow is Overflow.CONFLATE:
            # The recovery stands for everything up to now, this message included: drop both.
            self.conflated += 1
            SLOW_SUBSCRIBERS.labels("conflated").inc()
            subscriber.conflations += 1
            first, *rest = _messages(self._recover(subscriber, subscriber.taken_ns))
            if len(rest) < subscriber.queue_batches:
                subscriber.outbox.replace((self._now_ns, first))
                for message in rest:
                    subscriber.offer(self._now_ns, message)
                return
            self._disconnect(subscriber, _too_big(len(rest) + 1, subscriber.queue_batches))
            return
        self._disconnect(subscriber, too_slow(subscriber.queue_batches, "messages"))

    def _disconnect(self, subscriber: LiveSubscriber, why: str) -> None:
        self.disconnected += 1
        SLOW_SUBSCRIBERS.labels("disconnected").inc()
        self.unsubscribe(subscriber)
        subscriber.end(ResourceExhausted(why))


def _too_big(messages: int, queue_batches: int) -> str:
    return (
        f"the subscription's book snapshots take {messages} messages, more than its queue of "
        f"{queue_batches}: subscribe to fewer books (or run the bridge with a larger --queue-batches)"
    )


def _messages(chunks: list[bytes]) -> list[bytes]:
    """Chunks joined into messages of about MESSAGE_BYTES; at least one message, maybe empty."""
    return list(joined(chunks, MESSAGE_BYTES)) or [b""]
