"""The bars service: the consumer group on the trade streams, the repairer, until stopped."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from core.bars.aggregator import Aggregator
from core.bars.checkpoint import CheckpointStore
from core.bars.fleet import BarStreamFleet
from core.bars.repair import Repairer, VenueCandleReader
from core.bars.shares import stream_consumer
from core.bars.watermark import WatermarkRules
from core.foundations.bus.consumer import ConsumerOptions
from core.foundations.bus.names import market_pattern
from core.foundations.bus.publisher import Retention
from core.foundations.bus.redis import REDIS_UNREACHABLE, checked_ping, open_redis
from core.foundations.env import redact_url
from core.foundations.errors import InvalidArgument
from core.foundations.lease import holder_id
from core.foundations.mesh_config import MeshConfig
from core.foundations.model import Channel
from core.foundations.retry import until_reachable
from core.foundations.rpc.discovery import Venues, VenueWatch
from core.foundations.rpc.server import Service
from core.foundations.service import ServiceContext

__all__ = ["Bars", "BarsConfig"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BarsConfig:
    redis_url: str
    mesh: MeshConfig = field(default_factory=MeshConfig)
    rules: WatermarkRules = field(default_factory=WatermarkRules)
    group: str = "bars"
    # Each stream is read under `<consumer>:<stream>`, whichever replica holds it (its lease):
    # the next holder, or this one restarted, reads the entries left pending first, so entries
    # are applied in stream order (see docs/bars.md, "Replicas").
    consumer: str = "bars"
    # A stream's lease: another replica takes a stream over within this after its holder died.
    lease_ttl_ms: int = 5000
    pattern: str = market_pattern(Channel.TRADES)
    batch: int = 500
    # After a read short of a batch, wait this long before the next (ConsumerOptions.linger_ms):
    # fewer, larger commits, each rewriting the changed symbols' checkpoint. Bars close a second
    # (--lateness-ms) after their end at the earliest, so this delays no bar that matters.
    linger_ms: float = 50.0
    repair_timeout_s: float = 10.0
    # The gateway's registry (gRPC host:port): the venues registered there are repaired from too.
    gateway: str | None = None
    source: str = field(default_factory=lambda: f"bars/{socket.gethostname()}")

    def __post_init__(self) -> None:
        if not self.repair_timeout_s > 0:
            raise InvalidArgument.field(
                "repair-timeout-ms", f"must be positive, got {self.repair_timeout_s} s"
            )
        if not self.linger_ms >= 0:  # NaN too
            raise InvalidArgument.field("linger-ms", f"must be 0 or more, got {self.linger_ms}")
        if self.batch < 1:
            raise InvalidArgument.field("batch", f"must be at least 1, got {self.batch}")
        if self.lease_ttl_ms < 1:
            raise InvalidArgument.field("lease-ttl-ms", f"must be positive, got {self.lease_ttl_ms}")

    def consumer_options(self, stream: str) -> ConsumerOptions:
        """The consumer group on one trade stream, under the stream's own consumer name. The
        aggregator acknowledges every entry it is handed in the group write that commits its
        effect (CheckpointStore.commit), so the runner does not acknowledge them a second time
        (`handler_acks`)."""
        return ConsumerOptions(
            self.group,
            stream_consumer(self.consumer, stream),
            streams=(stream,),
            # Entries left idle this long are taken again, in order: those a replica read after it
            # lost the stream (core.bars.aggregator waits for them), and this one's own refused ones.
            claim_idle_ms=2 * self.lease_ttl_ms,
            batch=self.batch,
            linger_ms=self.linger_ms,
            handler_acks=True,
        )


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
