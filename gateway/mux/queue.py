"""A session's frames waiting for its client, bounded in bytes.

Data frames are offered and refused when they do not fit; control frames (a subscription's
end) always go in: there is at most one per subscription, and the client must learn of every
end. A frame alone always fits, however large, so one big message (a deep book snapshot) never
blocks a session for good.
"""

from __future__ import annotations

import asyncio
from collections import deque

__all__ = ["FrameQueue"]


class FrameQueue:
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        # (subscription id, encoded frame), oldest first.
        self._frames: deque[tuple[str, bytes]] = deque()
        self._bytes = 0
        self._ready = asyncio.Event()
        self._closed = False

    @property
    def queued_bytes(self) -> int:
        return self._bytes

    def offer(self, owner: str, frame: bytes) -> bool:
        """Queues a data frame; False, and nothing queued, when it does not fit."""
        if self._bytes > 0 and self._bytes + len(frame) > self._max_bytes:
            return False
        self.put(owner, frame)
        return True

    def put(self, owner: str, frame: bytes) -> None:
        if self._closed:
            return
        self._frames.append((owner, frame))
        self._bytes += len(frame)
        self._ready.set()

    def drop(self, owner: str) -> int:
        """Removes every queued frame of `owner`; how many there were."""
        kept = deque(item for item in self._frames if item[0] != owner)
        dropped = len(self._frames) - len(kept)
        self._frames = kept
        self._bytes = sum(len(frame) for _, frame in kept)
        return dropped

    async def take(self) -> bytes | None:
        """The oldest frame, once there is one; None once the queue is closed."""
        while not self._frames:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        _, frame = self._frames.popleft()
        self._bytes -= len(frame)
        return frame

    def close(self) -> None:
        """take() answers None from now on; what is queued is dropped."""
        self._closed = True
        self._frames.clear()
        self._bytes = 0
        self._ready.set()
