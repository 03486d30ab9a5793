"""The shell's loop around the engine: events in, coalesced evaluation, clock ticks, warm-up
from live data, outputs out.

- Every venue feed delivers a batch of engine events into one queue. The loop takes a batch,
  then every batch already waiting, feeds them all, and evaluates once: a burst gives one
  evaluation per patch, never a queue of stale ones.
- A tick task calls engine.tick `tick_hz` times a second (time-driven modules, bars closed by
  time).
- Patches that should run but lack history are warmed from the live events (engine.warm)
  until activation succeeds.
- Every evaluation goes to `emit` (what was emitted is published, changes are saved); the
  last signals, slow modules and evaluation rates are kept for the status the API serves.

Time is the shell's: `clock` (wall time, ns) is read here, never in the engine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from core.detector.engine.engine import Engine
from core.detector.engine.io import Event
from core.detector.engine.lifecycle import PatchState
from core.detector.engine.outputs import EmittedSignal, Evaluation, SlowModule
from core.errors import FailedPrecondition, TrademeshError

__all__ = ["PatchStats", "Runner"]

log = logging.getLogger(__name__)

# Batches of events waiting for the engine; past it a feed waits (the venue then conflates or
# drops the stream, as for any slow subscriber).
_QUEUE_BATCHES = 10_000
_RECENT_SIGNALS = 1_000

Emit = Callable[[Evaluation], Awaitable[None]]


@dataclass
class PatchStats:
    """What the status of a patch shows: evaluations in the last second, the last signal, the
    slowest recent module steps."""

    evaluations_per_s: float = 0.0
    counted: int = 0  # the patch's evaluation count at the last rate
    last_signal: EmittedSignal | None = None
    slow: dict[str, SlowModule] = field(default_factory=dict)


class Runner:
    def __init__(
        self,
        engine: Engine,
        emit: Emit,
        clock: Callable[[], int] = time.time_ns,
        tick_hz: float = 10.0,
    ) -> None:
        self.engine = engine
        self._emit = emit
        self.clock = clock
        self._tick_s = 1 / tick_hz
        self._queue: asyncio.Queue[tuple[str, list[Event]]] = asyncio.Queue(_QUEUE_BATCHES)
        # Patches to activate once warm: fed live events through engine.warm until then.
        self.warming: set[str] = set()
        self.recent_signals: deque[EmittedSignal] = deque(maxlen=_RECENT_SIGNALS)  # oldest first
        self.stats: dict[str, PatchStats] = {}
        self.dropped_batches = 0
        self._rolled_at = time.monotonic()

    def deliver(self, venue: str, events: list[Event]) -> None:
        """A feed's batch; counted and dropped when the engine is this far behind."""
        try:
            self._queue.put_nowait((venue, events))
        except asyncio.QueueFull:
            self.dropped_batches += 1

    async def run(self, stop: asyncio.Event) -> None:
        ticking = asyncio.create_task(self._ticks(stop), name="detector ticks")
        try:
            while not stop.is_set():
                getting = asyncio.ensure_future(self._queue.get())
                stopping = asyncio.ensure_future(stop.wait())
                await asyncio.wait({getting, stopping}, return_when=asyncio.FIRST_COMPLETED)
                stopping.cancel()
                if not getting.done():
                    getting.cancel()
                    break
                await self._burst(getting.result())
        finally:
            ticking.cancel()
            await asyncio.gather(ticking, return_exceptions=True)

    async def _burst(self, first: tuple[str, list[Event]]) -> None:
        batches = [first]
        while not self._queue.empty():
            batches.append(self._queue.get_nowait())
        for venue, events in batches:
            for event in events:
                self.engine.feed(venue, event)
        self._warm(batches)
        await self._handle(self.engine.evaluate_due(self.clock()))

    async def _ticks(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self._tick_s)
            await self._handle(self.engine.tick(self.clock()))
            self._roll_rates()

    def _warm(self, batches: list[tuple[str, list[Event]]]) -> None:
        for patch_id in list(self.warming):
            try:
                self.engine.warm(patch_id, [(venue, event) for venue, events in batches for event in events])
                self.engine.patch(patch_id).activate(self.clock())
            except FailedPrecondition:
                continue  # not warm yet
            except TrademeshError as exc:
                log.warning("detector: patch %s cannot start: %s", patch_id, exc)
            self.warming.discard(patch_id)
            log.info("detector: patch %s is warm and active", patch_id)

    async def _handle(self, evaluation: Evaluation) -> None:
        for signal in evaluation.signals:
            self.recent_signals.append(signal)
            self._stats(signal.patch_id).last_signal = signal
        for slow in evaluation.slow:
            self._stats(slow.patch_id).slow[slow.module_id] = slow
        for change in evaluation.states:
            if change.new == PatchState.ERRORED.value:
                log.warning("detector: patch %s errored: %s", change.patch_id, change.reason)
        await self._emit(evaluation)

    def _roll_rates(self) -> None:
        """Each patch's evaluations per second, over the last second or more."""
        now = time.monotonic()
        elapsed = now - self._rolled_at
        if elapsed < 1.0:
            return
        for patch in self.engine.patches.values():
            stats = self._stats(patch.id)
            stats.evaluations_per_s = (patch.evaluations - stats.counted) / elapsed
            stats.counted = patch.evaluations
        self._rolled_at = now

    def _stats(self, patch_id: str) -> PatchStats:
        return self.stats.setdefault(patch_id, PatchStats())
