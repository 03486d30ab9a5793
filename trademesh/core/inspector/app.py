"""The inspector service: the engine core inside its shell
(trademesh.core.platform.service.lifecycle's lifecycle).

At start: reach the bus; take the leader lease `leader.inspector.{<instance>}`
(trademesh.core.platform.replicas.leader), standing by until it is ours (its journal writes are
fenced by it, and losing it ends the process); rebuild the core from its journal (or begin one)
and ask the venues about every order it left working (trademesh.core.inspector.runtime); report
positions found at a fresh start as legacy (never touched). Then serve the Inspector API and run:
- the `intents` consumer (group `inspector`): each intent checked, and placed when allowed; an
  entry is acknowledged once its intents are handled (a crash redelivers it: the journal knows
  the intents handled, so none is placed twice); the same group reads the strategies' own
  `position_requests` (close, reduce, flip: trademesh.core.inspector.requests), made into intents;
- per venue, its executions into the core and its dead-man heartbeat (trademesh.core.inspector.followers);
- the marks (once a second), the reconciliation with the venues, the policy file's watch;
- the markets the detectors' active patches trade, followed from the start
  (trademesh.core.platform.patch_markets), so a market's first intent finds its quotes as of its
  signal's time (trademesh.core.inspector.market).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from decimal import Decimal

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.inspector.account import VenueAccounts
from trademesh.core.inspector.api import inspector_service
from trademesh.core.inspector.bus_auth import BusAuth
from trademesh.core.inspector.config import DEFAULT_POLICIES, InspectorServiceConfig
from trademesh.core.inspector.engine.positions import Key as PositionKey
from trademesh.core.inspector.exec_bus import BusExecutions
from trademesh.core.inspector.executor import Executor
from trademesh.core.inspector.fenced_writes import FencedWrites
from trademesh.core.inspector.followers import VenueFollowers
from trademesh.core.inspector.input_journal import InputJournal
from trademesh.core.inspector.lease_guard import LeaseGuard
from trademesh.core.inspector.margin_watch import MarginWatch
from trademesh.core.inspector.market import MarketBoard
from trademesh.core.inspector.notify import notifier_from_env
from trademesh.core.inspector.policy_watch import PolicyWatch
from trademesh.core.inspector.reconcile import Reconciler
from trademesh.core.inspector.request_shell import carry_out_request
from trademesh.core.inspector.risk_log import RiskLog
from trademesh.core.inspector.runtime import PolicySource, Runtime
from trademesh.core.inspector.takeover import Takeover
from trademesh.core.inspector.venues import VenueLinks
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.bus.consumer import ConsumerOptions, Entry, GroupConsumer
from trademesh.core.platform.bus.instruments import InstrumentWatch, VenueListing
from trademesh.core.platform.bus.names import INTENTS, POSITION_REQUESTS, journal_stream
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.redis import open_redis, reach_redis
from trademesh.core.platform.bus.signing import verifier_from_env
from trademesh.core.platform.config.file import read_text
from trademesh.core.platform.errors import InvalidArgument, TrademeshError, Unavailable, shown
from trademesh.core.platform.logs.setup import chain_trace_id, log_fields
from trademesh.core.platform.patch_markets import ActivePatches, Key
from trademesh.core.platform.replicas.leader import Leadership
from trademesh.core.platform.rpc.server import Service
from trademesh.core.platform.service.lifecycle import ServiceContext
from trademesh.core.platform.service.tasks import tasks_text
from trademesh.core.tools.resolver import VENUE_SERVICES, Instance, MeshResolver
from trademesh.core.tools.upstream import Upstream

__all__ = ["Inspector", "watch_stalls"]

log = logging.getLogger(__name__)

# An execution going through the core and the venues longer than this is stuck: every venue call
# has a deadline of a few seconds (the executor's timeout_s), every Redis write one of 10 s.
_STALL_S = 30.0
# Intents from the bus checked and placed at once, at most: a read of many entries (each may hold
# many intents) must not send thousands of orders to a venue at the same moment.
_IN_FLIGHT = 64


class Inspector:
    """The service app, and the InspectorState the API works on."""

    def __init__(self, config: InspectorServiceConfig) -> None:
        self.config = config
        given = [Instance(v.name, v.address, VENUE_SERVICES) for v in config.mesh.venues]
        self.resolver = MeshResolver(config.gateway, given)
        self.links = VenueLinks(self.resolver, config.emulate_stops)
        self.redis = open_redis(config.redis_url)
        # Of the processes of this instance, only the holder of its leader lease acts.
        self.leadership = Leadership(self.redis, "inspector", config.instance, config.leader_ttl_ms)
        # What it does at the venues and publishes, beside its journal, is fenced by the lease too.
        self.guard = LeaseGuard(self.redis, self.leadership)
        writes = Publisher(self.redis)  # the risk events' writes, grouped
        self.notifier = notifier_from_env()  # webhook, Telegram: what an operator must hear of
        self.runtime = Runtime(
            InputJournal(
                self.redis, journal_stream(config.instance), FencedWrites(self.redis, self.leadership)
            ),
            RiskLog(self.redis, config.source, writes, self.notifier, self.guard.check),
            lambda rt: Executor(
                self.links,
                rt.feed,
                rt.clock,
                timeout_s=config.venue_timeout_s,
                on_covered=lambda venue: self.reconciler.wake(venue),
                fence=self.guard.check,
            ),
            lambda rt: MarketBoard(self.links, rt.executor.on_trade),
            time.time_ns,
            config.instance,
            config.snapshot_every,
        )
        # Only what the trading streams' allowed writers signed is acted on (issue 56).
        self.bus_auth = BusAuth(verifier_from_env(), self.runtime.risk_log)
        self.bus_auth.say_missing()
        from_venues = self.runtime.on_execution if config.executions == "venue" else None
        self.accounts = VenueAccounts(self.links)
        self.followers = VenueFollowers(self.links, from_venues, config.deadman_ttl_ms, self.accounts)
        self.reconciler = Reconciler(self)
        self.margin = MarginWatch(self.links, self.accounts, self.runtime)
        self.runtime.margin = self.margin
        executor = self.runtime.executor
        self.takeover = Takeover(self.redis, self.leadership, self.links, executor, config.instance)
        # The detectors' active patches (read with the mesh token: ListPatches only reads).
        self._upstream = Upstream(self.resolver, config.venue_timeout_s)
        self.patches = ActivePatches(self._upstream)
        self._slots = asyncio.Semaphore(_IN_FLIGHT)

    @property
    def name(self) -> str:
        return self.config.instance

    def grpc_services(self) -> Sequence[Service]:
        return (inspector_service(self),)

    def _policies(self) -> PolicySource:
        path = self.config.policies or DEFAULT_POLICIES
        shown = "" if self.config.policies is None else str(path)
        return PolicySource(read_text(path, "policies"), shown, time.time_ns())

    @property
    def stood_down(self) -> dict[str, str]:
        """The venues stood down by the reconciliation, as journaled (the core's checks refuse
        their entries, from the API and the bus alike)."""
        return self.runtime.ready_core.book.venues_down

    @property
    def legacy(self) -> dict[PositionKey, tuple[Decimal, Decimal | None]]:
        """The legacy positions, as journaled (a restart replays them)."""
        return self.runtime.ready_core.book.legacy

    async def run(self, ctx: ServiceContext) -> None:
        config = self.config
        try:
            reached = await reach_redis(self.redis, config.redis_url, "inspector", ctx.stop)
            if not reached or not await self.leadership.take(ctx):
                return
            async with self.leadership.kept(ctx.stop) as kept:
                await self._lead(ctx, kept)
        finally:
            await self.followers.close()  # the heartbeats started as the lease was taken
            await self.runtime.commands.close()  # a command under way ends as it would have
            await self.runtime.snapshots.close()
            await self.runtime.executor.close()
            await self.runtime.board.close()
            await self.notifier.close()
            await self.links.close()
            await self._upstream.close()
            await self.resolver.close()
            await self.redis.aclose()

    async def _lead(self, ctx: ServiceContext, kept: asyncio.Task[None]) -> None:
        """As the leader: the journal replayed, then the inspector acts until it stops or `kept`
        (its lease's renewals) ends with the lease lost."""
        await self._find_mesh()
        fresh = not await self.redis.exists(self.runtime.journal.stream)
        # Before the replay (seconds): the dead-man armed, the positions the venues show protected
        # (trademesh.core.inspector.takeover; at a fresh start all of them are legacy, never touched).
        self.followers.beat(ctx.stop)
        if not fresh:
            await self.takeover.protect(self._policies().protect)
        executions = self._bus_executions()
        if executions is not None and fresh:
            await executions.start_fresh()
        self.runtime.board.start(ctx.stop)
        await self.runtime.start(self._policies(), self.config.starting_equity, self.takeover.withdraw)
        if fresh:
            await self.reconciler.find_legacy()
            await self.takeover.remember_legacy(self.legacy)
        await self._serve(ctx, executions, kept)

    def _bus_executions(self) -> BusExecutions | None:
        if self.config.executions != "bus":
            return None
        return BusExecutions(
            self.redis, self.config.group, self.config.instance, self.links.names(),
            self.runtime.on_execution, self.runtime.on_gap,
        )  # fmt: skip

    async def _serve(
        self, ctx: ServiceContext, executions: BusExecutions | None, kept: asyncio.Task[None]
    ) -> None:
        options = ConsumerOptions(
            group=self.config.group, consumer=self.config.instance, streams=(INTENTS, POSITION_REQUESTS),
            batch=100, claim_idle_ms=self.config.claim_idle_ms, start_id="$", admit=self.bus_auth.admit,
        )  # fmt: skip
        consumer = GroupConsumer(self.redis, options, self._intents)
        # The group exists before the service says it serves: made later at the stream's end
        # ("$"), it skipped the intents published in between (a test's, sent on the serving
        # line, waited 30 s for their verdicts).
        await consumer.ensure_groups()
        watch = PolicyWatch(self.config.policies, self.runtime)
        await ctx.ready()
        log.info("inspector: serving; state %s", self.runtime.ready_core.state.value)
        tasks = [
            asyncio.create_task(consumer.run(ctx.stop), name="inspector intents"),
            asyncio.create_task(self.followers.run(ctx.stop), name="inspector venues"),
            asyncio.create_task(self.runtime.mark_loop(ctx.stop, self.config.mark_every_s), name="marks"),
            asyncio.create_task(self.runtime.timer.run(ctx.stop), name="inspector timers"),
            asyncio.create_task(
                self.reconciler.run(ctx.stop, self.config.reconcile_every_s), name="reconcile"
            ),
            asyncio.create_task(watch.run(ctx.stop), name="policies"),
            asyncio.create_task(self.resolver.follow(ctx.stop), name="inspector mesh"),
            asyncio.create_task(self.patches.run(ctx.stop, self._follow), name="inspector patches"),
            asyncio.create_task(self._listings(ctx.stop), name="inspector instruments"),
            asyncio.create_task(
                self.margin.run(ctx.stop, self.config.margin_every_s), name="inspector margin"
            ),
        ]
        if executions is not None:
            tasks.append(asyncio.create_task(executions.run(ctx.stop), name="inspector executions"))
        watched = asyncio.create_task(watch_stalls(ctx.stop, executions), name="inspector watchdog")
        stopped = asyncio.ensure_future(ctx.stop.wait())
        try:
            await asyncio.wait({stopped, watched, kept}, return_when=asyncio.FIRST_COMPLETED)
            if kept.done() and not ctx.stop.is_set():
                kept.result()  # the lease lost: it stops acting now, and is restarted as a standby
            if watched.done():
                watched.result()  # a stall ends the service: its supervisor starts it afresh
        finally:
            for task in [*tasks, watched, stopped]:
                task.cancel()
            await asyncio.gather(*tasks, watched, stopped, return_exceptions=True)

    async def _listings(self, stop: asyncio.Event) -> None:
        """The venues' instrument streams (md.{<venue>}.instruments) followed: a market delisted
        takes no new entry of ours from then (a journaled input, said with a NOTICE on `risk`)."""
        heard: asyncio.Queue[VenueListing] = asyncio.Queue()
        watch = InstrumentWatch(self.redis, heard.put_nowait)
        reading = asyncio.create_task(watch.run(stop), name="instrument streams")
        try:
            while not stop.is_set():
                listing = await heard.get()
                try:
                    changed = await self.runtime.on_listing(listing.venue, listing.delisted)
                except TrademeshError as exc:  # the journal unreachable now: the next entry says it again
                    log.warning("inspector: %s's delistings not taken: %s", listing.venue, exc)
                    continue
                if changed:
                    log.warning(
                        "inspector: %s delisted now: %s",
                        listing.venue,
                        ", ".join(sorted(listing.delisted)) or "none",
                    )
                await self._rules_changed(listing)
        finally:
            reading.cancel()
            await asyncio.gather(reading, return_exceptions=True)

    async def _rules_changed(self, listing: VenueListing) -> None:
        """A venue's trading rules changed (CHANGED: tick, lot, minimums ...; at the start, any of
        the markets the core holds facts of may have changed meanwhile): its list is asked again,
        and those markets learn the new rules (a journaled input when they differ: protection is
        sized to what the venue accepts now)."""
        known = [symbol for venue, symbol in self.runtime.ready_core.instruments if venue == listing.venue]
        if listing.at_start:
            changed = known
        else:
            changed = [c.symbol for c in listing.changes if c.kind == bus.InstrumentChange.KIND_CHANGED]
        if not changed:
            return
        self.runtime.executor.ticks.forget(listing.venue)
        for symbol in changed:
            if symbol in known:
                try:
                    await self.runtime.learn(listing.venue, symbol)
                except TrademeshError as exc:  # asked again at its next intent
                    log.warning("inspector: %s %s's new rules not learnt: %s", listing.venue, symbol, exc)

    def _follow(self, markets: frozenset[Key]) -> None:
        """The active patches' markets followed from now on, as long as they are traded."""
        self.runtime.board.keep(markets)

    async def _intents(self, stream: str, entries: list[Entry]) -> None:
        """Every intent of the entries, `_IN_FLIGHT` at once (each waits for its venue's answer);
        the strategies' position requests one after the other (trademesh.core.inspector.requests)."""
        if stream == POSITION_REQUESTS:
            for _, envelope in entries:
                for request in envelope.position_requests.requests:
                    await carry_out_request(self.runtime, request)
            return
        intents = [i for _, envelope in entries for i in envelope.intents.intents]
        await asyncio.gather(*(self._one(intent) for intent in intents))

    async def _one(self, intent: am.Intent) -> None:
        async with self._slots:
            await self._check(intent)

    async def _check(self, intent: am.Intent) -> None:
        # Under its signal's trace: the verdict's (or the refusal's) line, and the venue's line
        # of its order.
        traced: AbstractContextManager[None] = (
            log_fields(trace_id=chain_trace_id(intent.signal_id)) if intent.signal_id else nullcontext()
        )
        with traced:
            await self._submit(intent)

    async def _submit(self, intent: am.Intent) -> None:
        try:
            if self.runtime.ready_core.handled(intent.intent_id):
                return  # a redelivery: the journal has it
            done = await self.runtime.submit(intent)
            done.log("signal", intent)
        except InvalidArgument as exc:  # its fields mean nothing as an order: a BLOCK, and the bus goes on
            log.warning("inspector: intent %s refused: %s", shown(intent.intent_id), exc)
            await self.runtime.refuse_invalid(intent, exc)
        except TrademeshError as exc:  # refused for another reason: said, and the bus goes on
            log.warning("inspector: intent %s not taken: %s", intent.intent_id, exc)

    async def _find_mesh(self) -> None:
        try:
            await self.resolver.refresh()
        except Exception as exc:  # the registry may come later: follow() keeps trying
            log.warning("inspector: the gateway's registry at %s: %s", self.config.gateway, exc)


async def watch_stalls(
    stop: asyncio.Event, executions: BusExecutions | None, stall_s: float = _STALL_S
) -> None:
    """An execution that has not gone through in `stall_s` is a stall no deadline caught (every
    venue call and Redis write has one): the tasks' stacks are logged, and Unavailable ends the
    service, so that its supervisor starts it afresh (the journal replayed, the executions not
    acknowledged read again), rather than it stay deaf to its fills."""
    if executions is None:  # executions straight from the venues (trademesh.core.inspector.followers)
        await stop.wait()
        return
    while not await sleep_unless(stop, min(1.0, stall_s / 4)):
        stalled = executions.stalled_s()
        if stalled > stall_s:
            log.error("inspector: an execution has not gone through in %.0f s\n%s", stalled, tasks_text())
            raise Unavailable(f"inspector: its executions stalled for {stalled:.0f} s; restart it")
