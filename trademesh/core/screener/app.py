"""The Screener service: the screens of a directory evaluated at each multiple of their cadence
over the bars and tickers on the bus; each result to the bus stream screens.<name> and to
StreamResults' subscribers; the screens and latest results over gRPC."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Sequence

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.core.platform.bus.codec import encode_screen_result
from trademesh.core.platform.bus.names import screens_stream
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.redis import open_redis, reach_redis
from trademesh.core.platform.rpc.server import Service
from trademesh.core.platform.service.lifecycle import ServiceContext
from trademesh.core.platform.warm_history import HeldHistory
from trademesh.core.screener import metrics
from trademesh.core.screener.api import screener_service
from trademesh.core.screener.config import ScreenerAppConfig
from trademesh.core.screener.convert import result_to_pb
from trademesh.core.screener.engine.definition import Screen
from trademesh.core.screener.engine.evaluate import ScreenResult, evaluate
from trademesh.core.screener.feed import ScreenFeed
from trademesh.core.screener.history_seed import seed_from_history
from trademesh.core.screener.prices import TickerSeed, fresh_ages
from trademesh.core.screener.screens import load_screens
from trademesh.core.screener.state import MarketState
from trademesh.core.screener.watchers import Results
from trademesh.screener.v1 import screener_pb2 as sc

__all__ = ["ScreenerApp", "ScreenerAppConfig"]

log = logging.getLogger(__name__)
_NS_PER_MS = 1_000_000
# Retried while Redis is away at start (a cluster failing over is not among them).
_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class ScreenerApp:
    """The Screener service (trademesh.core.platform.service.lifecycle)."""

    name = "screener"

    def __init__(self, config: ScreenerAppConfig) -> None:
        self.config = config
        self.screens = load_screens(config.screens_dir)
        self.results = Results(self.screens, config.queue_size)

    def grpc_services(self) -> Sequence[Service]:
        return (screener_service(self.results),)

    async def run(self, ctx: ServiceContext) -> None:
        config = self.config
        metrics.SCREENS.set(len(self.screens))
        for name in self.screens:  # every series at 0 from the first scrape
            metrics.EVALUATIONS.labels(name)
            metrics.EVALUATION_SECONDS.labels(name)
        redis = open_redis(config.redis_url)
        ctx.on_stopping(self.results.close)
        try:
            if not await reach_redis(redis, config.redis_url, "screener", ctx.stop, _REDIS_ERRORS):
                return
            oldest_ms = max(screen.max_age_s for screen in self.screens.values()) * 1000
            feed = ScreenFeed(redis, MarketState(self.screens.values()), ticker_age_ms=oldest_ms,
                              batch=config.batch)  # fmt: skip
            history = HeldHistory(config.gateway, "screener")
            try:
                await seed_from_history(history, feed.state, config.clock())
            finally:
                await history.close()
            await feed.mark_warm_up()
            metrics.STREAMS.set(len(feed.streams))
            seed = None
            if (config.gateway or config.venues) and fresh_ages(self.screens.values()):
                seed = TickerSeed.of(self.screens.values(), config.gateway, config.venues)
            async with _following(seed, ctx.stop):
                await self._follow(ctx, feed, Publisher(redis, config.retention), seed)
        finally:
            await redis.aclose()

    async def _follow(
        self, ctx: ServiceContext, feed: ScreenFeed, publisher: Publisher, seed: TickerSeed | None = None
    ) -> None:
        """Read, and evaluate each screen when due, until stopped. Ready (and evaluating) once
        the streams are read up to where they were at the start: a screen evaluated on half its
        history would rank by it."""
        clock = self.config.clock
        due = {name: screen.next_due_ns(clock()) for name, screen in self.screens.items()}
        while not ctx.stop.is_set():
            wait_ms = (min(due.values()) - clock()) // _NS_PER_MS
            await feed.read(block_ms=min(max(wait_ms, 1), 1000))
            if feed.warming:
                continue
            if not ctx.is_ready:
                await ctx.ready(screens=",".join(self.screens))
                if seed is not None:  # the start: every price at once where the bus has none yet
                    await seed.seed(feed.state, clock())
            now = clock()
            if seed is not None and any(at <= now for at in due.values()):
                await seed.seed(feed.state, now)  # only venues without a fresh ticker, each seldom
            made = []
            for name, at in due.items():
                if at <= now:
                    # At the latest multiple passed: a late evaluation (the warm-up, a busy loop)
                    # is one, as of now, never a run of them to catch up.
                    screen = self.screens[name]
                    made.append(self._evaluate(screen, feed.state, now - now % screen.cadence_ns, publisher))
                    due[name] = screen.next_due_ns(now)
            await publisher.flush()  # nothing queued: no round trip
            for message in made:  # streamed once on the bus: a subscriber never hears one first
                self.results.publish(message)

    def _evaluate(
        self, screen: Screen, state: MarketState, at_ns: int, publisher: Publisher
    ) -> sc.ScreenResult:
        started = time.perf_counter()
        result = evaluate(screen, state.inputs(screen), at_ns)
        metrics.EVALUATION_SECONDS.labels(screen.name).inc(time.perf_counter() - started)
        metrics.EVALUATIONS.labels(screen.name).inc()
        _count(result)
        message = result_to_pb(result)
        publisher.add(screens_stream(screen.name), encode_screen_result(self.config.source, message))
        return message


def _count(result: ScreenResult) -> None:
    outcomes = {
        "ranked": len(result.ranked),
        "left_out": result.left_out,
        "filtered_out": result.filtered_out,
    }
    for outcome, count in outcomes.items():
        metrics.INSTRUMENTS.labels(result.screen, outcome).inc(count)


@contextlib.asynccontextmanager
async def _following(seed: TickerSeed | None, stop: asyncio.Event) -> AsyncIterator[None]:
    """The seed's view of the gateway's registry followed while the screens are (none: nothing)."""
    if seed is None:
        yield
        return
    await seed.look()
    task = asyncio.create_task(seed.follow(stop), name="screener venues registry")
    try:
        yield
    finally:
        await cancel_and_wait(task)
        await seed.close()
