"""What the two fan-outs share: the overflow policy, and a subscriber's bounded queue.

Each fan-out indexes and batches for its own traffic, so they stay two classes:
- trademesh.venues.runtime.fanout.MarketFanout sends a venue's pre-encoded batches to its
  MarketData/Subscribe streams, one message per flush (a subscriber that has fallen behind
  gets the flushes queued for it joined into one), with a resumable history;
- trademesh.core.bridge.fanout.LiveFanout sends bus events to the bridge's LiveData subscribers, in
  rounds of one bus read, through an index that also matches "any venue" and "any symbol".
A subscriber of either queues whole encoded messages; a full queue is settled by its Overflow.
Both join encoded items into messages of a bounded size the same way (`joined`).
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import Generic, TypeVar

from trademesh.core.platform.errors import ResourceExhausted
from trademesh.core.platform.rpc.outbox import Outbox

__all__ = ["Overflow", "QueuedSubscriber", "joined", "too_slow"]

InterestT = TypeVar("InterestT")
ItemT = TypeVar("ItemT")


class Overflow(enum.Enum):
    """What a full subscriber queue means (OVERFLOW_POLICY_* on the wire)."""

    DISCONNECT = "disconnect"  # the stream ends with RESOURCE_EXHAUSTED
    CONFLATE = "conflate"  # the queue is replaced by GAP notices and fresh snapshots


class QueuedSubscriber(Generic[InterestT, ItemT]):
    """One subscriber: what it follows, and its outbox of at most `queue_batches` messages."""

    def __init__(self, interest: InterestT, queue_batches: int) -> None:
        self.interest = interest
        self.queue_batches = queue_batches
        self.outbox = Outbox[ItemT](queue_batches)
        self.conflations = 0

    @property
    def depth(self) -> int:
        return self.outbox.depth

    def end(self, error: ResourceExhausted | None = None) -> None:
        self.outbox.end(error)


def too_slow(queue_batches: int, unit: str) -> str:
    """Why a DISCONNECT subscriber's stream ended."""
    return (
        f"subscriber too slow: its queue of {queue_batches} {unit} is full; "
        "read faster, subscribe to less, or use OVERFLOW_POLICY_CONFLATE"
    )


def joined(items: list[bytes], limit: int) -> Iterator[bytes]:
    """Consecutive items joined into messages of at most `limit` bytes (an item over the
    limit alone is a message of its own)."""
    part: list[bytes] = []
    size = 0
    for item in items:
        if part and size + len(item) > limit:
            yield b"".join(part)
            part, size = [], 0
        part.append(item)
        size += len(item)
    if part:
        yield b"".join(part)
