"""The venues this ingest replica follows now, each with its followers and its lease.

`VenueFleet.apply(venues)` takes the venues the mesh has now (trademesh.core.platform.rpc.discovery);
`VenueFleet.balance()`, every third of the lease's ttl, keeps this replica's share of them
(trademesh.core.ingest.shares): it takes a free venue's lease and follows it (a MarketFollower per channel, an
ExecutionFollower), resumed from where the bus says the last writer stopped; it gives back a venue
over its share (followers stopped, their entries flushed, the lease released: the next holder
resumes where they stopped, by the venue's own numbering). Every write carries the venue lease's
token (a fenced write): a replica that lost a lease (paused past its ttl) writes nothing more
under it, and drops the venue when a write or a renewal says so.
A venue gone from the mesh (unregistered, its heartbeats stopped, or moved to another address) is
stopped, and every stream it was writing gets a gap marker since its last event, as for any lost
venue: its events from then on may be missing until it is followed again.
A venue that writes its own streams (`trademesh venue NAME --bus-direct`: its claim,
trademesh.core.platform.bus.venue_lease) is left to it: given back when held, counted in no share.
"""

from __future__ import annotations

import asyncio
import logging

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trademesh.core.ingest import metrics
from trademesh.core.ingest.account import AccountFollower
from trademesh.core.ingest.dial import VenueDial
from trademesh.core.ingest.executions import ExecutionFollower
from trademesh.core.ingest.follow import MarketFollower
from trademesh.core.ingest.funding import FundingPaymentsPoller
from trademesh.core.ingest.instruments import InstrumentFollower
from trademesh.core.ingest.symbols import venue_symbols
from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.core.platform.bus.funding import resume_funding
from trademesh.core.platform.bus.group import Fenced
from trademesh.core.platform.bus.instruments import KEEP, resume_instruments
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.bus.relay import resume_executions, resume_market
from trademesh.core.platform.bus.venue_lease import direct_venues, venue_lease_name
from trademesh.core.platform.bus.writer import BusWriter
from trademesh.core.platform.config.mesh import VenueLink
from trademesh.core.platform.errors import TrademeshError
from trademesh.core.platform.replicas.lease import Lease
from trademesh.core.platform.replicas.shares import Membership, keep_balanced, share_of, wanted_order
from trademesh.core.platform.rpc.client import Metadata
from trademesh.core.platform.rpc.discovery import Venues

__all__ = ["VenueFleet", "VenueFollowing"]

log = logging.getLogger(__name__)

