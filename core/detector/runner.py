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
  last signals, evaluation rates and slow modules (steps over their budget, gathered over
  one-second windows) are kept for the status the API serves: each slow module once, as a
  timing (core.detector.api.PatchActivity).
- Metrics (core.detector.metrics): right after evaluate_due returns, each batch of the burst
  observes the hot-path latency from the venue's receive stamps; events, evaluations and
  signals are counted per batch or evaluation, never per event.

Time is the shell's: `clock` (wall time, ns) is read here, never in the engine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from core.detector.api import ModuleTiming, PatchActivity
from core.detector.engine.engine import Engine
from core.detector.engine.io import Event
from core.detector.engine.lifecycle import PatchState
from core.detector.engine.outputs import EmittedSignal, Evaluation, SlowModule
from core.detector.metrics import (
    EVALUATIONS,
    EVENTS,
    HOT_PATH_NEWEST,
    HOT_PATH_OLDEST,
    PROCESSING,
    SIGNALS,
)
from core.errors import FailedPrecondition, TrademeshError

__all__ = ["Batch", "PatchStats", "Runner", "SlowSteps"]

log = logging.getLogger(__name__)

# Batches of events waiting for the engine; past it a feed waits (the venue then conflates or
# drops the stream, as for any slow subscriber).
_QUEUE_BATCHES = 10_000
_RECENT_SIGNALS = 1_000

Emit = Callable[[Evaluation], Awaitable[None]]


class Batch(NamedTuple):
    """One feed batch: the venue, its engine events, the venue's receive stamps (ts_recv_ns)
    of its oldest and newest market events, and when the feed had it (0: unknown)."""

    venue: str
    events: list[Event]
    oldest_ns: int = 0
    newest_ns: int = 0
    received_ns: int = 0


@dataclass
class SlowSteps:
    """One module's steps over its budget in a window."""

    count: int = 0
    total_ns: int = 0
    max_ns: int = 0

    def add(self, slow: SlowModule) -> None:
        self.count += 1
        self.total_ns += slow.elapsed_ns
        self.max_ns = max(self.max_ns, slow.elapsed_ns)

    def timing(self, module_id: str) -> ModuleTiming:
        """As the status shows it: the mean and the max of the slow steps, µs."""
        return ModuleTiming(module_id, self.total_ns / self.count / 1000, self.max_ns / 1000, True)


@dataclass
class PatchStats:
    """What the status of a patch shows: evaluations in the last second, the last signal, the
    modules that were slow in the last complete window (one second or a little more)."""

    evaluations_per_s: float = 0.0
    counted: int = 0  # the patch's evaluation count at the last rate
    last_signal: EmittedSignal | None = None
    slow: dict[str, SlowSteps] = field(default_factory=dict)
    slowing: dict[str, SlowSteps] = field(default_factory=dict)  # the window under way

    def activity(self) -> PatchActivity:
        """The status's activity: each slow module once, as a timing over its budget (the
        patch's own error, if any, is the API's to add)."""
        timings = tuple(steps.timing(module_id) for module_id, steps in sorted(self.slow.items()))
        return PatchActivity(self.evaluations_per_s, (), timings, self.last_signal)


class Runner:
    def __init__(
        self,
        engine: Engine,
        emit: Emit,
        clock: Callable[[], int] = time.time_ns,
        tick_hz: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self._emit = emit
        self.clock = clock
        self._tick_s = 1 / tick_hz
        self._queue: asyncio.Queue[Batch] = asyncio.Queue(_QUEUE_BATCHES)
        # Patches to activate once warm: fed live events through engine.warm until then.
        self.warming: set[str] = set()
        self.recent_signals: deque[EmittedSignal] = deque(maxlen=_RECENT_SIGNALS)  # oldest first
        self.stats: dict[str, PatchStats] = {}
        self.dropped_batches = 0
        self._monotonic = monotonic  # seconds: the windows of the rates and slow modules
        self._rolled_at = monotonic()

    def deliver(
        self, venue: str, events: list[Event], oldest_ns: int = 0, newest_ns: int = 0, received_ns: int = 0
    ) -> None:
        """A feed's batch (with the venue's receive stamps of its oldest and newest events and
        when the feed had it); counted and dropped when the engine is this far behind."""
        try:
            self._queue.put_nowait(Batch(venue, events, oldest_ns, newest_ns, received_ns))
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

    async def _burst(self, first: Batch) -> None:
        batches = [first]
        while not self._queue.empty():
            batches.append(self._queue.get_nowait())
        fed = 0
        feed = self.engine.feed
        for venue, events, _, _, _ in batches:
            for event in events:
                feed(venue, event)
            fed += len(events)
        self._warm(batches)
        evaluation = self.engine.evaluate_due(self.clock())
        _observe_hot_path(batches, self.clock())
        EVENTS.inc(fed)
        await self._handle(evaluation)

    async def _ticks(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await asyncio.sleep(self._tick_s)
            await self._handle(self.engine.tick(self.clock()))
            self._roll_rates()

    def _warm(self, batches: list[Batch]) -> None:
        for patch_id in list(self.warming):
            try:
                self.engine.warm(patch_id, [(b.venue, event) for b in batches for event in b.events])
                self.engine.patch(patch_id).activate(self.clock())
            except FailedPrecondition:
                continue  # not warm yet
            except TrademeshError as exc:
                log.warning("detector: patch %s cannot start: %s", patch_id, exc)
            self.warming.discard(patch_id)
            log.info("detector: patch %s is warm and active", patch_id)

    async def _handle(self, evaluation: Evaluation) -> None:
        if evaluation.evaluations:
            EVALUATIONS.inc(evaluation.evaluations)
        if evaluation.signals:
            SIGNALS.inc(len(evaluation.signals))
        for signal in evaluation.signals:
            self.recent_signals.append(signal)
            self._stats(signal.patch_id).last_signal = signal
        for slow in evaluation.slow:
            self._stats(slow.patch_id).slowing.setdefault(slow.module_id, SlowSteps()).add(slow)
        for change in evaluation.states:
            if change.new == PatchState.ERRORED.value:
                log.warning("detector: patch %s errored: %s", change.patch_id, change.reason)
        await self._emit(evaluation)

    def _roll_rates(self) -> None:
        """Each patch's evaluations per second and slow modules, over the last second or more."""
        now = self._monotonic()
        elapsed = now - self._rolled_at
        if elapsed < 1.0:
            return
        for patch in self.engine.patches.values():
            stats = self._stats(patch.id)
            stats.evaluations_per_s = (patch.evaluations - stats.counted) / elapsed
            stats.counted = patch.evaluations
        for stats in self.stats.values():
            stats.slow, stats.slowing = stats.slowing, {}
        self._rolled_at = now

    def _stats(self, patch_id: str) -> PatchStats:
        return self.stats.setdefault(patch_id, PatchStats())


def _observe_hot_path(batches: list[Batch], done_ns: int) -> None:
    """Each batch's latency, venue stamp to evaluated (seconds; same machine or synced clocks),
    and the detector's own part, from the feed having it to evaluated."""
    for batch in batches:
        if batch.newest_ns:
            HOT_PATH_NEWEST.observe((done_ns - batch.newest_ns) / 1e9)
            HOT_PATH_OLDEST.observe((done_ns - batch.oldest_ns) / 1e9)
        if batch.received_ns:
            PROCESSING.observe((done_ns - batch.received_ns) / 1e9)
