"""The bars service: the consumer group on the trade streams, the repairer, until stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from trademesh.core.bars.aggregator import Aggregator
from trademesh.core.bars.checkpoint import CheckpointStore
from trademesh.core.bars.config import BarsConfig
from trademesh.core.bars.fleet import BarStreamFleet
from trademesh.core.bars.repair import Repairer, VenueCandleReader
from trademesh.core.platform.aio.retry import until_reachable
from trademesh.core.platform.bus.publisher import Retention
from trademesh.core.platform.bus.redis import REDIS_UNREACHABLE, checked_ping, open_redis
from trademesh.core.platform.config.env import redact_url
from trademesh.core.platform.replicas.lease import holder_id
from trademesh.core.platform.rpc.discovery import Venues, VenueWatch
from trademesh.core.platform.service.lifecycle import ServiceContext, WorkerApp

__all__ = ["Bars", "BarsConfig"]

log = logging.getLogger(__name__)


class Bars(WorkerApp[BarsConfig]):
    """The bars service (trademesh.core.platform.service.lifecycle)."""

    name = "bars"

    async def run(self, ctx: ServiceContext) -> None:
        config = self.config
        redis = open_redis(config.redis_url)
        venues = VenueWatch(config.mesh.venues, config.gateway)
        history = VenueCandleReader(_address_of(venues), config.repair_timeout_s)
        retention = Retention(config.mesh.rate_per_s, config.mesh.outage_minutes)
        aggregator = Aggregator(CheckpointStore(redis, config.group, config.source, retention), config.rules)
        holder = holder_id("bars")
        options = config.consumer_options
        fleet = BarStreamFleet(
            redis, aggregator, options, config.group, config.pattern, holder, config.lease_ttl_ms
        )
        try:
            reached = await until_reachable(
                lambda: checked_ping(redis, config.redis_url),
                what=f"bars: Redis at {redact_url(config.redis_url)}",
                retry_on=REDIS_UNREACHABLE,
                stop=ctx.stop,
            )
            if reached is None:
                return
            await ctx.ready()
            async with asyncio.TaskGroup() as tasks:
                tasks.create_task(fleet.run(ctx.stop), name="bars-streams")
                tasks.create_task(Repairer(aggregator, history).run(ctx.stop), name="bars-repairer")
                tasks.create_task(venues.follow(ctx.stop, _ignore), name="bars-venues")
        finally:
            await venues.close()
            await history.close()
            await redis.aclose()


def _address_of(venues: VenueWatch) -> Callable[[str], str | None]:
    def address_of(name: str) -> str | None:
        link = venues.venue(name)
        return None if link is None else link.address

    return address_of


async def _ignore(venues: Venues) -> None:
    """Repairs look venues up when they need one: nothing to do when they change."""
    del venues
