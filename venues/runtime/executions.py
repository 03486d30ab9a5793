"""Stream executions (order updates and fills) to every TradeFlow.StreamExecutions caller.

Executions are never conflated: a subscriber that falls a whole queue behind is
ended with RESOURCE_EXHAUSTED and must re-read open orders when it comes back.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from core.convert import execution_to_pb
from core.errors import ResourceExhausted
from core.model import Execution
from core.outbox import Outbox
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["ExecutionHub", "ExecutionSubscriber"]

_BATCH_MAX = 500


class ExecutionSubscriber:
    def __init__(self, symbols: frozenset[str], queue_size: int) -> None:
        self.symbols = symbols
        self.queue_size = queue_size
        self.outbox = Outbox[tf.Execution](queue_size)

    def wants(self, symbol: str) -> bool:
        return not self.symbols or symbol in self.symbols

    def offer(self, execution: tf.Execution) -> bool:
        return self.outbox.offer(execution)

    def end(self, error: ResourceExhausted | None = None) -> None:
        self.outbox.end(error)

    def batches(self) -> AsyncIterator[list[tf.Execution]]:
        return self.outbox.batches(_BATCH_MAX)


class ExecutionHub:
    def __init__(self, venue: str, queue_size: int) -> None:
        self.venue = venue
        self.queue_size = queue_size
        self.subscribers: set[ExecutionSubscriber] = set()
        self.dropped = 0

    def subscribe(self, symbols: frozenset[str]) -> ExecutionSubscriber:
        subscriber = ExecutionSubscriber(symbols, self.queue_size)
        self.subscribers.add(subscriber)
        return subscriber

    def unsubscribe(self, subscriber: ExecutionSubscriber) -> None:
        self.subscribers.discard(subscriber)

    def publish(self, execution: Execution) -> None:
        if not self.subscribers:
            return
        message = execution_to_pb(self.venue, execution)
        for subscriber in list(self.subscribers):
            if subscriber.wants(execution.order.symbol) and not subscriber.offer(message):
                self._drop(subscriber)

    def end_all(self) -> int:
        ended = len(self.subscribers)
        for subscriber in list(self.subscribers):
            subscriber.end()
        self.subscribers.clear()
        return ended

    def _drop(self, subscriber: ExecutionSubscriber) -> None:
        self.dropped += 1
        self.unsubscribe(subscriber)
        subscriber.end(
            ResourceExhausted(
                f"execution subscriber too slow: {subscriber.queue_size} executions queued; "
                "re-read open orders and subscribe again"
            )
        )
