"""The bars service: the consumer group on the trade streams, the repairer, until stopped."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

from core.bars.aggregator import Aggregator
from core.bars.checkpoint import CheckpointStore
from core.bars.config import BarsConfig
from core.bars.fleet import BarStreamFleet
from core.bars.repair import Repairer, VenueCandleReader
from core.foundations.bus.publisher import Retention
from core.foundations.bus.redis import REDIS_UNREACHABLE, checked_ping, open_redis
from core.foundations.env import redact_url
from core.foundations.lease import holder_id
from core.foundations.retry import until_reachable
from core.foundations.rpc.discovery import Venues, VenueWatch
from core.foundations.rpc.server import Service
from core.foundations.service import ServiceContext

__all__ = ["Bars", "BarsConfig"]

log = logging.getLogger(__name__)


class Bars:
    """The bars service (core.foundations.service)."""

    name = "bars"

    def __init__(self, config: BarsConfig) -> None:
        self.config = config

    def grpc_services(self) -> Sequence[Service]:
        return ()

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
