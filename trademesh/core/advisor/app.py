"""The advisor service: the engine core inside its shell
(trademesh.core.platform.service.lifecycle's lifecycle).

At start: load the model (checked against its hash) and the calibration, find the mesh (the
venues given, the rest through the gateway's registry), reach the bus; then serve the Advisor
API and consume `signals` in the consumer group `advisor` as this replica's consumer
(`<instance>-<host>`; its own pending entries first, so a restart resumes where it stopped; a dead
replica's taken over after `claim_idle_ms`; signals decided already are skipped), deciding each
(trademesh.core.advisor.runner) and publishing decisions, intents and telemetry; `expire` runs on a timer.
The markets the detectors' active patches trade are followed from the start, before the first
signal is read, and as the patches change (trademesh.core.platform.patch_markets).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trademesh.core.advisor.api import advisor_service
from trademesh.core.advisor.config import AdvisorServiceConfig
from trademesh.core.advisor.decision_journal import DecisionJournal
from trademesh.core.advisor.engine.core import AdvisorCore
from trademesh.core.advisor.engine.model import ModelArtifact
from trademesh.core.advisor.fills import RecentFills
from trademesh.core.advisor.gather import ContextGatherer
from trademesh.core.advisor.library import (
    CalibrationFiles,
    ModelLibrary,
    legacy_keys,
    load_calibration,
    serving_model,
)
from trademesh.core.advisor.policies import InspectorLimits
from trademesh.core.advisor.runner import Pipeline
from trademesh.core.advisor.store import DecisionStore
from trademesh.core.advisor.venue_bars import VenueBarHistory
from trademesh.core.advisor.wire import DecisionWriter
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.bus.consumer import ConsumerOptions, GroupConsumer
from trademesh.core.platform.bus.names import SIGNALS
from trademesh.core.platform.bus.publisher import Retention
from trademesh.core.platform.bus.redis import BusRedis, open_redis, reach_redis
from trademesh.core.platform.bus.signing import ADVISOR, signer_from_env
from trademesh.core.platform.patch_markets import ActivePatches
from trademesh.core.platform.rpc.server import Service
from trademesh.core.platform.service.lifecycle import ServiceContext
from trademesh.core.tools.bars import BarStore
from trademesh.core.tools.book import LIVEDATA
from trademesh.core.tools.gaps import GapStore
from trademesh.core.tools.market import MarketTools
from trademesh.core.tools.recorded import RecorderDatabase
from trademesh.core.tools.resolver import VENUE_SERVICES, Instance, MeshResolver
from trademesh.core.tools.signals import SignalStore
from trademesh.core.tools.upstream import Upstream

if TYPE_CHECKING:  # the LLM's modules (openai, mcp): imported only when the LLM is on (a faster start)
    from trademesh.core.advisor.llm.transport import LlmTransport
    from trademesh.core.advisor.synthesizer import Synthesizer
    from trademesh.core.tools.catalog import ToolCatalog

__all__ = ["CALL_TIMEOUT_S", "Advisor"]

log = logging.getLogger(__name__)

# Deadline of each call the context's tools make (gRPC to a venue or the bridge, a query).
CALL_TIMEOUT_S = 2.0
_GRACE_S = 4.0
# A decision a second per strategy and market at most; a day of it fits.
_RETENTION = Retention(entries_per_s=50, outage_minutes=24 * 60)
_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
# The openai client's HTTP library logs every request at INFO: the transport's events say more.
_QUIET = ("httpx", "httpx2", "openai")


def _instances(config: AdvisorServiceConfig) -> list[Instance]:
    given = [Instance(v.name, v.address, VENUE_SERVICES) for v in config.mesh.venues]
    if config.bridge is not None:
        given.append(Instance("bridge", config.bridge, (LIVEDATA,)))
    return given


def _llm_tools(market: MarketTools) -> ToolCatalog:
    """The tools the model may call: the market's, read only."""
    from trademesh.core.tools.catalog import ToolCatalog

    return ToolCatalog(
        [market.instruments, market.latest_bars, market.gap_markers, market.order_book_top,
         market.recent_signals, market.venue_status, market.positions]
    )  # fmt: skip


def _warn_of_another_models_calibration(model: ModelArtifact, files: CalibrationFiles) -> None:
    """A calibration maps one model's raw convictions: said once when it is another model's."""
    if files.model_version and files.model_version != model.version:
        log.warning(
            "advisor: calibration %s was fitted on model %s's convictions, not %s's: calibrate this model "
            "(`trademesh advisor calibrate --model %s`)",
            files.calibration.version, files.model_version, model.version, model.version,
        )  # fmt: skip


def _warn_of_old_regimes(files: CalibrationFiles) -> None:
    """A calibration keyed by regimes no decision reads (fitted before the advisor read
    Overwatch's classifier): served, its fallback for every decision; said once."""
    old = legacy_keys(files.calibration)
    if old and not set(files.calibration.by_regime) - set(old):
        log.warning(
            "advisor: calibration %s is keyed by regimes no decision reads now (%s): every decision uses its "
            "fallback calibrator; fit one per regime (`trademesh advisor calibrate`)",
            files.calibration.version, ", ".join(old),
        )  # fmt: skip


