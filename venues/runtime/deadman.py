"""The dead-man switch: unless heartbeats keep coming, cancel every open order.

The runtime always keeps its own timer; a venue with a native cancel-all-after
is armed as well, so orders are cancelled even if this process dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

__all__ = ["MAX_TTL_MS", "MIN_TTL_MS", "DeadMan", "DeadManState"]

log = logging.getLogger(__name__)

MAX_TTL_MS = 3_600_000
# A shorter ttl is no heartbeat but a delayed cancel-all (ttl_ms = 1 lapses before any second
# heartbeat could come): cancelling everything is CancelAllOrders' job.
MIN_TTL_MS = 1_000


@dataclass(frozen=True)
class DeadManState:
    armed: bool
    ttl_ms: int
    deadline_ns: int
    trips: int
    last_trip_ns: int


class DeadMan:
    def __init__(
        self, trip: Callable[[], Awaitable[int]], arm_native: Callable[[int], Awaitable[bool]]
    ) -> None:
        self._trip = trip
        self._arm_native = arm_native
        self._ttl_ms = 0
        self._deadline = 0.0  # monotonic seconds; 0 when disarmed
        self._task: asyncio.Task[None] | None = None
        self.trips = 0
        self.last_trip_ns = 0

    async def heartbeat(self, ttl_ms: int) -> DeadManState:
        """Arm for ttl_ms from now (0 disarms)."""
        await self._arm_native(ttl_ms)
        self._ttl_ms = ttl_ms
        if ttl_ms == 0:
            self._deadline = 0.0
            await self.stop()
        else:
            self._deadline = time.monotonic() + ttl_ms / 1000
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._watch(), name="dead-man")
        return self.state()

    def state(self) -> DeadManState:
        armed = self._deadline > 0
        remaining_ns = int((self._deadline - time.monotonic()) * 1e9) if armed else 0
        deadline_ns = time.time_ns() + remaining_ns if armed else 0
        return DeadManState(armed, self._ttl_ms if armed else 0, deadline_ns, self.trips, self.last_trip_ns)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _watch(self) -> None:
        while self._deadline > 0:
            remaining = self._deadline - time.monotonic()
            if remaining > 0:
                await asyncio.sleep(remaining)
                continue
            self._deadline = 0.0
            self.trips += 1
            self.last_trip_ns = time.time_ns()
            try:
                canceled = await self._trip()
            except Exception:
                log.exception("dead-man switch tripped but cancel-all failed")
                continue
            log.warning(
                "dead-man switch tripped: no heartbeat within %d ms; canceled %d orders",
                self._ttl_ms,
                canceled,
            )
        self._task = None
