"""The ledger service: the posting core inside its shell
(trademesh.core.platform.service.lifecycle's lifecycle).

At start: reach the bus; take the leader lease `leader.ledger.{<instance>}`
(trademesh.core.platform.replicas.leader), standing by until it is ours (losing it ends the
process); then reach PostgreSQL (the ledger's tables migrated), rebuild the core from the
stored balances, read the inspector's order links on from where they stopped
(trademesh.core.ledger.attribution). At the books' first start each venue's balances are
posted as opening deposits (once every venue answered: trademesh.core.ledger.opening), and the
executions are read from then on. Serve the Ledger API and run:
- the `exec.*` consumer (group `ledger`): each entry's fills posted as one batch, acknowledged
  once committed, so a redelivered execution posts nothing twice (its event id is recorded);
- the attribution follower, and the perpetual venues' funding payments (trademesh.core.ledger.funding).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from decimal import Decimal

from trademesh.core.domain.model import InstrumentKind
from trademesh.core.ledger.api import ledger_service
from trademesh.core.ledger.attribution import Attribution
from trademesh.core.ledger.audit import run_audits
from trademesh.core.ledger.config import LedgerServiceConfig
from trademesh.core.ledger.convert import fill_event
from trademesh.core.ledger.engine.events import Event
from trademesh.core.ledger.engine.model import Transfer
from trademesh.core.ledger.funding import FundingFollower
from trademesh.core.ledger.links import OrderLink
from trademesh.core.ledger.opening import read_openings
from trademesh.core.ledger.posting import Poster
from trademesh.core.ledger.store import LedgerStore
from trademesh.core.ledger.venues import LedgerVenues
from trademesh.core.ledger.watch import TransferWatch
from trademesh.core.platform.aio.retry import default_backoff, sleep_unless, until_reachable
from trademesh.core.platform.bus.consumer import ConsumerOptions, Entry, GroupConsumer
from trademesh.core.platform.bus.names import EXECUTION_STREAMS, executions_stream, parse_executions_stream
from trademesh.core.platform.bus.redis import open_redis, reach_redis
from trademesh.core.platform.config.env import redact_url
from trademesh.core.platform.errors import TrademeshError, Unavailable
from trademesh.core.platform.replicas.leader import Leadership
from trademesh.core.platform.rpc.server import Service
from trademesh.core.platform.service.lifecycle import ServiceContext
from trademesh.core.tools.resolver import VENUE_SERVICES, Instance, MeshResolver
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["Ledger"]

log = logging.getLogger(__name__)

_ATTRIBUTION_POLL_S = 0.05


class Ledger:
    """The service app, and the state the API reads."""

    def __init__(self, config: LedgerServiceConfig) -> None:
        self.config = config
        given = [Instance(v.name, v.address, VENUE_SERVICES) for v in config.mesh.venues]
        self.resolver = MeshResolver(config.gateway, given)
        self.venues = LedgerVenues(self.resolver)
        self.redis = open_redis(config.redis_url)
        # Of the processes of this instance, only the holder of its leader lease posts.
        self.leadership = Leadership(self.redis, "ledger", config.instance, config.leader_ttl_ms)
        self.watch = TransferWatch()
        self._store: LedgerStore | None = None
        self._poster: Poster | None = None
        self.attribution: Attribution | None = None
        self.funding: FundingFollower | None = None
        self._stop = asyncio.Event()

    @property
    def name(self) -> str:
        return self.config.instance

    @property
    def store(self) -> LedgerStore:
        if self._store is None:
            raise Unavailable("the ledger is starting")
        return self._store

    @property
    def poster(self) -> Poster:
        if self._poster is None:
            raise Unavailable("the ledger is starting")
        return self._poster

    def grpc_services(self) -> Sequence[Service]:
        return (ledger_service(self),)

    async def run(self, ctx: ServiceContext) -> None:
        self._stop = ctx.stop
        try:
            if not await self._reach_redis(ctx) or not await self.leadership.take(ctx):
                return
            async with self.leadership.kept(ctx.stop) as kept:
                await self._lead(ctx, kept)
        finally:
            await self.venues.close()
            await self.resolver.close()
            await self.redis.aclose()
            if self._store is not None:
                await self._store.close()

    async def _reach_redis(self, ctx: ServiceContext) -> bool:
        config = self.config
        return await reach_redis(self.redis, config.redis_url, "ledger", ctx.stop)

    async def _lead(self, ctx: ServiceContext, kept: asyncio.Task[None]) -> None:
        """As the leader: the books loaded from the store, then it posts until it stops or `kept`
        (its lease's renewals) ends with the lease lost."""
        if not await self._connect(ctx):
            return
        await self._find_mesh()
        consumer = self._consumer()
        opening = not await self.store.posted_any()
        await self._serve(ctx, consumer, kept, opening)

    async def _connect(self, ctx: ServiceContext) -> bool:
        config = self.config
        where = f"ledger: PostgreSQL at {redact_url(config.database_url)}"
        store = await until_reachable(
            lambda: LedgerStore.open(config.database_url), what=where, retry_on=(Unavailable,), stop=ctx.stop
        )
        if store is None:
            return False
        self._store = store
        self._poster = Poster(store, self._posted)
        await self._poster.load()
        self.funding = FundingFollower(self.venues, self._poster, config.funding_every_s)
        self.attribution = Attribution(self.redis, store.pool)
        await self.attribution.start()
        await self.attribution.catch_up()
        return True

    def _consumer(self) -> GroupConsumer:
        streams = tuple(executions_stream(v) for v in self.venues.names())
        # The read's block only paces the rounds when no execution comes (an execution ends it at
        # once): the consumers' default, not 200 ms (5 wakes a second for nothing).
        options = ConsumerOptions(
            group=self.config.group, consumer=self.config.instance, streams=streams,
            patterns=(EXECUTION_STREAMS,), batch=500, claim_idle_ms=self.config.claim_idle_ms,
            start_id="0", discover_s=1.0,
        )  # fmt: skip
        return GroupConsumer(self.redis, options, self._executions)

    async def _post(self, consumer: GroupConsumer, opening: bool, stop: asyncio.Event) -> None:
        """The executions consumer, and beside it the funding follower; at the books' first start
        (`opening`), once every venue's balances are posted as opening deposits
        (trademesh.core.ledger.opening): the executions are read from then on, and wait on the bus until."""
        await consumer.ensure_groups()
        if opening and not await self._open_books(consumer, stop):
            return
        funding = None
        if self.funding is not None:
            funding = asyncio.create_task(self.funding.run(stop), name="ledger funding")
        try:
            await consumer.run(stop)
        finally:
            if funding is not None:
                funding.cancel()
                await asyncio.gather(funding, return_exceptions=True)

    async def _open_books(self, consumer: GroupConsumer, stop: asyncio.Event) -> bool:
        """Posts the opening deposits; False when the ledger stopped first."""
        # The venues the consumer's groups were made for (the registry may list more by now).
        streams = {parse_executions_stream(s) or s: s for s in consumer.options.streams}
        if not self.config.opening_balances:
            for stream in streams.values():
                await self.redis.xgroup_setid(stream, self.config.group, "$")
            return True
        events = await read_openings(self.redis, self.config.group, streams, self.venues, time.time_ns, stop)
        if events is None:
            return False
        await self._post_until_kept(events)
        log.info("ledger: books opened with %d opening balances", len(events))
        return True

    async def _serve(
        self, ctx: ServiceContext, consumer: GroupConsumer, kept: asyncio.Task[None], opening: bool
    ) -> None:
        assert self.attribution is not None
        await ctx.ready()
        log.info("ledger: serving; %d accounts", len(self.poster.core.accounts))
        posting = asyncio.create_task(self._post(consumer, opening, ctx.stop), name="ledger posting")
        tasks = [
            posting,
            asyncio.create_task(self.attribution.follow(ctx.stop), name="ledger attribution"),
            asyncio.create_task(self.resolver.follow(ctx.stop), name="ledger mesh"),
        ]
        if self.config.verify_every_s > 0:
            audits = run_audits(self.store.pool, self.config.verify_every_s, ctx.stop)
            tasks.append(asyncio.create_task(audits, name="ledger audits"))
        ctx.on_stopping(self.watch.end)
        stopped = asyncio.ensure_future(ctx.stop.wait())
        try:
            await asyncio.wait({stopped, kept, posting}, return_when=asyncio.FIRST_COMPLETED)
            if kept.done() and not ctx.stop.is_set():
                kept.result()  # the lease lost: it stops posting now, and is restarted as a standby
            if posting.done() and not ctx.stop.is_set():
                posting.result()  # a ledger that stopped posting ends (and is restarted), never serves on
        finally:
            stopped.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _executions(self, stream: str, entries: list[Entry]) -> None:
        """One stream's entries: their fills posted as one batch (returns once committed)."""
        stream_venue = parse_executions_stream(stream) or ""
        events: list[Event] = []
        leverages: dict[tuple[str, str], Decimal] = {}  # asked once a batch per perpetual
        for _, envelope in entries:
            batch = envelope.executions
            for execution in batch.executions:
                if execution.HasField("fill") and execution.fill.fill_id:
                    venue = execution.venue or batch.venue or stream_venue
                    event = await self._fill(venue, execution, leverages)
                    if event is not None:
                        events.append(event)
        await self._post_until_kept(events)

    async def _post_until_kept(self, events: list[Event]) -> None:
        """Post, waiting out a database outage (the entries stay unacknowledged meanwhile, and
        never reach the dead letters for it); raises only once the service is stopping."""
        backoff = default_backoff()
        while True:
            try:
                await self.poster.post(events)
                return
            except Unavailable as exc:
                if self._stop.is_set():
                    raise
                delay = backoff.next()
                log.warning("ledger: posting %d events: %s; again in %.1f s", len(events), exc, delay)
            await sleep_unless(self._stop, delay)

    async def _fill(
        self, venue: str, execution: tf.Execution, leverages: dict[tuple[str, str], Decimal]
    ) -> Event | None:
        """The fill's event: its order's link, its instrument, and a perpetual's leverage in force
        (its margin is its cost / leverage, as the venue reckons it: docs/ledger.md, "Margin")."""
        link = await self._link(execution.fill.client_order_id, execution.fill.ts_event_ns)
        symbol = execution.fill.symbol
        contract = await self.venues.contract(venue, symbol)
        leverage = Decimal(1)
        if contract.kind is InstrumentKind.PERPETUAL:
            if (venue, symbol) not in leverages:
                leverages[(venue, symbol)] = await self.venues.leverage(venue, symbol)
            leverage = leverages[(venue, symbol)]
        try:
            return fill_event(venue, execution, contract, link, leverage)
        except TrademeshError as exc:  # a malformed fill on the bus: said, and the bus goes on
            log.warning("ledger: fill %s of %s not booked: %s", execution.fill.fill_id, venue, exc)
            return None

    async def _link(self, client_order_id: str, fill_ns: int) -> OrderLink | None:
        """The order's link. A fill may be read before the inspector's ALLOW of its order is:
        the fill of an unknown order waits until it is attribution_wait_s old for it (an old
        fill, read again, does not wait)."""
        assert self.attribution is not None
        deadline_ns = fill_ns + int(self.config.attribution_wait_s * 1e9)
        while True:
            link = await self.attribution.link(client_order_id)
            if link is not None or not client_order_id or time.time_ns() >= deadline_ns:
                return link
            if not await self.attribution.catch_up():
                await asyncio.sleep(_ATTRIBUTION_POLL_S)

    def _posted(self, transfers: Sequence[Transfer]) -> None:
        self.watch.publish(transfers, self.poster.core.accounts)

    async def _find_mesh(self) -> None:
        try:
            await self.resolver.refresh()
        except Exception as exc:  # the registry may come later: follow() keeps trying
            log.warning("ledger: the gateway's registry at %s: %s", self.config.gateway, exc)
