"""The shell's loop around the engine: market data in, clock ticks, warm-up from live data,
outputs out. Two ways to take market data, by the hold (`--hold-ms`):

- **With a hold** (parity): every venue feed hands its batches to one `Sequencer`
  (trademesh.core.detector.sequence). The loop releases what is `hold` old by the wall clock, one
  timestamp at a time in the backtest's order: each timestamp's events are converted (one
  MarketConverter per venue), fed, and evaluated at that timestamp. Clock ticks fall on the
  grid of `tick_hz` in the same event time, each before the events of its own timestamp. This
  is the backtest's stepping (trademesh.core.backtest.detect), so a backtest of the recorded window gives
  the same signals at the same times (docs/backtest-parity.md, "Parity with live"). An event that
  comes later than the hold is late: fed at the time already reached, and counted. It costs an
  evaluation per timestamp.
- **Without** (the default; latency first): the loop takes every batch that has arrived,
  feeds them in arrival order (converted batch by batch) and evaluates once, at the wall
  clock: a burst gives one evaluation per patch, never a queue of stale ones. Ticks fall on
  the same grid, by the wall clock.
- What the inspector says back (trademesh.core.detector.feedback: its risk state, the strategies' own
  positions) is handed in with `hear` and fed at the next release, after the market data
  released then, and evaluated at that time.
- Patches that should run but lack history are warmed from the live events (engine.warm)
  until activation succeeds.
- Every evaluation goes to `emit` (what was emitted is published, changes are saved); the
  last signals, evaluation rates and slow modules (steps over their budget, gathered over
  one-second windows) are kept for the status the API serves: each slow module once, as a
  timing (trademesh.core.detector.api.PatchActivity).
- Metrics (trademesh.core.detector.metrics): right after a timestamp (with a hold) or a burst is
  evaluated, the hot-path latency from the venue's receive stamps (the hold included) of the
  timestamp or of each batch; events, evaluations, signals and late events are counted.

Time is the shell's: `clock` (wall time, ns) is read here, never in the engine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from trademesh.core.detector.api import ModuleTiming, PatchActivity
from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.engine.io import Event
from trademesh.core.detector.engine.lifecycle import PatchState
from trademesh.core.detector.engine.outputs import EmittedSignal, Evaluation, SlowModule
from trademesh.core.detector.market import MarketConverter
from trademesh.core.detector.metrics import (
    EVALUATIONS,
    EVENTS,
    HOT_PATH_NEWEST,
    HOT_PATH_OLDEST,
    LATE_EVENTS,
    PROCESSING,
    SCREEN_PATCHES,
    SIGNALS,
    SLOW_STEPS,
    WITHHELD,
)
from trademesh.core.detector.sequence import Group, Sequencer
from trademesh.core.platform.errors import FailedPrecondition, TrademeshError
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["PatchRunner", "PatchStats", "SlowSteps"]

log = logging.getLogger(__name__)

# Market events held for the engine; past it a feed's batch is counted and dropped (the
# engine is this far behind).
_MAX_HELD = 1_000_000
_MAX_BATCHES = 10_000  # without a hold: batches waiting
_RECENT_SIGNALS = 1_000
_LATE_EVERY_S = 60.0
_NS = 1_000_000_000

Emit = Callable[[Evaluation], Awaitable[None]]


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


class PatchRunner:
    def __init__(
        self,
        engine: Engine,
        emit: Emit,
        clock: Callable[[], int] = time.time_ns,
        tick_hz: float = 10.0,
        monotonic: Callable[[], float] = time.monotonic,
        hold_ns: int = 0,
    ) -> None:
        self.engine = engine
        self._emit = emit
        self.clock = clock
        self.hold_ns = hold_ns
        self._tick_ns = int(_NS / tick_hz)
        self._next_tick_ns: int | None = None  # on the grid after the first timestamp released
        self.sequencer = Sequencer()  # with a hold: what arrived, in event-time order
        self._batches: list[Group] = []  # without: the batches as they arrived
        self._heard: list[Event] = []  # the inspector's feedback, fed at the next release
        self._converters: dict[str, MarketConverter] = {}
        self._arrived = asyncio.Event()
        # Patches to activate once warm: fed live events through engine.warm until then.
        self.warming: set[str] = set()
        # Patches whose signals (entries) are dropped, their position requests (exits) kept: a
        # screen-driven strategy's leaving patches (trademesh.core.detector.screens).
        self.muted: frozenset[str] = frozenset()
        self.recent_signals: deque[EmittedSignal] = deque(maxlen=_RECENT_SIGNALS)  # oldest first
        self.stats: dict[str, PatchStats] = {}
        self.dropped_batches = 0
        self._monotonic = monotonic  # seconds: the windows of the rates and slow modules
        self._rolled_at = monotonic()
        self._late_said_at = -_LATE_EVERY_S

    def deliver(self, venue: str, events: Sequence[md.MarketEvent], received_ns: int = 0) -> None:
        """A feed's batch of market events, in the venue's order (`received_ns`: when the feed
        had it, 0 unknown); counted and dropped when the engine is this far behind."""
        if len(self.sequencer) >= _MAX_HELD or len(self._batches) >= _MAX_BATCHES:
            self.dropped_batches += 1
            return
        if not self.hold_ns:
            self._batches.append(Group(0, venue, list(events), received_ns))
            self._arrived.set()
            return
        late = self.sequencer.late
        self.sequencer.add(venue, events, received_ns)
        if self.sequencer.late > late:
            LATE_EVENTS.inc(self.sequencer.late - late)
            self._said_late(venue)
        self._arrived.set()

    def hear(self, events: Sequence[Event]) -> None:
        """The inspector's feedback (external values, the strategies' positions) to feed."""
        self._heard += events
        self._arrived.set()

    def listing(self, venue: str, delisted: frozenset[str]) -> list[tuple[str, bool]]:
        """The venue's delisted symbols now (md.{<venue>}.instruments): each change to the engine
        (Engine.on_listing); the changes, (symbol, delisted)."""
        before = {symbol for v, symbol in self.engine.delisted if v == venue}
        changed = [(s, True) for s in sorted(delisted - before)] + [
            (s, False) for s in sorted(before - delisted)
        ]
        for symbol, now_delisted in changed:
            self.engine.on_listing(venue, symbol, now_delisted)
        return changed

    def _said_late(self, venue: str) -> None:
        """A warning, at most one a minute: late events make live differ from a backtest."""
        now = self._monotonic()
        if now - self._late_said_at >= _LATE_EVERY_S:
            self._late_said_at = now
            log.warning(
                "detector: %d market events so far came later than the hold (%d ms; the latest from %s)",
                self.sequencer.late,
                self.hold_ns // 1_000_000,
                venue,
            )

    async def run(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                arrived = asyncio.ensure_future(self._arrived.wait())
                await asyncio.wait(
                    {arrived, stopping}, timeout=self._wait_s(), return_when=asyncio.FIRST_COMPLETED
                )
                arrived.cancel()
                self._arrived.clear()
                await self.release(self.clock() - self.hold_ns)
                self._roll_rates()
        finally:
            stopping.cancel()

    def _wait_s(self) -> float:
        """Until the next timestamp or tick is `hold` old."""
        if self._batches or self._heard:
            return 0.0
        dues = [due for due in (self.sequencer.earliest(), self._next_tick_ns) if due is not None]
        if not dues:
            return self._tick_ns / _NS
        return max(0.0, (min(dues) + self.hold_ns - self.clock()) / _NS)

    async def release(self, until_ns: int) -> None:
        """With a hold: every timestamp and tick at or before `until_ns`, in time order.
        Without: every batch that arrived, as one burst, and the ticks due by `until_ns`."""
        for group in self.sequencer.release(until_ns):
            await self._ticks_until(group.time_ns)
            await self._step(group)
        if self._batches:
            batches, self._batches = self._batches, []
            await self._burst(batches, until_ns)
        if self._next_tick_ns is not None:
            await self._ticks_until(until_ns)
        if self._heard:
            await self._feedback(until_ns)

    async def _feedback(self, now_ns: int) -> None:
        heard, self._heard = self._heard, []
        feed = self.engine.feed
        for event in heard:
            feed("", event)  # an external value or a position names its own route
        await self._handle(self.engine.evaluate_due(now_ns))

    async def _ticks_until(self, until_ns: int) -> None:
        """The ticks on the grid at or before `until_ns` (a tick at a timestamp runs before
        that timestamp's events, as in a backtest)."""
        tick = self._next_tick_ns
        while tick is not None and tick <= until_ns:
            self.sequencer.reach(tick)
            await self._handle(self.engine.tick(tick))
            tick = self._next_tick_ns = tick + self._tick_ns

    async def _step(self, group: Group) -> None:
        """One timestamp's events (with a hold), evaluated at that timestamp."""
        at = group.time_ns
        self._start_ticks(at)
        events = self._fed(group)
        evaluation = self.engine.evaluate_due(at)
        _observe_hot_path(group, self.clock(), True)
        EVENTS.inc(len(events))
        await self._handle(evaluation)

    async def _burst(self, batches: list[Group], now_ns: int) -> None:
        """The batches that arrived (without a hold), fed in arrival order, evaluated once."""
        self._start_ticks(now_ns)
        fed = sum(len(self._fed(batch, now_ns)) for batch in batches)
        evaluation = self.engine.evaluate_due(now_ns)
        done = self.clock()
        for batch in batches:
            _observe_hot_path(batch, done, False)
        EVENTS.inc(fed)
        await self._handle(evaluation)

    def _start_ticks(self, at_ns: int) -> None:
        """The tick grid, from the first market data on."""
        if self._next_tick_ns is None:
            self._next_tick_ns = at_ns - at_ns % self._tick_ns + self._tick_ns
            # Where a backtest of this session starts (docs/backtest-parity.md, "Parity with live").
            log.info("detector: market data from %d (ns, event time)", at_ns)

    def _fed(self, group: Group, now_ns: int | None = None) -> list[Event]:
        """The group's market events converted and fed; warming patches warmed from them."""
        venue = group.venue
        converter = self._converters.get(venue)
        if converter is None:
            converter = self._converters[venue] = MarketConverter()
        events = converter.convert(group.events)
        feed = self.engine.feed
        for event in events:
            feed(venue, event)
        if self.warming:
            self._warm(venue, events, group.time_ns if now_ns is None else now_ns)
        return events

    def _warm(self, venue: str, events: list[Event], now_ns: int) -> None:
        for patch_id in list(self.warming):
            try:
                self.engine.warm(patch_id, [(venue, event) for event in events])
                self.engine.patch(patch_id).activate(now_ns)
            except FailedPrecondition:
                continue  # not warm yet
            except TrademeshError as exc:
                log.warning("detector: patch %s cannot start: %s", patch_id, exc)
            self.warming.discard(patch_id)
            log.info("detector: patch %s is warm and active", patch_id)

    async def _handle(self, evaluation: Evaluation) -> None:
        if self.muted and evaluation.signals:
            _mute(evaluation, self.muted)
        if evaluation.evaluations:
            EVALUATIONS.inc(evaluation.evaluations)
        if evaluation.withheld:
            WITHHELD.inc(evaluation.withheld)
        if evaluation.signals:
            SIGNALS.inc(len(evaluation.signals))
        for signal in evaluation.signals:
            self.recent_signals.append(signal)
            self._stats(signal.patch_id).last_signal = signal
        if evaluation.slow:
            SLOW_STEPS.inc(len(evaluation.slow))
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


def _mute(evaluation: Evaluation, muted: frozenset[str]) -> None:
    """The signals of muted patches dropped (counted, and said: an entry the strategy made and
    nobody will act on)."""
    kept = []
    for signal in evaluation.signals:
        if signal.patch_id in muted:
            SCREEN_PATCHES.labels(signal.strategy_id, "muted").inc()
            log.info("detector: signal of %s muted: its symbol left the screen's set", signal.patch_id)
        else:
            kept.append(signal)
    evaluation.signals = kept


def _observe_hot_path(group: Group, done_ns: int, by_time: bool) -> None:
    """A timestamp's (with a hold) or a batch's latency: the venue's receive stamps of its
    newest and oldest events to evaluated (seconds; same machine or synced clocks; the hold
    included), and the detector's own part, from the feed having it to evaluated."""
    events = group.events
    if by_time:
        stamps = [event.ts_recv_ns for event in events if event.ts_recv_ns]
        newest, oldest = (max(stamps), min(stamps)) if stamps else (0, 0)
    else:  # a batch is in the venue's order
        newest, oldest = (events[-1].ts_recv_ns, events[0].ts_recv_ns) if events else (0, 0)
    if newest:
        HOT_PATH_NEWEST.observe((done_ns - newest) / 1e9)
        HOT_PATH_OLDEST.observe((done_ns - oldest) / 1e9)
    if group.received_ns:
        PROCESSING.observe((done_ns - group.received_ns) / 1e9)
