"""The detector service: the engine inside its shell (core.service's lifecycle).

At start: load the strategy files into draft patches (one per venue and symbol), warm each
from the venue's candles, activate those that are warm (the others warm from live data),
then follow every venue's MarketData stream into the engine and publish what the patches
emit to the bus (streams `signals` and `position_requests`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import grpc
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.bus.names import POSITION_REQUESTS, SIGNALS
from core.bus.publisher import Publisher, Retention
from core.bus.redis import open_redis
from core.detector.config import DetectorConfig
from core.detector.engine.catalog import Catalog
from core.detector.engine.engine import Engine, EngineConfig
from core.detector.engine.outputs import Evaluation
from core.detector.feed import VenueFeed
from core.detector.history import bar_history
from core.detector.runner import Runner
from core.detector.strategy_file import build_patches, load_strategy
from core.detector.wire import encode_positions, encode_signals
from core.env import redact_url
from core.errors import FailedPrecondition, InvalidArgument, Unavailable
from core.mesh.config import VenueLink
from core.retry import until_reachable
from core.rpc.client import Metadata, auth_metadata
from core.rpc.server import Service
from core.service import ServiceContext

__all__ = ["Detector"]

log = logging.getLogger(__name__)

# The trading streams are small (a signal per evaluation at most): a day at 50/s fits.
_RETENTION = Retention(entries_per_s=50, outage_minutes=24 * 60)


def _channel_factory(address: str) -> Callable[[], grpc.aio.Channel]:
    return lambda: grpc.aio.insecure_channel(address)


class Detector:
    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.catalog = Catalog.builtin()
        engine_config = EngineConfig(
            probe_rate_hz=config.probe_rate_hz,
            module_budget_ns=config.module_budget_us * 1000,
            tick_hz=config.tick_hz,
        )
        self.engine = Engine(self.catalog, time.perf_counter_ns, engine_config)
        self.runner = Runner(self.engine, self._emit, tick_hz=config.tick_hz)
        self._publisher: Publisher | None = None
        self._load_strategies()

    @property
    def name(self) -> str:
        return self.config.instance

    def grpc_services(self) -> Sequence[Service]:
        return ()

    async def run(self, ctx: ServiceContext) -> None:
        redis = open_redis(self.config.redis_url)
        try:
            reached = await until_reachable(
                redis.ping,
                what=f"detector: Redis at {redact_url(self.config.redis_url)}",
                retry_on=(RedisConnectionError, RedisTimeoutError, OSError),
                stop=ctx.stop,
            )
            if reached is None:
                return
            self._publisher = Publisher(redis, _RETENTION)
            metadata = auth_metadata()
            await self._start_patches(metadata)
            feeds = [
                asyncio.create_task(f.run(ctx.stop), name=f"feed {f.link.name}")
                for f in self._feeds(metadata)
            ]
            await ctx.ready()
            log.info("detector: %d patches, %d warming", len(self.engine.patches), len(self.runner.warming))
            try:
                await self.runner.run(ctx.stop)
            finally:
                for task in feeds:
                    task.cancel()
                await asyncio.gather(*feeds, return_exceptions=True)
        finally:
            await redis.aclose()

    # ---- start

    def _load_strategies(self) -> None:
        """Every strategy file into draft patches; a bad file or an unknown venue stops the start."""
        now = time.time_ns()
        for path in self.config.strategies:
            strategy = load_strategy(path, self.catalog)
            for venue in strategy.venues:
                if self.config.mesh.venue(venue) is None:
                    raise InvalidArgument.field(
                        "venue",
                        f"strategy {path} trades venue {venue!r}: give it with --venue {venue}=HOST:PORT",
                    )
            build_patches(self.engine, strategy, now)

    async def _start_patches(self, metadata: Metadata) -> None:
        for patch in list(self.engine.patches.values()):
            link = self._link(patch.venue)
            history = await bar_history(
                self.engine, patch.id, _channel_factory(link.address), metadata, time.time_ns()
            )
            self.engine.warm(patch.id, history)
            try:
                patch.activate(time.time_ns())
            except FailedPrecondition as exc:
                log.info("detector: %s warms from live data (%s)", patch.id, exc)
                self.runner.warming.add(patch.id)

    def _feeds(self, metadata: Metadata) -> list[VenueFeed]:
        symbols: dict[str, set[str]] = {}
        for patch in self.engine.patches.values():
            symbols.setdefault(patch.venue, set()).add(patch.symbol)
        return [
            VenueFeed(
                self._link(venue),
                sorted(names),
                _channel_factory(self._link(venue).address),
                metadata,
                self.runner.deliver,
            )
            for venue, names in symbols.items()
        ]

    def _link(self, venue: str) -> VenueLink:
        link = self.config.mesh.venue(venue)
        if link is None:
            raise Unavailable(f"venue {venue!r} is not configured")
        return link

    # ---- out

    async def _emit(self, evaluation: Evaluation) -> None:
        publisher = self._publisher
        if publisher is None:
            return
        now = time.time_ns()
        if evaluation.signals:
            publisher.add(SIGNALS, encode_signals(self.config.source, evaluation.signals, now))
        if evaluation.positions:
            publisher.add(POSITION_REQUESTS, encode_positions(self.config.source, evaluation.positions, now))
        await publisher.flush()
