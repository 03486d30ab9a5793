"""A session's frames waiting for its client, bounded in bytes.

Data frames are offered and refused when they do not fit; control frames (a subscription's
end) always go in: there is at most one per subscription, and the client must learn of every
end. A frame alone always fits, however large, so one big message (a deep book snapshot) never
blocks a session for good. The queue knows how many bytes each subscription holds, so the
session can end the one that takes the most room.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque

__all__ = ["FrameQueue"]

# The owner of control frames: no subscription id is empty.
_CONTROL = ""


class FrameQueue:
    def __init__(self, max_bytes: int) -> None:
        self._max_bytes = max_bytes
        # (subscription id, encoded frame), oldest first.
        self._frames: deque[tuple[str, bytes]] = deque()
        # Queued bytes of data frames per subscription id (control frames are not counted: at
        # most one per subscription, and small).
        self._by_owner: Counter[str] = Counter()
        self._data_bytes = 0
        self._ready = asyncio.Event()
        self._closed = False

    @property
    def queued_bytes(self) -> int:
        """Bytes of the data frames waiting."""
        return self._data_bytes

    def bytes_of(self, owner: str) -> int:
        return self._by_owner[owner]

    def heaviest(self) -> str | None:
        """The subscription id holding the most queued bytes; None when no data frame waits."""
        found = self._by_owner.most_common(1)
        return found[0][0] if found else None

    def offer(self, owner: str, frame: bytes) -> bool:
        """Queues a data frame of subscription `owner`; False, and nothing queued, when it does
        not fit."""
        if self._data_bytes > 0 and self._data_bytes + len(frame) > self._max_bytes:
            return False
        if not self._closed:
            self._append(owner, frame)
            self._by_owner[owner] += len(frame)
            self._data_bytes += len(frame)
        return True

    def put_control(self, frame: bytes) -> None:
        """Queues a control frame, whatever the bound; never dropped."""
        if not self._closed:
            self._append(_CONTROL, frame)

    def drop(self, owner: str) -> int:
        """Removes every queued data frame of `owner`; how many there were."""
        kept = deque(item for item in self._frames if item[0] != owner)
        dropped = len(self._frames) - len(kept)
        self._frames = kept
        self._data_bytes -= self._by_owner.pop(owner, 0)
        return dropped

    async def take(self) -> bytes | None:
        """The oldest frame, once there is one; None once the queue is closed."""
        while not self._frames:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        owner, frame = self._frames.popleft()
        if owner != _CONTROL:
            self._data_bytes -= len(frame)
            self._by_owner[owner] -= len(frame)
            if self._by_owner[owner] <= 0:
                del self._by_owner[owner]
        return frame

    def close(self) -> None:
        """take() answers None from now on; what is queued is dropped."""
        self._closed = True
        self._frames.clear()
        self._by_owner.clear()
        self._data_bytes = 0
        self._ready.set()

    def _append(self, owner: str, frame: bytes) -> None:
        self._frames.append((owner, frame))
        self._ready.set()
