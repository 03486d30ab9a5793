"""A counter that wakes waiters when it moves: the wake-up of the APIs' server streams (the
detector's probes and patch events, the advisor's decisions)."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["Pulse"]


class Pulse:
    """A counter that wakes waiters when it moves: `bump()` after a change (an evaluation, an
    edit), `await wait(seen, timeout)` until it is past `seen` (or the timeout passed)."""

    def __init__(self) -> None:
        self.count = 0
        # How many wait() now: a stream's reader is there (what tests wait for, not a sleep).
        self.waiters = 0
        self._moved: asyncio.Event | None = None

    def bump(self) -> None:
        self.count += 1
        if self._moved is not None:
            self._moved.set()
            self._moved = None

    async def wait(self, seen: int, timeout_s: float) -> int:
        """The count, once it is past `seen` or after `timeout_s`."""
        if self.count == seen and timeout_s > 0:
            if self._moved is None:
                self._moved = asyncio.Event()
            self.waiters += 1
            try:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._moved.wait(), timeout_s)
            finally:
                self.waiters -= 1
        return self.count