class Advisor:
    """The service app, and the AdvisorState the API works on."""

    def __init__(self, config: AdvisorServiceConfig) -> None:
        self.config = config
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.WARNING)
        self.library = ModelLibrary(config.model_dir)
        # A bad or tampered model, or one of another timeframe than the bars', stops the start.
        model = serving_model(self.library, config.model, config.gather.timeframe or None)
        self.calibration: CalibrationFiles = load_calibration(config.calibration, model.timeframe)
        _warn_of_another_models_calibration(model, self.calibration)
        _warn_of_old_regimes(self.calibration)
        synthesis = dataclasses.replace(config.engine.synthesis, llm_enabled=config.llm is not None)
        engine = dataclasses.replace(config.engine, synthesis=synthesis)
        self.core = AdvisorCore(engine, model, self.calibration.calibration, timer=time.perf_counter_ns)
        self.journal = DecisionJournal()
        self.resolver = MeshResolver(config.gateway, _instances(config))
        self._upstream = Upstream(self.resolver, CALL_TIMEOUT_S)
        self._database = RecorderDatabase(config.database_url, CALL_TIMEOUT_S)
        self.store = DecisionStore(self._database)
        db = self._database
        market = MarketTools(self._upstream, BarStore(db), SignalStore(db), GapStore(db))
        self._transport: LlmTransport | None = None
        synthesizer: Synthesizer | None = None
        if config.llm is not None:
            from trademesh.core.advisor.llm.transport import LlmTransport
            from trademesh.core.advisor.synthesizer import Synthesizer

            self._transport = LlmTransport(config.llm)
            synthesizer = Synthesizer(self._transport, _llm_tools(market) if config.llm_tools else None)
        gather = dataclasses.replace(
            config.gather, timeframe=model.timeframe, regime_bars=config.engine.regime.window_bars
        )
        # Bars from the venue's candles where the recorder holds too few yet (a mesh just up).
        venue_bars = VenueBarHistory(self._upstream, Timeframe.from_label(gather.timeframe))
        self.gatherer = ContextGatherer(market, gather, venue_bars=venue_bars)
        # The detectors' active patches' markets, followed from the start (history_ms > 0 only).
        self.patches = ActivePatches(self._upstream)
        # The inspector's limits, which intents are sized within (trademesh.core.advisor.policies).
        self.inspector_limits = InspectorLimits(self._upstream)
        self.pipeline = Pipeline(
            self.core, self.gatherer, synthesizer, self.journal, max_in_flight=config.max_in_flight
        )
        # Signs its intents: the inspector trades no intent its key did not sign (unset: said).
        self._signer = signer_from_env(ADVISOR)

    @property
    def name(self) -> str:
        return self.config.instance

    @property
    def model_version(self) -> str:
        return "" if self.core.model is None else self.core.model.version

    def grpc_services(self) -> Sequence[Service]:
        return (advisor_service(self),)

    async def run(self, ctx: ServiceContext) -> None:
        config = self.config
        redis = open_redis(config.redis_url)
        try:
            if not await reach_redis(redis, config.redis_url, "advisor", ctx.stop, _REDIS_ERRORS):
                return
            self.pipeline.writer = DecisionWriter(
                redis, config.group, config.source, _RETENTION, config.decided_ttl_s, self._signer
            )
            await self._serve(ctx, redis)
        finally:
            await self._close()
            await redis.aclose()

    async def _serve(self, ctx: ServiceContext, redis: BusRedis) -> None:
        config = self.config
        options = ConsumerOptions(
            group=config.group, consumer=config.consumer, streams=(SIGNALS,), batch=100,
            claim_idle_ms=config.claim_idle_ms, handler_acks=True,
        )  # fmt: skip
        consumer = GroupConsumer(redis, options, self.pipeline.handle)
        # The venues' fills, for the account as of a signal's time (trademesh.core.advisor.fills).
        fills = RecentFills(redis, config.gather.history_ms * 1_000_000, time.time_ns)
        if config.gather.history_ms > 0:
            self.gatherer.fills = fills
        await self._find_mesh()
        following = config.gather.history_ms > 0
        if following:
            await self._find_patches()
        await ctx.ready()
        log.info(
            "advisor: consumer %s of group %s, model %s, calibration %s, llm %s",
            config.consumer,
            config.group,
            self.model_version,
            self.calibration.calibration.version,
            "off (deterministic synthesis)" if config.llm is None else ", ".join(config.llm.models),
        )
        tasks = [
            asyncio.create_task(consumer.run(ctx.stop), name="advisor signals"),
            asyncio.create_task(self.pipeline.expire(ctx.stop, config.expire_every_ms / 1000), name="expire"),
            asyncio.create_task(self.resolver.follow(ctx.stop), name="advisor mesh"),
            asyncio.create_task(self.gatherer.follow(ctx.stop), name="advisor context"),
            asyncio.create_task(fills.run(ctx.stop), name="advisor fills"),
            asyncio.create_task(self._follow_limits(ctx.stop), name="advisor limits"),
        ]
        if following:
            patches = self.patches.run(ctx.stop, self.gatherer.keep)
            tasks.append(asyncio.create_task(patches, name="advisor patches"))
        try:
            await ctx.stop.wait()
        finally:
            await self.pipeline.drain(_GRACE_S)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow_limits(self, stop: asyncio.Event) -> None:
        await self.inspector_limits.run(stop, self.core.on_limits)

    async def _find_mesh(self) -> None:
        try:
            await self.resolver.refresh()
        except Exception as exc:  # the registry may come later: follow() keeps trying
            log.warning("advisor: the gateway's registry at %s: %s", self.config.gateway, exc)

    async def _find_patches(self) -> None:
        """The active patches' markets followed before the first signal is read (a detector
        that does not answer now is asked again by the poll)."""
        self.gatherer.keep(await self.patches.poll())

    async def _close(self) -> None:
        if self._transport is not None:
            await self._transport.aclose()
        await self._upstream.close()
        await self._database.close()
        await self.resolver.close()
