"""The ingest process: the venues of the mesh (given, and found in the gateway's registry), each
followed by a MarketFollower per channel and an ExecutionFollower (core.ingest.fleet), into one
BusWriter, until stopped."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field

from core.foundations.bus.publisher import Publisher, Retention
from core.foundations.bus.redis import BusRedis, open_redis
from core.foundations.bus.writer import BusWriter
from core.foundations.errors import InvalidArgument
from core.foundations.lease import holder_id
from core.foundations.mesh_config import MeshConfig
from core.foundations.rpc.client import auth_metadata
from core.foundations.rpc.discovery import VenueWatch
from core.foundations.rpc.server import Service
from core.foundations.service import ServiceContext
from core.ingest.fleet import VenueFleet

__all__ = ["Ingest", "IngestConfig"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestConfig:
    mesh: MeshConfig
    redis_url: str
    # Written into every bus entry: who published it.
    source: str = field(default_factory=lambda: f"ingest/{socket.gethostname()}")
    # Bus entries held while Redis is slow or away before venues are paused.
    max_queued: int = 20_000
    # Follow every venue's executions into exec.{<venue>} too.
    executions: bool = True
    # Read every venue's funding payments into funding.{<venue>} this often (0: not read).
    funding_every_s: float = 60.0
    # Read every venue's instrument list (ListInstruments) this often, its changes published on
    # md.{<venue>}.instruments (0: not read).
    instruments_every_s: float = 60.0
    # Follow every venue's account (StreamAccount: balances and positions) into account.{<venue>}.
    account: bool = True
    # The gateway's registry (gRPC host:port): every venue registered there is followed too.
    gateway: str | None = None
    # How often the registry is read (a venue that registers is followed within this, plus its start).
    discover_every_s: float = 1.0
    # A venue's lease (core.ingest.shares): a replica killed with -9 has its venues taken over
    # within this; renewed every third of it.
    lease_ttl_ms: int = 5000

    def __post_init__(self) -> None:
        if not self.mesh.venues and self.gateway is None:
            raise InvalidArgument.field(
                "venue",
                "no venues to follow: give --venue NAME=HOST:PORT, a mesh config, "
                "or the gateway whose registry lists them (TRADEMESH_GATEWAY)",
            )
        if self.max_queued < 1:
            raise InvalidArgument.field("max-queued", f"must be at least 1, got {self.max_queued}")
        if not 0 <= self.funding_every_s <= 86_400:
            raise InvalidArgument.field(
                "funding-every-s", f"must be between 0 and 86400, got {self.funding_every_s}"
            )
        if not 0 <= self.instruments_every_s <= 86_400:
            raise InvalidArgument.field(
                "instruments-every-s", f"must be between 0 and 86400, got {self.instruments_every_s}"
            )
        if self.lease_ttl_ms < 300:
            raise InvalidArgument.field("lease-ttl-ms", f"must be at least 300, got {self.lease_ttl_ms}")


class Ingest:
    """The ingest service: the mesh's venues followed into the bus, until stopped."""

    name = "ingest"

    def __init__(self, config: IngestConfig) -> None:
        self.config = config
        self.watch = VenueWatch(config.mesh.venues, config.gateway, config.discover_every_s)

    def grpc_services(self) -> Sequence[Service]:
        return ()

    async def run(self, ctx: ServiceContext) -> None:
        redis = open_redis(self.config.redis_url)
        try:
            await self._follow(redis, ctx)
        finally:
            await self.watch.close()
            await redis.aclose()

    async def _follow(self, redis: BusRedis, ctx: ServiceContext) -> None:
        config = self.config
        publisher = Publisher(redis, Retention(config.mesh.rate_per_s, config.mesh.outage_minutes))
        writer = BusWriter(publisher, config.source, config.max_queued)
        if not await writer.connect(ctx.stop, config.redis_url):
            return
        holder = holder_id(config.source.replace("/", "-"))
        fleet = VenueFleet(redis, writer, auth_metadata(), config.executions, holder, config.lease_ttl_ms)
        fleet.funding_every_s = config.funding_every_s
        fleet.instruments_every_s = config.instruments_every_s
        fleet.account = config.account
        writer.on_loss = fleet.mark_bus_loss
        tasks = [
            asyncio.create_task(self.watch.follow(ctx.stop, fleet.apply), name="venues"),
            asyncio.create_task(fleet.run(ctx.stop), name="leases"),
            asyncio.create_task(writer.watch_groups(lambda: fleet.streams, ctx.stop), name="groups"),
        ]
        written = asyncio.Event()  # the flush loop's stop: after the venues were given back
        flusher = asyncio.create_task(writer.run(written))
        await ctx.ready()
        log.info("ingest: replica %s", holder)
        try:
            await ctx.stop.wait()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await fleet.close()
            written.set()
            await flusher
