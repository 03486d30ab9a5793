"""Stream executions (order updates and fills) to every TradeFlow.StreamExecutions caller.

Every execution gets the next sequence of this venue process's counter (its epoch: the
process's start time) and is kept in a bounded history, whether anyone listens or not. A
caller that comes back with a resume point (epoch, position) first gets the executions
after it, then live ones: a restarted ingest misses none and repeats none. When the history
no longer covers the point (another venue process, or more executions since than it keeps),
the stream's first response says `gap` and the replay starts at the oldest execution held.

Executions are never conflated: a subscriber that falls a whole queue behind is ended with
RESOURCE_EXHAUSTED and must resume (or re-read open orders) when it comes back.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import AsyncIterator

from trademesh.core.domain.convert import execution_to_pb
from trademesh.core.domain.model import Execution
from trademesh.core.platform.errors import ResourceExhausted
from trademesh.core.platform.rpc.outbox import Outbox
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.runtime.history import ResumePoint

__all__ = ["ExecutionHub", "ExecutionSubscriber"]

_BATCH_MAX = 500


class ExecutionSubscriber:
    def __init__(self, symbols: frozenset[str], queue_size: int) -> None:
        self.symbols = symbols
        self.queue_size = queue_size
        self.outbox = Outbox[tf.Execution](queue_size)
        # A resumed stream's first response: where the replay goes on from, and any gap.
        self.header: tf.StreamExecutionsResponse | None = None

    def wants(self, symbol: str) -> bool:
        return not self.symbols or symbol in self.symbols

    def offer(self, execution: tf.Execution) -> bool:
        return self.outbox.offer(execution)

    def end(self, error: ResourceExhausted | None = None) -> None:
        self.outbox.end(error)

    def batches(self) -> AsyncIterator[list[tf.Execution]]:
        return self.outbox.batches(_BATCH_MAX)


class ExecutionHub:
    def __init__(
        self, venue: str, queue_size: int, history_size: int = 50_000, epoch: int | None = None
    ) -> None:
        self.venue = venue
        self.queue_size = queue_size
        self.subscribers: set[ExecutionSubscriber] = set()
        self.dropped = 0
        # The counter of this process's executions: the last sequence given, and whose it is.
        self.epoch = epoch if epoch is not None else time.time_ns()
        self.position = 0
        # (sequence, symbol, encoded Execution): encoded, a held execution costs a tenth.
        self._history: deque[tuple[int, str, bytes]] = deque(maxlen=max(1, history_size))

    def subscribe(self, symbols: frozenset[str], resume: ResumePoint | None = None) -> ExecutionSubscriber:
        """A new subscriber; with a resume point, its outbox first holds the replay (in the same
        step as it joins, so no live execution falls between the two) and `header` is set."""
        subscriber = ExecutionSubscriber(symbols, self.queue_size)
        if resume is not None:
            subscriber.header = self._replay(subscriber, resume)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: ExecutionSubscriber) -> None:
        self.subscribers.discard(subscriber)

    def publish(self, execution: Execution) -> None:
        self.position += 1
        message = execution_to_pb(self.venue, execution)
        message.sequence = self.position
        self._history.append((self.position, execution.order.symbol, message.SerializeToString()))
        for subscriber in list(self.subscribers):
            if subscriber.wants(execution.order.symbol) and not subscriber.offer(message):
                self._drop(subscriber)

    def response(self, batch: list[tf.Execution]) -> tf.StreamExecutionsResponse:
        return tf.StreamExecutionsResponse(executions=batch, position=batch[-1].sequence, epoch=self.epoch)

    def end_all(self) -> int:
        ended = len(self.subscribers)
        for subscriber in list(self.subscribers):
            subscriber.end()
        self.subscribers.clear()
        return ended

    def oldest(self) -> int:
        """The sequence of the oldest execution held (position + 1 when none is)."""
        return self._history[0][0] if self._history else self.position + 1

    def _replay(self, subscriber: ExecutionSubscriber, point: ResumePoint) -> tf.StreamExecutionsResponse:
        """Queues what follows the point and returns the header saying where it goes on from."""
        reason = self._gap_reason(point)
        after = (point.position if point.epoch else 0) if not reason else self.oldest() - 1
        replayed = 0
        for sequence, symbol, encoded in self._history:
            if sequence > after and subscriber.wants(symbol):
                subscriber.outbox.put(tf.Execution.FromString(encoded))
                replayed += 1
        # The replay does not count against the live queue (the history bounds it).
        subscriber.outbox.limit += replayed
        return tf.StreamExecutionsResponse(
            position=after, epoch=self.epoch, gap=bool(reason), gap_reason=reason
        )

    def _gap_reason(self, point: ResumePoint) -> str:
        """Why the executions after the point cannot all be sent; "" when they can."""
        if point.epoch not in (0, self.epoch):
            return (
                f"cannot resume from execution {point.position} of epoch {point.epoch}: this venue "
                f"process (epoch {self.epoch}) did not make it; executions may be missing"
            )
        after = point.position if point.epoch else 0
        if after > self.position:
            return (
                f"cannot resume from execution {after}: this venue process (epoch {self.epoch}) "
                f"is at {self.position}"
            )
        if after + 1 < self.oldest():
            return (
                f"cannot resume from execution {after}: this venue process (epoch {self.epoch}) holds "
                f"executions from {self.oldest()} on; executions may be missing"
            )
        return ""

    def _drop(self, subscriber: ExecutionSubscriber) -> None:
        self.dropped += 1
        self.unsubscribe(subscriber)
        subscriber.end(
            ResourceExhausted(
                f"execution subscriber too slow: {subscriber.queue_size} executions queued; "
                "resume from the last execution seen (or re-read open orders) and subscribe again"
            )
        )
