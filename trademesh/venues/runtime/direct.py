"""The direct path: a venue writes its own market data and executions to the bus (`trademesh venue
NAME --bus-direct`), with ingest's pieces in process instead of a second process across gRPC.

The same streams (md.{<venue>}.<channel>, exec.{<venue>}), envelopes, numbering (the venue's
epoch and position) and resume as ingest's (docs/bus.md, "The direct path"):
- one relay per channel and one for executions (trademesh.core.platform.bus.relay, as ingest's
  followers), each carried in process (trademesh.venues.runtime.direct_streams), into one BusWriter
  (trademesh.core.platform.bus.writer: queued, flushed in pipelined round trips, Redis outages ridden
  out, a Redis restarted empty said with gap markers);
- one writer per venue: the venue holds the venue's lease (`ingest.{<venue>}`, as an ingest replica
  would) and claims its streams (trademesh.core.platform.bus.venue_lease), so ingest replicas give the
  venue back and leave it alone; every write is fenced by the lease's token;
- at start, every relay resumes from the bus's last entry: a stream written by this process
  before (its lease lost and taken back) goes on seamlessly, one written by another process (a
  restarted venue, or ingest) gets the gap markers ingest writes when a venue restarted.
The gRPC MarketData stays for direct subscribers (the detector, the bridge's clients ...).
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from trademesh.core.domain.model import Channel
from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.bus.account import AccountRelay
from trademesh.core.platform.bus.funding import FundingRelay, resume_funding
from trademesh.core.platform.bus.group import Fenced
from trademesh.core.platform.bus.instruments import KEEP, InstrumentRelay, resume_instruments
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.bus.redis import BusRedis, open_redis, unreachable
from trademesh.core.platform.bus.relay import ExecutionRelay, MarketRelay, resume_executions, resume_market
from trademesh.core.platform.bus.venue_lease import claim_direct, unclaim_direct, venue_lease_name
from trademesh.core.platform.bus.writer import BusWriter
from trademesh.core.platform.config.mesh import DEFAULT_CHANNELS
from trademesh.core.platform.replicas.lease import Lease, holder_id
from trademesh.venues.runtime import metrics
from trademesh.venues.runtime.direct_streams import (
    STALL_S,
    LocalAccount,
    LocalExecutions,
    LocalFunding,
    LocalInstruments,
    LocalMarket,
)
from trademesh.venues.runtime.runtime import VenueRuntime
from trademesh.venues.runtime.validate import channel_refused

__all__ = ["DirectBus", "DirectOptions"]

Relay = MarketRelay | ExecutionRelay | FundingRelay | InstrumentRelay | AccountRelay
Carrier = LocalMarket | LocalExecutions | LocalFunding | LocalInstruments | LocalAccount

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DirectOptions:
    redis_url: str
    # Written into every bus entry: who published it.
    source: str = field(default_factory=lambda: f"venue/{socket.gethostname()}")
    # Bus entries held while Redis is slow or away; past it, the relays stop reading the fan-out
    # and resume from its history (or mark a gap) once Redis is back.
    max_queued: int = 20_000
    # The venue lease's ttl (renewed every third of it), as ingest's.
    lease_ttl_ms: int = 5000
    executions: bool = True
    # The account's funding payments read into funding.{<venue>} this often (0: not read).
    funding_every_s: float = 60.0
    # The venue's instrument list diffed into md.{<venue>}.instruments this often (0: not read),
    # and its account (balances and positions) into account.{<venue>}, as ingest's.
    instruments_every_s: float = 60.0
    account: bool = True
    channels: tuple[Channel, ...] = DEFAULT_CHANNELS
    # The streams' MAXLEN (trademesh.core.platform.bus.append.Retention), as the mesh config's defaults.
    rate_per_s: float = 2000.0
    outage_minutes: float = 10.0
    # A market batch waiting this long for room in the writer ends its stream (resumed from the
    # venue's history once Redis is back): the fan-out's 256 batches alone take as long as the
    # venue takes to make them (trademesh.venues.runtime.direct_streams).
    stall_s: float = STALL_S


class DirectBus:
    """The venue's streams written to the bus from its own process, while `run` runs."""

    def __init__(self, runtime: VenueRuntime, options: DirectOptions) -> None:
        self.rt = runtime
        self.options = options
        self.venue = runtime.name
        self.holder = holder_id(f"venue-{self.venue}")
        self.carriers: list[Carrier] = []
        self.writer: BusWriter | None = None

    @property
    def streams(self) -> list[str]:
        return [carrier.stream for carrier in self.carriers]

    async def run(self, stop: asyncio.Event) -> None:
        redis = open_redis(self.options.redis_url)
        try:
            await self._run(redis, stop)
        finally:
            await redis.aclose()

    async def _run(self, redis: BusRedis, stop: asyncio.Event) -> None:
        options = self.options
        publisher = Publisher(redis, Retention(options.rate_per_s, options.outage_minutes))
        writer = BusWriter(publisher, options.source, options.max_queued, name=f"venue {self.venue}")
        self.writer = writer
        if not await writer.connect(stop, options.redis_url):
            return
        written = asyncio.Event()  # the flush loop's stop: after the relays stopped
        flusher = asyncio.create_task(writer.run(written), name=f"{self.venue}-bus-writer")
        groups = asyncio.create_task(writer.watch_groups(lambda: self.streams, stop), name="bus-groups")
        try:
            while not stop.is_set():
                lease = await self._take(redis, stop)
                if lease is None:
                    break
                try:
                    await self._write_under(lease, redis, writer, stop)
                except Exception as exc:  # Redis away while the relays were read back
                    if not unreachable(exc):
                        raise
                    log.warning(
                        "venue %s: the bus unreachable at the start (%s): again soon", self.venue, exc
                    )
                    await sleep_unless(stop, self.options.lease_ttl_ms / 3000)
        finally:
            await cancel_and_wait(groups)
            written.set()
            await flusher
            await _unless_unreachable(unclaim_direct(redis, self.venue, self.holder))

    async def _take(self, redis: BusRedis, stop: asyncio.Event) -> Lease | None:
        """The venue's lease, once held (an ingest replica holding it gives it back when it sees
        the claim, within a third of its ttl); None when stopped first."""
        ttl = self.options.lease_ttl_ms
        lease = Lease(redis, venue_lease_name(self.venue), self.holder, ttl)
        waiting = False
        while not stop.is_set():
            try:
                await claim_direct(redis, self.venue, self.holder, ttl)
                if await lease.acquire():
                    log.info(
                        "venue %s: writes its own streams to the bus (lease %s)", self.venue, lease.token
                    )
                    return lease
            except Exception as exc:
                if not unreachable(exc):
                    raise
                log.warning("venue %s: the bus's lease not taken (%s): again soon", self.venue, exc)
            if not waiting:
                waiting = True
                log.info("venue %s: waiting for its streams' writer to give them back", self.venue)
            await sleep_unless(stop, ttl / 3000)
        return None

    async def _write_under(
        self, lease: Lease, redis: BusRedis, writer: BusWriter, stop: asyncio.Event
    ) -> None:
        """The relays under `lease` until stopped or the lease is lost (then written no more:
        the next holder resumes from the bus)."""
        assert lease.token is not None
        fence = Fenced(lease.key, lease.token)
        relays = await self._relays(redis, writer, fence)

        def bus_lost(lost: dict[str, int]) -> None:  # only the streams whose server lost entries
            for relay in relays:
                if relay.stream in lost:
                    relay.mark_bus_loss(lost[relay.stream])

        writer.on_loss = bus_lost
        halt = asyncio.Event()
        self.carriers = [_carrier(self.rt, relay, self.options.stall_s) for relay in relays]
        runs = [asyncio.create_task(c.run(halt), name=f"direct {c.stream}") for c in self.carriers]
        try:
            await self._keep(lease, redis, writer, stop)
        finally:
            halt.set()
            for run in runs:  # a carrier may be waiting for a batch, or for room in the writer
                run.cancel()
            await asyncio.gather(*runs, return_exceptions=True)
            self.carriers = []
            if stop.is_set():
                await writer.drain()
            await _unless_unreachable(lease.release())

    async def _keep(self, lease: Lease, redis: BusRedis, writer: BusWriter, stop: asyncio.Event) -> None:
        """Renew the claim and the lease every third of the ttl until stopped; returns when the
        lease is lost (renewal refused, or a write fenced)."""
        ttl = self.options.lease_ttl_ms
        while not await sleep_unless(stop, ttl / 3000):
            if lease.key in writer.publisher.fenced:
                writer.publisher.fenced.discard(lease.key)
                log.warning(
                    "venue %s: a bus write was fenced (the lease expired, or another writer holds it)",
                    self.venue,
                )
                return
            try:
                await claim_direct(redis, self.venue, self.holder, ttl)
                if not await lease.renew():
                    log.warning(
                        "venue %s: the bus's lease lost (expired, or another writer holds it)", self.venue
                    )
                    return
            except Exception as exc:  # the writer rides out the outage; the fence guards
                if not unreachable(exc):
                    raise
                log.debug("venue %s: lease not renewed (%s)", self.venue, exc)

    async def _relays(self, redis: BusRedis, writer: BusWriter, fence: Fenced) -> list[Relay]:
        published = metrics.BUS_PUBLISHED.labels(self.venue)

        async def publish(stream: str, raw: bytes) -> None:
            await writer.publish(stream, raw, fence=fence)
            published.inc()

        async def publish_once(stream: str, raw: bytes, epoch: int, position: int) -> None:
            await writer.publish_executions(stream, raw, epoch, position, fence=fence)
            published.inc()

        async def publish_envelope(stream: str, envelope: bytes) -> None:
            await writer.publish_envelope(stream, envelope, fence=fence)
            published.inc()

        async def publish_instruments(stream: str, envelope: bytes) -> None:
            await writer.publish_envelope(stream, envelope, fence=fence, maxlen=KEEP)
            published.inc()

        relays: list[Relay] = []
        who = f"venue {self.venue}"
        for channel in self.options.channels:
            symbols = self._symbols(channel)
            if symbols:
                market = MarketRelay(self.venue, channel, symbols, publish, who=who)
                await resume_market(redis, market)
                relays.append(market)
        if self.options.executions:
            executions = ExecutionRelay(self.venue, publish_once, who=who)
            await resume_executions(redis, executions)
            relays.append(executions)
        if self.options.funding_every_s > 0:
            funding = FundingRelay(
                self.venue, publish_envelope, self.options.source, self.options.funding_every_s
            )
            await resume_funding(redis, funding, who)
            relays.append(funding)
        if self.options.instruments_every_s > 0:
            instruments = InstrumentRelay(
                self.venue, publish_instruments, self.options.source, self.options.instruments_every_s
            )
            await resume_instruments(redis, instruments, who)
            relays.append(instruments)
        if self.options.account:
            relays.append(AccountRelay(self.venue, publish_envelope, self.options.source))
        return relays

    def _symbols(self, channel: Channel) -> list[str]:
        """Every instrument the venue lists (as ingest follows a venue without a symbol list); on the
        funding channel, its perpetuals; on the mark, open interest and liquidations channels, its
        derivatives; none on a channel the venue has not (Venue.channels)."""
        if channel not in self.rt.venue.channels:
            return []
        instruments = sorted(self.rt.instruments.values(), key=lambda i: i.symbol)
        return [i.symbol for i in instruments if channel_refused(i, channel) is None]


async def _unless_unreachable(call: Awaitable[Any]) -> None:
    """`call`, an error saying Redis cannot be reached now let go (a stop's last words to Redis:
    what they would undo lapses with the lease's ttl anyway)."""
    try:
        await call
    except Exception as exc:
        if not unreachable(exc):
            raise


def _carrier(runtime: VenueRuntime, relay: Relay, stall_s: float) -> Carrier:
    if isinstance(relay, MarketRelay):
        return LocalMarket(runtime, relay, stall_s)
    if isinstance(relay, ExecutionRelay):
        return LocalExecutions(runtime, relay)
    if isinstance(relay, InstrumentRelay):
        return LocalInstruments(runtime, relay)
    if isinstance(relay, AccountRelay):
        return LocalAccount(runtime, relay)
    return LocalFunding(runtime, relay)
