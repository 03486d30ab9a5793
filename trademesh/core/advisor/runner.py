"""The shell's loop around the advisor core: signals in, context gathered, the core run, the LLM
asked for pending decisions, decisions out.

- Every signal is its own task (at most `max_in_flight` at once; past it the bus is read no
  further): gather the context through the tools, `core.on_signal`; a decision is final at
  once, or it waits for the LLM (many at once: throughput is not bound by the LLM's latency)
  until its answer comes (`core.on_answer`) or its deadline passes (`core.expire`, on a timer).
- A final decision becomes the contract's Decision with its telemetry (the core's events, the
  transport's retries, circuit and tool events) and is committed to the bus with its signal's
  "decided" mark in one step (trademesh.core.advisor.wire); an entry of `signals` is acknowledged in the
  step of the last of its signals decided.
- Once per signal. An entry delivered before (own pending after a crash, reclaimed) is checked
  against the marks first: its signals marked decided are skipped. An entry read new is not
  (no round trip before the decision): only against the signals this process published lately
  and is deciding now (the same signal in two entries: the bus is at least once); the mark is
  checked atomically with the decision's publish, so a signal another consumer or an earlier
  run decided is not published twice (the decision made is dropped, said in the log).
- Decide (the API) runs the same path for one signal and, when asked, publishes the result.

Time is the shell's: `clock` (wall time, ns) is read here and handed to the core.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from redis.exceptions import RedisError

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.advisor.convert import decision_to_pb, event_to_pb, signal_from_pb
from trademesh.core.advisor.decision_journal import DecisionJournal
from trademesh.core.advisor.engine.answer import FailureReason, LlmFailure
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.engine.decision import Decision, Pending
from trademesh.core.advisor.engine.telemetry import TelemetryEvent
from trademesh.core.advisor.gather import ContextGatherer
from trademesh.core.advisor.metrics import (
    CONTEXT,
    DEADLINE_MISSES,
    DECISIONS,
    IN_FLIGHT,
    LLM,
    SIGNAL_TO_DECISION,
    STALE,
)
from trademesh.core.advisor.outputs import KeptParts
from trademesh.core.advisor.wire import DecisionWriter
from trademesh.core.domain.contracts.signal import Signal
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.bus.consumer import REDELIVERED, Entry
from trademesh.core.platform.bus.names import SIGNALS
from trademesh.core.platform.errors import InvalidArgument, NotFound, TrademeshError
from trademesh.core.platform.logs.setup import chain_trace_id, log_fields
from trademesh.signal.v1 import signal_pb2 as sig

if TYPE_CHECKING:  # the LLM's modules (openai, mcp) are imported only when the LLM is on
    from trademesh.core.advisor.synthesizer import Synthesized, Synthesizer

__all__ = ["Pipeline"]

log = logging.getLogger(__name__)
T = TypeVar("T")

_NS = 1_000_000_000
_PUBLISHED_KEPT = 100_000  # signal ids this process published, remembered (most recent)
_OUTCOMES = {am.OUTCOME_INTENT: "intent", am.OUTCOME_BLOCKED: "blocked"}


@dataclass
class _Waiting:
    """A decision waiting for the LLM: its answer (or its expiry) resolves `done`."""

    signal: Signal
    done: asyncio.Future[tuple[Decision, Synthesized | None]]
    task: asyncio.Task[None] | None = None


@dataclass
class _EntryState:
    remaining: int
    failed: bool = False


@dataclass
class _Made:
    """A decision as the contract's message, and its telemetry as the core gave it (their
    messages: `telemetry`)."""

    decision: am.Decision
    core_events: list[TelemetryEvent]
    synthesized: list[am.TelemetryEvent] = field(default_factory=list)  # the transport's, tools'
    loose: list[TelemetryEvent] = field(default_factory=list)  # of no decision (allocation)

    def telemetry(self) -> tuple[list[am.TelemetryEvent], list[am.TelemetryEvent]]:
        """The decision's events (in time order) and those of no decision, as messages."""
        events = [event_to_pb(e) for e in self.core_events] + self.synthesized
        events.sort(key=lambda e: e.ts_ns)
        return events, [event_to_pb(e) for e in self.loose]


