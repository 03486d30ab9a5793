"""What the venue sent lately, so a subscriber that lost its stream can resume without a gap.

Every dispatch of market events gets the next position of this process's counter; its
encoded batches are kept for `window_s` seconds (and at most `max_bytes`). A subscriber that
comes back with (epoch, position) gets everything after that position for its routes, if it
is still held: a restarted ingest misses nothing. Positions are per venue process: another
process (another epoch) cannot resume, and says so with a GAP notice.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["History", "ResumePoint"]

# Replayed batches are joined into messages of at most about this size.
_REPLAY_MESSAGE_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ResumePoint:
    epoch: int
    position: int


@dataclass(frozen=True)
class _Sent:
    position: int
    at: float  # monotonic seconds
    batches: dict[Any, bytes]
    size: int


class History:
    def __init__(self, window_s: float, max_bytes: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.epoch = time.time_ns()
        self.position = 0
        self.window_s = window_s
        self.max_bytes = max_bytes
        self._clock = clock
        self._sent: deque[_Sent] = deque()
        self._bytes = 0

    def record(self, batches: dict[Any, bytes]) -> bytes:
        """Number this dispatch; returns the trailer (position and epoch) to append to each batch."""
        self.position += 1
        if self.window_s > 0:
            size = sum(len(b) for b in batches.values())
            self._sent.append(_Sent(self.position, self._clock(), batches, size))
            self._bytes += size
            self._trim()
        return self.trailer(self.position)

    def skip(self) -> None:
        """Number a dispatch that is not kept: what a feed did not encode before anyone listened
        (MarketFeed.listen). Every position handed out is past it, and none before it resumes."""
        self.position += 1

    def trailer(self, position: int) -> bytes:
        return md.SubscribeResponse(position=position, epoch=self.epoch).SerializeToString()

    def can_resume(self, point: ResumePoint) -> bool:
        """True when everything sent after the point is still held."""
        if point.epoch != self.epoch or point.position > self.position:
            return False
        oldest = self._sent[0].position if self._sent else self.position + 1
        return point.position + 1 >= oldest

    def replay(self, point: ResumePoint, routes: frozenset[Any]) -> Iterator[bytes]:
        """The batches sent after the point on these routes, as SubscribeResponse messages."""
        parts: list[bytes] = []
        size = 0
        last = point.position
        for sent in self._sent:
            if sent.position <= point.position:
                continue
            for route, encoded in sent.batches.items():
                if route in routes:
                    parts.append(encoded)
                    size += len(encoded)
                    last = sent.position
            if size >= _REPLAY_MESSAGE_BYTES:
                yield b"".join(parts) + self.trailer(last)
                parts, size = [], 0
        if parts:
            yield b"".join(parts) + self.trailer(last)

    def _trim(self) -> None:
        horizon = self._clock() - self.window_s
        while self._sent and (self._sent[0].at < horizon or self._bytes > self.max_bytes):
            self._bytes -= self._sent.popleft().size