_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class VenueFollowing:
    """One venue's followers and their tasks, from the venue's instrument list to its drop, under
    the venue's lease (held)."""

    def __init__(self, link: VenueLink, fleet: VenueFleet, lease: Lease) -> None:
        assert lease.token is not None, "followed only under its lease"
        self.link = link
        self.lease = lease
        self.fence = Fenced(lease.key, lease.token)
        self.market: list[MarketFollower] = []
        self.executions: ExecutionFollower | None = None
        self.funding: FundingPaymentsPoller | None = None
        self.instruments: InstrumentFollower | None = None
        self.account: AccountFollower | None = None
        self._fleet = fleet
        self._stop = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name=f"ingest {link.name}")

    @property
    def streams(self) -> list[str]:
        executions = [] if self.executions is None else [self.executions.stream]
        funding = [] if self.funding is None else [self.funding.stream]
        instruments = [] if self.instruments is None else [self.instruments.stream]
        account = [] if self.account is None else [self.account.stream]
        return [f.stream for f in self.market] + executions + funding + instruments + account

    def mark_bus_loss(self, lost: dict[str, int]) -> None:
        """The streams whose server lost entries (stream -> since when, ns): a gap marker each."""
        for follower in self._followers():
            if follower.stream in lost:
                follower.mark_bus_loss(lost[follower.stream])

    async def stop(self, reason: str | None) -> None:
        """Stops its followers; with a reason, a gap marker in each market stream it wrote."""
        self._stop.set()
        await cancel_and_wait(self._task)
        if reason is None:
            return
        for follower in self.market:
            await follower.mark_left(reason)

    async def _publish(self, stream: str, raw: bytes) -> None:
        await self._fleet.writer.publish(stream, raw, fence=self.fence)
        metrics.PUBLISHED.labels(self.link.name).inc()

    async def _publish_executions(self, stream: str, raw: bytes, epoch: int, position: int) -> None:
        await self._fleet.writer.publish_executions(stream, raw, epoch, position, fence=self.fence)
        metrics.PUBLISHED.labels(self.link.name).inc()

    async def _publish_envelope(self, stream: str, envelope: bytes) -> None:
        await self._fleet.writer.publish_envelope(stream, envelope, fence=self.fence)
        metrics.PUBLISHED.labels(self.link.name).inc()

    async def _publish_instruments(self, stream: str, envelope: bytes) -> None:
        await self._fleet.writer.publish_envelope(stream, envelope, fence=self.fence, maxlen=KEEP)
        metrics.PUBLISHED.labels(self.link.name).inc()

    def _followers(
        self,
    ) -> list[
        MarketFollower | ExecutionFollower | FundingPaymentsPoller | InstrumentFollower | AccountFollower
    ]:
        executions = [] if self.executions is None else [self.executions]
        funding = [] if self.funding is None else [self.funding]
        instruments = [] if self.instruments is None else [self.instruments]
        account = [] if self.account is None else [self.account]
        return [*self.market, *executions, *funding, *instruments, *account]

    async def _run(self) -> None:
        fleet, link = self._fleet, self.link
        try:
            symbols = await venue_symbols(link, fleet.metadata, self._stop)
        except TrademeshError as exc:
            log.error("ingest: venue %s at %s not followed: %s", link.name, link.address, exc)
            return
        if symbols is None:
            return
        dial = VenueDial.of(link, fleet.metadata)
        for channel in link.channels:
            if not symbols.of(channel):
                continue  # the funding channel of a venue without perpetuals
            follower = MarketFollower(dial, channel, symbols.of(channel), self._publish)
            await resume_market(fleet.redis, follower)
            self.market.append(follower)
        if fleet.executions:
            executions = ExecutionFollower(dial, self._publish_executions)
            await resume_executions(fleet.redis, executions)
            self.executions = executions
        if fleet.funding_every_s > 0:
            funding = FundingPaymentsPoller(
                dial, self._publish_envelope, fleet.writer.source, fleet.funding_every_s
            )
            await resume_funding(fleet.redis, funding)
            self.funding = funding
        if fleet.instruments_every_s > 0:
            instruments = InstrumentFollower(
                dial, self._publish_instruments, fleet.writer.source, fleet.instruments_every_s
            )
            await resume_instruments(fleet.redis, instruments)
            self.instruments = instruments
        if fleet.account:
            self.account = AccountFollower(dial, self._publish_envelope, fleet.writer.source)
        log.info("ingest: following %s", ", ".join(self.streams))
        runs = [asyncio.create_task(f.run(self._stop), name=f.stream) for f in self._followers()]
        try:
            await asyncio.gather(*runs)
        finally:
            for run in runs:
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)