class Pipeline:
    def __init__(
        self,
        core: AdvisorCore,
        gatherer: ContextGatherer,
        synthesizer: Synthesizer | None,
        journal: DecisionJournal,
        *,
        max_in_flight: int,
        max_signal_age_s: float = 60.0,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.core = core
        self.gatherer = gatherer
        self.synthesizer = synthesizer
        self.journal = journal
        self.writer: DecisionWriter | None = None  # set once the bus is reached
        self.clock = clock
        self.max_signal_age_ns = int(max_signal_age_s * _NS)
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._waiting: dict[str, _Waiting] = {}
        self._events: dict[str, list[TelemetryEvent]] = {}
        self._entries: dict[str, _EntryState] = {}
        # Signals being decided, resolved True once published (False: it failed, not published).
        self._deciding: dict[str, asyncio.Future[bool]] = {}
        self._published: OrderedDict[str, None] = OrderedDict()
        self._kept = KeptParts()  # the JSON of parts of the stages' outputs decisions share
        for outcome in _OUTCOMES.values():  # at 0 before the first: rate() and increase() see it
            DECISIONS.labels(outcome)

    # ---- the bus

    async def handle(self, stream: str, entries: list[Entry]) -> None:
        """The consumer's handler for `signals`: starts a task per signal and returns (the
        entries are acknowledged by the tasks, once decided)."""
        writer = self.writer
        assert writer is not None
        # An entry read again (after a reconnect) while its signals are being decided is in hand.
        fresh = [(e, list(envelope.signals.signals)) for e, envelope in entries if e not in self._entries]
        ids = [s.signal_id for _, signals in fresh for s in signals if s.signal_id]
        done = await writer.decided(ids) if REDELIVERED.get() else {s for s in ids if s in self._published}
        for entry_id, signals in fresh:
            todo = [s for s in signals if s.signal_id not in done]
            if not todo:
                await writer.redis.xack(stream, writer.group, entry_id)
                continue
            self._entries[entry_id] = _EntryState(len(todo))
            for message in todo:
                first = self._deciding.get(message.signal_id)
                if first is not None:  # the same signal in another entry, being decided now
                    self._spawn(self._after(first, entry_id), f"signal {message.signal_id} again")
                    continue
                self._deciding[message.signal_id] = asyncio.get_running_loop().create_future()
                await self._slots.acquire()
                deciding = self._from_bus(entry_id, message, time.time_ns())
                with log_fields(trace_id=chain_trace_id(message.signal_id)):  # its chain's lines
                    self._spawn(deciding, f"signal {message.signal_id}")

    async def _after(self, first: asyncio.Future[bool], entry_id: str) -> None:
        """A repeated signal's entry is done once the first delivery is decided and published."""
        if await asyncio.shield(first) and (ack := self._entry_done(entry_id)) is not None:
            writer = self.writer
            assert writer is not None
            await self._retry(lambda: writer.redis.xack(SIGNALS, writer.group, ack), "acknowledge")

    async def _from_bus(self, entry_id: str, message: sig.Signal, received_ns: int) -> None:
        committed = False
        try:
            await self._publish(entry_id, message, received_ns)
            committed = True
        finally:
            self._slots.release()
            deciding = self._deciding.pop(message.signal_id, None)
            if deciding is not None and not deciding.done():
                deciding.set_result(committed)

    async def _publish(self, entry_id: str, message: sig.Signal, received_ns: int) -> None:
        """Decide and publish one signal of the bus (a signal that cannot be decided, refused or
        too old, is only marked), then count it done for its entry."""
        try:
            signal = signal_from_pb(message, "signal.")
        except InvalidArgument as exc:
            log.warning("advisor: signal %s refused: %s", message.signal_id, exc)
            await self._mark(message.signal_id or None, self._entry_done(entry_id))
            return
        age_ns = received_ns - message.ts_signal_ns
        if message.ts_signal_ns > 0 and age_ns > self.max_signal_age_ns:
            # A backlog (the advisor was down): a trade on it would act on old news.
            STALE.inc()
            log.info("advisor: signal %s is %.0f s old: not decided", signal.signal_id, age_ns / _NS)
            await self._mark(signal.signal_id, self._entry_done(entry_id))
            return
        try:
            made = await self._decide(signal)
        except NotFound as exc:  # a venue nobody serves: nothing to decide on, nothing followed
            log.warning("advisor: signal %s not decided: %s", signal.signal_id, exc)
            await self._mark(signal.signal_id, self._entry_done(entry_id))
            return
        await self._commit_signal(made, signal.signal_id, (message, received_ns), entry_id)

    def _remember(self, signal_id: str) -> None:
        self._published[signal_id] = None
        if len(self._published) > _PUBLISHED_KEPT:
            self._published.popitem(last=False)

    def _entry_done(self, entry_id: str) -> str | None:
        """Count one signal of the entry done: the entry's id once all of them are (to acknowledge)."""
        state = self._entries[entry_id]
        state.remaining -= 1
        if state.remaining > 0:
            return None
        del self._entries[entry_id]
        return entry_id

    async def _mark(self, signal_id: str | None, ack: str | None) -> None:
        """A signal not decided (refused, too old): only marked, its entry acknowledged when done."""
        writer = self.writer
        assert writer is not None
        now = self.clock()
        await self._retry(lambda: writer.commit(None, [], now, mark=signal_id, ack=ack), "publish")

    def _observe(self, decision: am.Decision, message: sig.Signal, received_ns: int) -> None:
        now = time.time_ns()
        outcome = _OUTCOMES.get(decision.outcome, "unknown")
        DECISIONS.labels(outcome).inc()
        intent = f", intent {decision.intent.intent_id}" if decision.HasField("intent") else ""
        blocked = f" ({decision.block_reason})" if decision.block_reason else ""
        log.info("advisor: signal %s decided: %s%s%s", message.signal_id, outcome, blocked, intent)
        if message.ts_signal_ns > 0:
            SIGNAL_TO_DECISION.labels("signal").observe(max(0, now - message.ts_signal_ns) / _NS)
        SIGNAL_TO_DECISION.labels("received").observe(max(0, now - received_ns) / _NS)

    # ---- the API

    async def decide(self, signal: Signal, *, publish: bool, hypothetical: bool) -> am.Decision:
        """One decision on demand (Decide): published only when asked; always in the journal."""
        made = await self._decide(signal, hypothetical=hypothetical)
        if publish:
            await self._commit(made)
        else:
            events, loose = made.telemetry()
            self.journal.add(made.decision, events, published=False)
            if loose:
                self.journal.add(None, loose, published=False)
        return made.decision

    # ---- deciding

    async def _decide(self, signal: Signal, *, hypothetical: bool = False) -> _Made:
        started = time.perf_counter()
        # The world as of the signal's time, as a backtest decides it (docs/backtest.md): its
        # evaluation's time (ts_signal_ns, the core's Signal.ts_ns; with the detector's hold an
        # event time, a backtest's decision time), not ts_event_ns (the patch's last event, e.g.
        # a bar's close before it).
        context = await self.gatherer.gather(signal.venue, signal.symbol, signal.ts_ns)
        CONTEXT.observe(time.perf_counter() - started)
        out = self.core.on_signal(signal, context, self.clock())
        self._take_events()
        synthesized: Synthesized | None = None
        if isinstance(out, Pending):
            decision, synthesized = await self._wait(out, signal)
        else:
            decision = out
        return self._made(decision, synthesized, hypothetical)

    def _made(self, decision: Decision, synthesized: Synthesized | None, hypothetical: bool) -> _Made:
        core_events = self._events.pop(decision.decision_id, [])
        loose = self._events.pop("", [])
        trace = None if synthesized is None else synthesized.trace
        message = decision_to_pb(
            decision, core_events, trace, model_version=self.core.model.version if self.core.model else "",
            hypothetical=hypothetical, kept=self._kept,
        )  # fmt: skip
        return _Made(message, core_events, [] if synthesized is None else synthesized.events, loose)

    def _take_events(self) -> None:
        for event in self.core.take_telemetry():
            self._events.setdefault(event.subject.decision_id, []).append(event)

    async def _wait(self, pending: Pending, signal: Signal) -> tuple[Decision, Synthesized | None]:
        done: asyncio.Future[tuple[Decision, Synthesized | None]] = asyncio.get_running_loop().create_future()
        waiting = _Waiting(signal, done)
        self._waiting[pending.decision_id] = waiting
        IN_FLIGHT.set(len(self._waiting))
        waiting.task = self._spawn(self._ask(pending, waiting), f"llm {pending.decision_id}")
        try:
            return await done
        finally:
            self._waiting.pop(pending.decision_id, None)
            IN_FLIGHT.set(len(self._waiting))

    async def _ask(self, pending: Pending, waiting: _Waiting) -> None:
        assert self.synthesizer is not None  # the core waits only when the LLM is enabled
        started = time.perf_counter()
        try:
            synthesized = await self.synthesizer.synthesize(pending, waiting.signal, self.clock())
        except TrademeshError as exc:  # e.g. a request JSON cannot carry: the core goes deterministic
            from trademesh.core.advisor.synthesizer import Synthesized

            failure = LlmFailure(pending.decision_id, FailureReason.ERROR, str(exc))
            synthesized = Synthesized(failure, am.LlmTrace(failure=str(exc)), [])
        LLM.observe(time.perf_counter() - started)
        if pending.decision_id not in self._waiting or waiting.done.done():
            return  # expired meanwhile: decided without the answer
        decision = self.core.on_answer(synthesized.answer, self.clock())
        self._take_events()
        if decision is not None:
            waiting.done.set_result((decision, synthesized))

    async def expire(self, stop: asyncio.Event, every_s: float) -> None:
        """Decide every pending decision past its deadline, every `every_s`, until `stop`."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
            for decision in self.core.expire(self.clock()):
                waiting = self._waiting.get(decision.decision_id)
                if waiting is None or waiting.done.done():
                    continue
                if waiting.task is not None:
                    waiting.task.cancel()
                waiting.done.set_result((decision, None))
                DEADLINE_MISSES.inc()
            self._take_events()

    # ---- out

    async def _commit(self, made: _Made) -> None:
        """Decide's publish (no mark): the decision and its intent, then its telemetry."""
        writer = self.writer
        assert writer is not None
        events, loose = made.telemetry()
        now = self.clock()
        await self._retry(lambda: writer.commit(made.decision, [], now), "publish")
        if events or loose:
            later = self.clock()
            await self._retry(lambda: writer.commit(None, [*events, *loose], later), "publish")
        self._journal(made.decision, events, loose)

    async def _commit_signal(
        self, made: _Made, mark: str, observe: tuple[sig.Signal, int], entry: str
    ) -> None:
        """The decision, its intent, its telemetry, its signal's mark and the acknowledgement of
        `entry` once each of its signals is decided, in one step (unless the signal was decided
        already: then the decision is dropped; trademesh.core.advisor.wire)."""
        writer = self.writer
        assert writer is not None
        events, loose = made.telemetry()
        now = self.clock()
        ack = self._entry_done(entry)
        publish = writer.publish_once
        if await self._retry(lambda: publish(made.decision, events, loose, now, mark, ack), "publish"):
            self._remember(mark)
            self._observe(made.decision, *observe)
            self._journal(made.decision, events, loose)
            return
        log.info("advisor: signal %s was decided already: decision %s dropped",
                 mark, made.decision.decision_id)  # fmt: skip
        self._journal(None, [], loose)

    def _journal(self, decision: am.Decision | None, events: list[am.TelemetryEvent],
                 loose: list[am.TelemetryEvent]) -> None:  # fmt: skip
        if decision is not None:
            self.journal.add(decision, events, published=True)
        if loose:
            self.journal.add(None, loose, published=True)

    async def _retry(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        """Until it succeeds: the bus away holds the decision, it is never dropped (a stop
        cancels the task; its entry, unacknowledged, is read again at the next start)."""
        backoff = Backoff(0.05, 2.0)
        while True:
            try:
                return await attempt()
            except (RedisError, OSError) as exc:
                delay = backoff.next()
                log.warning("advisor: cannot %s to the bus (%s); retrying in %.1f s", what, exc, delay)
            await asyncio.sleep(delay)

    # ---- tasks

    def _spawn(self, work: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("advisor: %s failed", task.get_name(), exc_info=task.exception())

    async def drain(self, grace_s: float) -> None:
        """Let the decisions in flight finish for up to `grace_s`, then cancel the rest."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
