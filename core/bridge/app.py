"""Run the bridge as a process: join the bus, serve LiveData, follow the bus until stopped."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from dataclasses import dataclass

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.backoff import Backoff
from core.bridge.bridge import Bridge
from core.bridge.join import join_live, leave, rebuild_books
from core.bridge.metrics import QUEUE_DEPTH_MAX, SUBSCRIBERS
from core.bridge.service import live_data_service
from core.bus.consumer import ConsumerOptions, GroupConsumer
from core.env import redact_url
from core.rpc.server import ServerOptions
from core.service import Ready, run_service

__all__ = ["PATTERNS", "BridgeOptions", "serve_bridge"]

log = logging.getLogger(__name__)

PATTERNS = ("md.*", "bars.*")
# Redis calls: XREADGROUP blocks for ConsumerOptions.block_ms (0.5 s), well within this.
_REDIS_TIMEOUT_S = 10.0
_LEAVE_TIMEOUT_S = 5.0
# A consumer run that lasted this long was healthy: the next failure starts the backoff over.
_HEALTHY_RUN_S = 10.0


@dataclass(frozen=True)
class BridgeOptions:
    redis_url: str
    # The bridge's consumer group. Every replica needs its own: a group shares its entries out
    # among its consumers, and each bridge must see every event.
    group: str = "bridge"
    # Per subscriber: messages queued before its overflow policy applies.
    queue_batches: int = 256
    # How often to look for new streams (a venue that starts publishing).
    discover_s: float = 2.0
    # At start, how far back (in entries per book stream) to look for the books' latest snapshots.
    lookback_entries: int = 100_000


async def serve_bridge(server: ServerOptions, options: BridgeOptions) -> None:
    bridge = Bridge(options.queue_batches)
    SUBSCRIBERS.set_function(lambda: len(bridge.fanout.subscribers))
    QUEUE_DEPTH_MAX.set_function(bridge.fanout.max_depth)
    work = functools.partial(_follow_bus, bridge, options)
    await run_service("bridge", server, work, [live_data_service(bridge)])


def _consumer(redis: aioredis.Redis, bridge: Bridge, options: BridgeOptions) -> GroupConsumer:
    consumer_options = ConsumerOptions(
        group=options.group,
        consumer=options.group,  # one consumer per group: a fixed name finds its own stale entries
        patterns=PATTERNS,
        # Only for streams found after the start (join_live places the group at the head of the
        # others): a new stream is read from its first entry, its first snapshots included.
        start_id="0",
        discover_s=options.discover_s,
    )
    return GroupConsumer(redis, consumer_options, bridge.pump.handle)


async def _follow_bus(bridge: Bridge, options: BridgeOptions, stop: asyncio.Event, ready: Ready) -> None:
    redis = aioredis.Redis.from_url(
        options.redis_url, socket_timeout=_REDIS_TIMEOUT_S, socket_connect_timeout=_REDIS_TIMEOUT_S
    )
    consumer = _consumer(redis, bridge, options)
    try:
        if not await _join(bridge, consumer, options, stop):
            return
        bridge.ready = True
        await ready()
        await _consume(consumer, stop)
    finally:
        bridge.ready = False
        log.info("bridge: stopping; %d subscribers ended", bridge.end_all())
        await _leave(consumer)
        await redis.aclose()


async def _join(bridge: Bridge, consumer: GroupConsumer, options: BridgeOptions, stop: asyncio.Event) -> bool:
    """Join the bus live, retrying while Redis is unreachable; False when stopped first."""
    backoff = Backoff(0.2, 5.0)
    while not stop.is_set():
        try:
            heads = await join_live(consumer)
            await rebuild_books(consumer.redis, bridge.books, heads, options.lookback_entries)
            log.info("bridge: following %d streams on %s", len(heads), redact_url(options.redis_url))
            return True
        except (RedisConnectionError, RedisTimeoutError, ResponseError) as exc:
            delay = backoff.next()
            log.warning("bridge: cannot join the bus (%s); retrying in %.1f s", exc, delay)
            await _sleep_unless(stop, delay)
    return False


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
            await _sleep_unless(stop, delay)


async def _sleep_unless(stop: asyncio.Event, delay_s: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay_s)


async def _leave(consumer: GroupConsumer) -> None:
    try:
        await asyncio.wait_for(leave(consumer), _LEAVE_TIMEOUT_S)
    except (RedisConnectionError, RedisTimeoutError, TimeoutError) as exc:
        log.warning("bridge: could not remove group %s: %s", consumer.options.group, exc)
