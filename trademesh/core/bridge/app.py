"""The bridge service: join the bus, serve LiveData, follow the bus until stopped."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trademesh.core.bridge.bridge import Bridge
from trademesh.core.bridge.config import BridgeConfig
from trademesh.core.bridge.join import join_live, leave, rebuild_books
from trademesh.core.bridge.metrics import QUEUE_DEPTH_MAX, SUBSCRIBERS
from trademesh.core.bridge.service import live_data_service
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.retry import sleep_unless, until_reachable
from trademesh.core.platform.bus.consumer import ConsumerOptions, GroupConsumer
from trademesh.core.platform.bus.names import BAR_STREAMS, MARKET_STREAMS
from trademesh.core.platform.bus.redis import BusRedis, checked_ping, open_redis
from trademesh.core.platform.config.env import redact_url
from trademesh.core.platform.rpc.server import Service
from trademesh.core.platform.service.lifecycle import ServiceContext

__all__ = ["PATTERNS", "BridgeConfig", "BridgeService"]  # BridgeConfig: trademesh.core.bridge.config's

log = logging.getLogger(__name__)

PATTERNS = (MARKET_STREAMS, BAR_STREAMS)
_LEAVE_TIMEOUT_S = 5.0
# A consumer run that lasted this long was healthy: the next failure starts the backoff over.
_HEALTHY_RUN_S = 10.0


class BridgeService:
    """The bridge (trademesh.core.platform.service.lifecycle):
    LiveData served from what it follows on the bus."""

    name = "bridge"

    def __init__(self, config: BridgeConfig) -> None:
        self.config = config
        self.bridge = Bridge(config.queue_batches)
        SUBSCRIBERS.set_function(lambda: len(self.bridge.fanout.subscribers))
        QUEUE_DEPTH_MAX.set_function(self.bridge.fanout.max_depth)

    def grpc_services(self) -> Sequence[Service]:
        return [live_data_service(self.bridge)]

    async def run(self, ctx: ServiceContext) -> None:
        await _follow_bus(self.bridge, self.config, ctx)


def _consumer(redis: BusRedis, bridge: Bridge, options: BridgeConfig) -> GroupConsumer:
    consumer_options = ConsumerOptions(
        group=options.group,
        consumer=options.group,  # one consumer per group: a fixed name finds its own stale entries
        patterns=PATTERNS,
        # Only for streams found after the start (join_live places the group at the head of the
        # others): a new stream is read from its first entry, its first snapshots included.
        start_id="0",
        discover_s=options.discover_s,
        linger_ms=options.linger_ms,
    )
    return GroupConsumer(redis, consumer_options, bridge.pump.handle)


async def _follow_bus(bridge: Bridge, options: BridgeConfig, ctx: ServiceContext) -> None:
    redis = open_redis(options.redis_url)
    consumer = _consumer(redis, bridge, options)
    try:
        if not await _join(bridge, consumer, options, ctx.stop):
            return
        bridge.ready = True
        await ctx.ready()
        await _consume(consumer, ctx.stop)
    finally:
        bridge.ready = False
        log.info("bridge: stopping; %d subscribers ended", bridge.end_all())
        await _leave(consumer)
        await redis.aclose()


async def _join(bridge: Bridge, consumer: GroupConsumer, options: BridgeConfig, stop: asyncio.Event) -> bool:
    """Join the bus live, retrying while Redis is unreachable; False when stopped first."""

    async def join() -> bool:
        await checked_ping(consumer.redis, options.redis_url)  # not Redis, or a database it has not
        heads = await join_live(consumer)
        await rebuild_books(consumer.redis, bridge.books, heads, options.lookback_entries)
        log.info("bridge: following %d streams on %s", len(heads), redact_url(options.redis_url))
        return True

    joined = await until_reachable(
        join,
        what=f"bridge: the bus at {redact_url(options.redis_url)}",
        retry_on=(RedisConnectionError, RedisTimeoutError, ResponseError),
        stop=stop,
    )
    return joined is not None


async def _consume(consumer: GroupConsumer, stop: asyncio.Event) -> None:
    backoff = Backoff(0.1, 5.0)
    while not stop.is_set():
        started = time.monotonic()
        try:
            await consumer.run(stop)
        except ResponseError as exc:
            # The consumer runner lets Redis command errors through, e.g. for a stream deleted
            # under it ("UNBLOCKED", "no such key"): read on rather than end every subscription.
            if time.monotonic() - started > _HEALTHY_RUN_S:
                backoff.reset()
            delay = backoff.next()
            log.warning("bridge: bus read failed (%s); reading on in %.1f s", exc, delay)
            await sleep_unless(stop, delay)


async def _leave(consumer: GroupConsumer) -> None:
    try:
        await asyncio.wait_for(leave(consumer), _LEAVE_TIMEOUT_S)
    except (RedisConnectionError, RedisTimeoutError, TimeoutError) as exc:
        log.warning("bridge: could not remove group %s: %s", consumer.options.group, exc)
