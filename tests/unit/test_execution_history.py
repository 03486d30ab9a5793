"""The venue's execution counter and history: resume without a gap, or say there is one."""

from __future__ import annotations

from decimal import Decimal

import pytest

from trademesh.core.domain.model import Execution, Order, OrderType, Side, TimeInForce
from trademesh.core.platform.errors import ResourceExhausted
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.runtime.executions import ExecutionHub, ExecutionSubscriber
from trademesh.venues.runtime.history import ResumePoint

EPOCH = 1_700_000_000_000_000_000


def _execution(n: int, symbol: str = "BTC/USDT") -> Execution:
    order = Order(
        "sim", f"o{n}", "", symbol, Side.BUY, OrderType.LIMIT, TimeInForce.GTC, Decimal(1), Decimal(1),
        updated_ns=n,
    )  # fmt: skip
    return Execution(ts_event_ns=n, order=order)


def _hub(history: int = 100) -> ExecutionHub:
    return ExecutionHub("sim", queue_size=10, history_size=history, epoch=EPOCH)


def _queued(subscriber: ExecutionSubscriber) -> list[int]:
    out = []
    while subscriber.outbox.depth:
        item = subscriber.outbox._queue.get_nowait()
        assert item is not None
        out.append(item.sequence)
    return out


def test_every_execution_is_numbered_whoever_listens() -> None:
    hub = _hub()
    for n in range(1, 4):
        hub.publish(_execution(n))
    live = hub.subscribe(frozenset())
    hub.publish(_execution(4))
    assert hub.position == 4
    assert _queued(live) == [4]
    assert live.header is None
    assert hub.response([tf.Execution(sequence=4)]) == tf.StreamExecutionsResponse(
        executions=[tf.Execution(sequence=4)], position=4, epoch=EPOCH
    )


def test_resume_replays_what_follows_the_point_then_live() -> None:
    hub = _hub()
    for n in range(1, 6):
        hub.publish(_execution(n))
    subscriber = hub.subscribe(frozenset(), ResumePoint(EPOCH, 3))
    hub.publish(_execution(6))
    assert subscriber.header == tf.StreamExecutionsResponse(position=3, epoch=EPOCH)
    assert _queued(subscriber) == [4, 5, 6]


def test_epoch_zero_asks_for_everything_held() -> None:
    hub = _hub()
    for n in range(1, 4):
        hub.publish(_execution(n))
    subscriber = hub.subscribe(frozenset(), ResumePoint(0, 0))
    assert subscriber.header is not None and not subscriber.header.gap
    assert subscriber.header.position == 0
    assert _queued(subscriber) == [1, 2, 3]


def test_a_point_older_than_the_history_is_a_gap_then_the_oldest_held() -> None:
    hub = _hub(history=3)
    for n in range(1, 8):
        hub.publish(_execution(n))
    subscriber = hub.subscribe(frozenset(), ResumePoint(EPOCH, 2))
    assert subscriber.header is not None and subscriber.header.gap
    assert subscriber.header.position == 4
    assert "holds executions from 5" in subscriber.header.gap_reason
    assert _queued(subscriber) == [5, 6, 7]
    # The point just before the oldest held is still seamless.
    seamless = hub.subscribe(frozenset(), ResumePoint(EPOCH, 4))
    assert seamless.header is not None and not seamless.header.gap
    assert _queued(seamless) == [5, 6, 7]


def test_another_epoch_is_a_gap_then_all_of_this_process() -> None:
    hub = _hub()
    for n in range(1, 3):
        hub.publish(_execution(n))
    subscriber = hub.subscribe(frozenset(), ResumePoint(EPOCH - 1, 10))
    assert subscriber.header is not None and subscriber.header.gap
    assert subscriber.header.epoch == EPOCH and subscriber.header.position == 0
    assert "did not make it" in subscriber.header.gap_reason
    assert _queued(subscriber) == [1, 2]


def test_a_point_ahead_of_the_venue_is_a_gap() -> None:
    hub = _hub()
    hub.publish(_execution(1))
    subscriber = hub.subscribe(frozenset(), ResumePoint(EPOCH, 9))
    assert subscriber.header is not None and subscriber.header.gap


def test_replay_keeps_the_symbol_filter_and_may_exceed_the_queue() -> None:
    hub = _hub()
    for n in range(1, 31):
        hub.publish(_execution(n, "ETH/USDT" if n % 2 else "BTC/USDT"))
    subscriber = hub.subscribe(frozenset({"BTC/USDT"}), ResumePoint(EPOCH, 0))
    for n in range(31, 41):  # the live queue of 10 is still whole after the replay
        hub.publish(_execution(n, "BTC/USDT"))
    assert subscriber in hub.subscribers
    assert _queued(subscriber) == [*range(2, 31, 2), *range(31, 41)]  # 15 replayed > the queue of 10


async def test_a_slow_subscriber_is_ended_never_conflated() -> None:
    hub = _hub()
    subscriber = hub.subscribe(frozenset())
    for n in range(1, 12):
        hub.publish(_execution(n))
    assert hub.dropped == 1 and subscriber not in hub.subscribers
    with pytest.raises(ResourceExhausted):
        async for _ in subscriber.batches():
            pass
