"""The Overwatch service: every bar stream of one timeframe through the engine; each change to
the bus stream regimes.<timeframe> and to StreamRegimes' subscribers; the board over gRPC.

Of the processes of one timeframe only the holder of its leader lease runs (the others stand by:
trademesh.core.platform.replicas.leader); its changes go to the bus fenced by the lease, and once warm it
publishes what the bus is owed (trademesh.core.overwatch.resume)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from trademesh.core.overwatch import metrics
from trademesh.core.overwatch.api import overview_feed, overwatch_service
from trademesh.core.overwatch.classify import classify
from trademesh.core.overwatch.config import OverwatchAppConfig
from trademesh.core.overwatch.convert import board_to_pb, change_to_pb
from trademesh.core.overwatch.engine import Overwatch, OverwatchConfig, RegimeChange
from trademesh.core.overwatch.feed import BarFeed
from trademesh.core.overwatch.history_seed import Seeded, seed_from_history
from trademesh.core.overwatch.overview import OverviewSource
from trademesh.core.overwatch.resume import last_published, owed_changes
from trademesh.core.overwatch.watchers import RegimeWatchers
from trademesh.core.platform.bus.codec import encode_regimes
from trademesh.core.platform.bus.names import regimes_stream
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.redis import BusRedis, open_redis, reach_redis
from trademesh.core.platform.replicas.leader import Leadership
from trademesh.core.platform.rpc.server import Service
from trademesh.core.platform.service.lifecycle import ServiceContext
from trademesh.core.platform.warm_history import HeldHistory
from trademesh.core.tools.resolver import MeshResolver

__all__ = ["OverwatchApp", "OverwatchAppConfig"]

log = logging.getLogger(__name__)


class OverwatchApp:
    """The Overwatch service (trademesh.core.platform.service.lifecycle)."""

    name = "overwatch"

    def __init__(self, config: OverwatchAppConfig) -> None:
        self.config = config
        self.engine = Overwatch(OverwatchConfig(config.classifier, config.max_markets))
        self.watchers = RegimeWatchers(config.queue_size)
        self.stream = regimes_stream(config.timeframe)
        self.resolver = MeshResolver(config.gateway)
        board = lambda: board_to_pb(self.engine.board(time.time_ns()))  # noqa: E731
        self.overview = OverviewSource(self.resolver, board)
        self.feed = overview_feed(self.engine, self.overview, config.overview_every_s)
        self._leadership: Leadership | None = None

    def grpc_services(self) -> Sequence[Service]:
        return (overwatch_service(self.engine, self.watchers, self.feed),)

    async def run(self, ctx: ServiceContext) -> None:
        config = self.config
        # The live bars' series at 0 from the first scrape: OverwatchNotClassifying
        # (ops/prometheus/rules/alerts.yml) reads its increase, and a series never made has none.
        metrics.BARS.labels(config.timeframe.label, "false")
        redis = open_redis(config.redis_url)
        ctx.on_stopping(self.watchers.close)
        registry = asyncio.create_task(self.resolver.follow(ctx.stop), name="overwatch mesh")
        try:
            if not await reach_redis(redis, config.redis_url, "overwatch", ctx.stop):
                return
            # One leader per timeframe; its lease shares the slot of the stream it writes fenced.
            label = config.timeframe.label
            leadership = Leadership(redis, "overwatch", label, config.leader_ttl_ms, tag=f"{{{self.stream}}}")
            if await leadership.take(ctx):
                await self._lead(ctx, redis, leadership)
        finally:
            registry.cancel()
            await asyncio.gather(registry, return_exceptions=True)
            await self.feed.close()
            await self.overview.close()
            await self.resolver.close()
            await redis.aclose()

    async def _lead(self, ctx: ServiceContext, redis: BusRedis, leadership: Leadership) -> None:
        """Follow the bars while the lease is ours; a lease lost ends the process (LeadershipLost:
        restarted, it stands by)."""
        self._leadership = leadership
        publisher = Publisher(redis, self.config.retention)
        async with leadership.kept(ctx.stop) as kept:
            feed = BarFeed(redis, self.config.timeframe, self.config.batch)
            follow = asyncio.create_task(self._follow(ctx, feed, publisher), name="overwatch follow")
            try:
                await asyncio.wait({follow, kept}, return_when=asyncio.FIRST_COMPLETED)
                if kept.done() and not ctx.stop.is_set():
                    kept.result()
                await follow
            finally:
                follow.cancel()
                await asyncio.gather(follow, return_exceptions=True)

    async def _follow(self, ctx: ServiceContext, feed: BarFeed, publisher: Publisher) -> None:
        """Read, classify, publish, until stopped; ready once the streams found at start are read
        up to where they were (the board is then the markets' as of now, not of their history),
        and what the bus is owed published."""
        seeded = await self._seed()
        next_look = 0.0
        while not ctx.stop.is_set():
            if time.monotonic() >= next_look:
                for stream in await feed.discover():
                    log.info("overwatch: following %s from its first entry", stream)
                metrics.STREAMS.set(len(feed.streams))
                next_look = time.monotonic() + self.config.discover_s
            if not ctx.is_ready and not feed.warming:
                await self._publish_owed(publisher)
                await ctx.ready(timeframe=self.config.timeframe.label, stream=self.stream)
            if not feed.streams:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ctx.stop.wait(), min(self.config.discover_s, 1.0))
                continue
            out = classify(self.engine, self.config.timeframe, seeded.after(await feed.read()))
            await self._publish(publisher, out.live)
            self.watchers.publish([*out.warm, *out.live])
            metrics.MARKETS.set(len(self.engine))

    async def _seed(self) -> Seeded:
        """The markets warmed from the history the gateway serves (trademesh.core.overwatch.history_seed)."""
        history = HeldHistory(self.config.gateway, "overwatch")
        try:
            config = self.config
            seeded = await seed_from_history(
                history, self.engine, config.timeframe, config.classifier, time.time_ns()
            )
        finally:
            await history.close()
        self.watchers.publish(seeded.classified.warm)
        metrics.MARKETS.set(len(self.engine))
        return seeded

    async def _publish_owed(self, publisher: Publisher) -> None:
        board = self.engine.board(time.time_ns()).entries
        published = await last_published(
            publisher.redis, self.stream, {(e.key.venue, e.key.symbol) for e in board}
        )
        owed = owed_changes(board, published)
        if owed:
            log.info("overwatch: %d regime changes not on %s yet, published", len(owed), self.stream)
            await self._publish(publisher, owed)
            self.watchers.publish(owed)

    async def _publish(self, publisher: Publisher, changes: list[RegimeChange]) -> None:
        if not changes:
            return
        body = encode_regimes(self.config.source, [change_to_pb(c) for c in changes])
        assert self._leadership is not None  # only a leader publishes
        publisher.add(self.stream, body, fence=self._leadership.fence())
        await publisher.flush()
        if publisher.fenced:  # another process leads this timeframe now: it publishes, not us
            self._leadership.deposed(f"a write to {self.stream} was fenced")
