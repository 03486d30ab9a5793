"""The core's timer: the engine core asks to be woken (InspectorCore.wake_ns: a refused
protective order's retry, the end of a coalescing window, the unprotected bound) and the shell
wakes it then with a timer entry, journaled like any input, so a restart's replay and a backtest
(on its simulated clock) see the same. The core does what is due at any input at or after the
time, so a late wake-up (a loaded machine, a freeze) loses nothing; it is never early."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from trademesh.core.platform.aio.retry import wait_any
from trademesh.risk.v1 import journal_pb2 as jr

__all__ = ["CoreTimer"]

log = logging.getLogger(__name__)

# With nothing to wake for, the loop still looks again this often (an input nudges it sooner).
_IDLE_S = 1.0


class CoreTimer:
    def __init__(
        self,
        wake_ns: Callable[[], int | None],
        feed: Callable[[jr.JournalEntry], Awaitable[Any]],
        clock: Callable[[], int],
    ) -> None:
        self.wake_ns = wake_ns
        self.feed = feed
        self.clock = clock
        self.woken = 0
        self._nudged = asyncio.Event()

    def nudge(self) -> None:
        """An input was applied: the core may want to be woken sooner than the loop waits."""
        self._nudged.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._nudged.clear()
            wake, now = self.wake_ns(), self.clock()
            if wake is not None and wake <= now:
                await self._wake(wake, now)
                continue
            delay_s = _IDLE_S if wake is None else min((wake - now) / 1e9, _IDLE_S)
            await self._sleep(stop, delay_s)

    async def _wake(self, due_ns: int, now_ns: int) -> None:
        self.woken += 1
        try:
            await self.feed(jr.JournalEntry(now_ns=now_ns, timer=jr.JournalTimer(due_ns=due_ns)))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a journal or venue outage: the next turn wakes the core again
            log.warning("inspector: waking the core (due at %d) failed: %s", due_ns, exc)
            await asyncio.sleep(_IDLE_S)

    async def _sleep(self, stop: asyncio.Event, delay_s: float) -> None:
        await wait_any(stop, self._nudged, timeout_s=delay_s)
