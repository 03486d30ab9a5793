"""The dead-man switch: unless heartbeats keep coming, cancel what could open or add to a position.

A trip keeps the reduce-only orders (a position's stop-loss and take-profit): the inspector
that stopped heartbeating is the one that would re-place them, so they must outlive it
(trademesh.venues.runtime.cancels). The runtime always keeps its own timer; a venue whose exchange has
a cancel-all-after is armed there as well, only while it would cancel no protection
(trademesh.venues.runtime.native), so entries are cancelled even if this process dies.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.venues.runtime.cancels import Kept
from trademesh.venues.runtime.native import NativeState, NativeSwitchPolicy

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
    last_trip_canceled: int
    last_trip_kept: int
    native: NativeState
    # A trip keeps the reduce-only orders (always, since issue 37: Admin shows it).
    keeps_reduce_only: bool = True


class DeadMan:
    def __init__(self, trip: Callable[[int], Awaitable[Kept]], native: NativeSwitchPolicy) -> None:
        self._trip = trip  # given the ttl that lapsed
        self.native = native
        self._ttl_ms = 0
        self._deadline = 0.0  # monotonic seconds; 0 when disarmed
        self._task: asyncio.Task[None] | None = None
        self.trips = 0
        self.last_trip_ns = 0
        self.last_trip: Kept | None = None

    async def heartbeat(self, ttl_ms: int) -> DeadManState:
        """Arm for ttl_ms from now (0 disarms): this timer first, then the exchange's own
        switch (a slow exchange must not hold the timer's new deadline back)."""
        self._ttl_ms = ttl_ms
        if ttl_ms == 0:
            self._deadline = 0.0
            await self.stop()
        else:
            self._deadline = time.monotonic() + ttl_ms / 1000
            if self._task is None or self._task.done():
                self._task = asyncio.create_task(self._watch(), name="dead-man")
        await self.native.heartbeat(ttl_ms)
        return self.state()

    def state(self) -> DeadManState:
        armed = self._deadline > 0
        remaining_ns = int((self._deadline - time.monotonic()) * 1e9) if armed else 0
        deadline_ns = time.time_ns() + remaining_ns if armed else 0
        last = self.last_trip
        return DeadManState(
            armed, self._ttl_ms if armed else 0, deadline_ns, self.trips, self.last_trip_ns,
            len(last.canceled) if last else 0, last.kept if last else 0, self.native.state(),
        )  # fmt: skip

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None and task is not asyncio.current_task():
            await cancel_and_wait(task)

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
                self.last_trip = await self._trip(self._ttl_ms)
            except Exception:
                log.exception("dead-man switch tripped but its cancels failed")
                continue
            log.warning(
                "dead-man switch tripped: no heartbeat within %d ms; canceled %d orders, kept %d "
                "reduce-only ones (protection)%s",
                self._ttl_ms,
                len(self.last_trip.canceled),
                self.last_trip.kept,
                f"; {self.last_trip.failed} could not be cancelled" if self.last_trip.failed else "",
            )
        self._task = None
