"""The bridge's state: books, routes and subscribers, and what a new or conflated subscriber gets."""

from __future__ import annotations

import time
from collections.abc import Callable

from trademesh.core.bridge.books import BridgeBooks
from trademesh.core.bridge.encode import event_chunk, notice_event
from trademesh.core.bridge.fanout import LiveFanout, LiveInterest, LiveRoute, LiveSubscriber
from trademesh.core.bridge.pump import Pump
from trademesh.core.bridge.routes import BOOK, NOTICES, gap_channel, is_notice
from trademesh.core.platform.errors import Unavailable

__all__ = ["Bridge"]


class Bridge:
    def __init__(self, queue_batches: int, clock: Callable[[], int] = time.time_ns) -> None:
        self._clock = clock
        self.books = BridgeBooks()
        self.fanout = LiveFanout(queue_batches, self._recover, clock)
        self.pump = Pump(self.fanout, self.books, clock)
        # False until the bridge has joined the bus (books rebuilt): subscribers wait for it.
        self.ready = False

    def subscribe(self, interest: LiveInterest) -> LiveSubscriber:
        if not self.ready:
            raise Unavailable("the bridge is starting (joining the bus); retry in a moment")
        return self.fanout.subscribe(interest, self._snapshots(interest))

    def unsubscribe(self, subscriber: LiveSubscriber) -> None:
        self.fanout.unsubscribe(subscriber)

    def end_all(self) -> int:
        """End every stream (cleanly, after what is queued); how many there were."""
        return self.fanout.end_all()

    def _snapshots(self, interest: LiveInterest) -> list[bytes]:
        if BOOK not in interest.kinds:
            return []
        keys = sorted(key for key in self.books.usable() if interest.covers(*key))
        return [self.books.snapshot_chunk(venue, symbol) for venue, symbol in keys]

    def _recover(self, subscriber: LiveSubscriber, since_ns: int) -> list[bytes]:
        """A GAP notice for every stream the subscriber follows, and a fresh snapshot of every book."""
        now_ns = self._clock()
        reason = (
            f"bridge: the subscriber fell behind (its queue of {subscriber.queue_batches} messages "
            "was full) and events were dropped"
        )
        chunks: list[bytes] = []
        seen: set[tuple[str, str, str]] = set()
        for route in sorted(self.fanout.routes(), key=lambda r: r.key):
            venue, kind, symbol = route.key
            channel, about = gap_channel(kind)
            if not _follows(subscriber.interest, route) or (venue, symbol, about) in seen:
                continue
            seen.add((venue, symbol, about))
            gap = notice_event(venue, symbol, channel, f"{reason} ({about})", since_ns, now_ns)
            chunks.append(event_chunk(gap))
            if kind == BOOK:
                chunks.append(self.books.snapshot_chunk(venue, symbol))
        return chunks


def _follows(interest: LiveInterest, route: LiveRoute) -> bool:
    venue, kind, symbol = route.key
    wanted = NOTICES in interest.kinds if is_notice(kind) else kind in interest.kinds
    return wanted and interest.covers(venue, symbol)
