"""The ingest process: the venues of the mesh (given, and found in the gateway's registry), each
followed by a MarketFollower per channel and an ExecutionFollower (trademesh.core.ingest.fleet), into one
BusWriter, until stopped."""

from __future__ import annotations

import asyncio
import logging

from trademesh.core.ingest.config import IngestConfig
from trademesh.core.ingest.fleet import VenueFleet
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.bus.redis import BusRedis, open_redis
from trademesh.core.platform.bus.writer import BusWriter
from trademesh.core.platform.replicas.lease import holder_id
from trademesh.core.platform.rpc.client import auth_metadata
from trademesh.core.platform.rpc.discovery import VenueWatch
from trademesh.core.platform.service.lifecycle import ServiceContext, WorkerApp

__all__ = ["Ingest", "IngestConfig"]

log = logging.getLogger(__name__)


class Ingest(WorkerApp[IngestConfig]):
    """The ingest service: the mesh's venues followed into the bus, until stopped."""

    name = "ingest"

    def __init__(self, config: IngestConfig) -> None:
        super().__init__(config)
        self.watch = VenueWatch(config.mesh.venues, config.gateway, config.discover_every_s)

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
