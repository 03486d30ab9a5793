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

from core.foundations.bus.codec import encode_screen_result
from core.foundations.bus.names import screens_stream
from core.foundations.bus.publisher import Publisher
from core.foundations.bus.redis import checked_ping, open_redis
from core.foundations.cancellation import cancel_and_wait
from core.foundations.env import redact_url
from core.foundations.retry import until_reachable
from core.foundations.rpc.server import Service
from core.foundations.service import ServiceContext
from core.foundations.warm_history import HeldHistory
from core.screener import metrics
from core.screener.api import screener_service
from core.screener.config import ScreenerAppConfig
from core.screener.convert import result_to_pb
from core.screener.engine.definition import Screen
from core.screener.engine.evaluate import ScreenResult, evaluate
from core.screener.feed import MarketState, ScreenFeed
from core.screener.history_seed import seed_from_history
from core.screener.prices import TickerSeed, fresh_ages
from core.screener.screens import load_screens
from core.screener.watchers import Results
from trademesh.screener.v1 import screener_pb2 as sc

__all__ = ["ScreenerApp", "ScreenerAppConfig"]

log = logging.getLogger(__name__)
_NS_PER_MS = 1_000_000


class ScreenerApp:
    """The Screener service (core.foundations.service)."""

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
            reached = await until_reachable(
                lambda: checked_ping(redis, config.redis_url),
                what=f"screener: Redis at {redact_url(config.redis_url)}",
                retry_on=(RedisConnectionError, RedisTimeoutError, OSError),
                stop=ctx.stop,
            )
            if reached is None:
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