class VenueFleet:
    """The venues of the mesh, and those this replica follows now (by name)."""

    def __init__(
        self,
        redis: BusRedis,
        writer: BusWriter,
        metadata: Metadata,
        executions: bool,
        holder: str,
        lease_ttl_ms: int,
    ) -> None:
        self.redis = redis
        self.writer = writer
        self.metadata = metadata
        self.executions = executions
        # Each venue's funding payments read this often (0: not read; trademesh.core.ingest.funding).
        self.funding_every_s = 0.0
        # Each venue's instrument list read this often (0: not read; trademesh.core.ingest.instruments).
        self.instruments_every_s = 0.0
        # Each venue's account (StreamAccount) followed into account.{<venue>}
        # (trademesh.core.ingest.account).
        self.account = False
        self.holder = holder
        self.lease_ttl_ms = lease_ttl_ms
        self.venues: dict[str, VenueLink] = {}
        self.following: dict[str, VenueFollowing] = {}
        self.members = Membership(redis, "ingest", holder, lease_ttl_ms)
        self._lock = asyncio.Lock()  # apply and balance run one at a time

    @property
    def streams(self) -> list[str]:
        return [stream for venue in self.following.values() for stream in venue.streams]

    def mark_bus_loss(self, lost: dict[str, int]) -> None:
        for venue in self.following.values():
            venue.mark_bus_loss(lost)

    async def apply(self, venues: Venues) -> None:
        """The mesh's venues now: those gone or moved are stopped (gap-marked), then rebalanced."""
        async with self._lock:
            self.venues = dict(venues)
            for name, following in list(self.following.items()):
                now = venues.get(name)
                if now is not None and now == following.link:
                    continue
                reason = "the venue left the mesh" if now is None else f"the venue moved to {now.address}"
                log.warning("ingest: venue %s at %s dropped: %s", name, following.link.address, reason)
                await self._drop(name, reason)
        await self.balance()

    async def balance(self) -> None:
        """Renews the leases held (dropping venues lost), then keeps this replica's share."""
        async with self._lock:
            members = await self.members.beat()
            for name in self._fenced():
                log.warning("ingest: venue %s: a write was fenced (another replica holds it): dropped", name)
                await self._drop(name, None)
            for name, following in list(self.following.items()):
                if not await following.lease.renew():
                    log.warning("ingest: venue %s: lease lost (another replica holds it): dropped", name)
                    await self._drop(name, None)
            direct = await direct_venues(self.redis, self.venues)
            for name in sorted(direct & set(self.following)):
                log.info("ingest: venue %s given back: it writes its own streams (--bus-direct)", name)
                await self._give_back(name)
            ours = [name for name in self.venues if name not in direct]
            share = share_of(len(ours), members)
            for name in sorted(self.following)[share:]:
                log.info("ingest: venue %s given back (%d members: a share of %d)", name, members, share)
                await self._give_back(name)
            for name in wanted_order(self.holder, ours):
                if len(self.following) >= share:
                    break
                if name not in self.following:
                    await self._take(name)

    async def run(self, stop: asyncio.Event) -> None:
        """`balance` every third of the lease's ttl until `stop`."""
        await keep_balanced(self.balance, self.lease_ttl_ms / 3000, stop, "ingest: the venues' leases")

    async def _take(self, name: str) -> None:
        lease = Lease(self.redis, venue_lease_name(name), self.holder, self.lease_ttl_ms)
        if await lease.acquire():
            link = self.venues[name]
            log.info("ingest: venue %s at %s taken (lease %s)", name, link.address, lease.token)
            self.following[name] = VenueFollowing(link, self, lease)
            self._changed("taken")

    async def _give_back(self, name: str) -> None:
        """A graceful handover: followers stopped, what they queued written, the lease released."""
        following = self.following.pop(name)
        self._changed("given_back")
        await following.stop(None)
        await self.writer.drain()
        await following.lease.release()

    async def _drop(self, name: str, reason: str | None) -> None:
        """Stops following `name`: with a reason, it left the mesh (gap-marked); without, its lease
        is another replica's now."""
        following = self.following.pop(name, None)
        if following is not None:
            self._changed("lost" if reason is None else "dropped")
            await following.stop(reason)
            if reason is not None:
                await self.writer.drain()
            await following.lease.release()

    def _changed(self, change: str) -> None:
        metrics.VENUE_CHANGES.labels(change).inc()
        metrics.VENUES_HELD.set(len(self.following))

    def _fenced(self) -> list[str]:
        keys, self.writer.publisher.fenced = self.writer.publisher.fenced, set()
        return [name for name, f in self.following.items() if f.lease.key in keys]

    async def close(self) -> None:
        """Every venue given back at once: followers stopped, their entries written, leases
        released (Redis away: they expire)."""
        async with self._lock:
            following, self.following = list(self.following.values()), {}
            for venue in following:
                await venue.stop(None)
            await self.writer.drain()
            try:
                for venue in following:
                    await venue.lease.release()
                await self.members.leave()
            except _REDIS_ERRORS as exc:
                log.warning("ingest: leases not released (Redis unreachable: %s): they expire", exc)
