"""The bars process: the consumer group on the trade streams, the repairer, until stopped."""

from __future__ import annotations

import asyncio
import logging
import socket
from dataclasses import dataclass, field

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.backoff import Backoff
from core.bars.aggregator import Aggregator
from core.bars.checkpoint import CheckpointStore
from core.bars.repair import Repairer, VenueHistory
from core.bars.watermark import WatermarkRules
from core.bus.consumer import ConsumerOptions, GroupConsumer
from core.bus.publisher import Retention
from core.env import redact_url
from core.mesh.config import MeshConfig
from core.service import Ready

__all__ = ["BarsOptions", "run_bars"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BarsOptions:
    redis_url: str
    mesh: MeshConfig = field(default_factory=MeshConfig)
    rules: WatermarkRules = field(default_factory=WatermarkRules)
    group: str = "bars"
    # One consumer per group, always the same name: after a restart it reads its own pending
    # entries first, so entries are applied in stream order (see docs/bars.md).
    consumer: str = "bars"
    pattern: str = "md.*.trades"
    batch: int = 500
    repair_timeout_s: float = 10.0
    source: str = field(default_factory=lambda: f"bars/{socket.gethostname()}")


async def run_bars(options: BarsOptions, stop: asyncio.Event, ready: Ready) -> None:
    redis = aioredis.Redis.from_url(options.redis_url)
    history = VenueHistory(
        {venue.name: venue.address for venue in options.mesh.venues}, options.repair_timeout_s
    )
    retention = Retention(options.mesh.rate_per_s, options.mesh.outage_minutes)
    aggregator = Aggregator(CheckpointStore(redis, options.group, options.source, retention), options.rules)
    consumer = GroupConsumer(
        redis,
        ConsumerOptions(options.group, options.consumer, patterns=(options.pattern,), batch=options.batch),
        aggregator.handle,
    )
    try:
        if not await _connected(redis, options.redis_url, stop):
            return
        await aggregator.load_all(options.pattern)
        await ready()
        async with asyncio.TaskGroup() as tasks:
            tasks.create_task(consumer.run(stop), name="bars-consumer")
            tasks.create_task(Repairer(aggregator, history).run(stop), name="bars-repairer")
    finally:
        await history.close()
        await redis.aclose()


async def _connected(redis: aioredis.Redis, url: str, stop: asyncio.Event) -> bool:
    """Waits for Redis to answer; False when stopped first."""
    backoff = Backoff(0.2, 5.0)
    while not stop.is_set():
        try:
            await redis.ping()
            return True
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            delay = backoff.next()
            log.warning("bars: Redis at %s unreachable (%s); retrying in %.1f s", redact_url(url), exc, delay)
            await asyncio.sleep(delay)
    return False
