"""The detector service: the engine inside its shell (trademesh.core.platform.service.lifecycle's lifecycle).

At start: take the instance's leader lease (trademesh.core.platform.replicas.leader: the other processes of
the instance stand by; losing it ends the process), restore the patches this instance saved
(PostgreSQL), add the strategy files' patches it does not have (one per venue and symbol),
warm each from the recorder's bars through the gateway, then the venue's candles
(trademesh.core.detector.history), and activate those that should run (the others warm from
live data), serve the Patch API, then follow every venue's MarketData stream into the engine
and publish what the patches emit to the bus (streams `signals` and `position_requests`). The
inspector's risk state and the strategies' own positions are read back once a second
(trademesh.core.detector.feedback_feed) and fed to the patches' feedback sources; the markets' regimes are
followed on Overwatch's stream `regimes.1m` (trademesh.core.detector.regime_feed) and fed to the patches'
`regime` sources. A strategy taking its symbols from a screen follows the screen's results on
`screens.<name>` (trademesh.core.detector.screen_feed): a patch started for each symbol that enters its
set, retired when one leaves (trademesh.core.detector.screens), fed by a feed of its own
(trademesh.core.detector.feeds).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import grpc

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.detector.api import PatchActivity, patch_service
from trademesh.core.detector.config import DetectorConfig
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine, EngineConfig
from trademesh.core.detector.engine.lifecycle import PatchState
from trademesh.core.detector.engine.outputs import EmittedSignal, Evaluation, PositionRequest
from trademesh.core.detector.feed import VenueFeed
from trademesh.core.detector.feedback_feed import InspectorFeedback
from trademesh.core.detector.feeds import VenueFeeds
from trademesh.core.detector.history import VenueChannels, bar_history
from trademesh.core.detector.metrics import SCREEN_PATCHES
from trademesh.core.detector.modules.sources import RegimeSource
from trademesh.core.detector.patch_journal import PatchJournal, Pulse
from trademesh.core.detector.regime_feed import RegimeFeed
from trademesh.core.detector.runner import PatchRunner
from trademesh.core.detector.screen_feed import ScreenRosterFeed
from trademesh.core.detector.screens import RosterChange, ScreenRoster
from trademesh.core.detector.store import PatchStore
from trademesh.core.detector.strategy_file import Strategy, build_patches, load_strategy
from trademesh.core.detector.strategy_file import patch_id as id_of
from trademesh.core.detector.wire import encode_positions, encode_signals
from trademesh.core.domain.instruments import VenueInstruments, unknown_symbol
from trademesh.core.platform.aio.retry import until_reachable
from trademesh.core.platform.bus.instruments import InstrumentWatch, VenueListing
from trademesh.core.platform.bus.names import POSITION_REQUESTS, SIGNALS, tagged
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.bus.redis import BusRedis, open_redis, reach_redis
from trademesh.core.platform.bus.signing import DETECTOR, signer_from_env
from trademesh.core.platform.config.env import redact_url
from trademesh.core.platform.config.mesh import VenueLink
from trademesh.core.platform.errors import (
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    TrademeshError,
    Unavailable,
    shown,
)
from trademesh.core.platform.logs.setup import chain_trace_id, log_fields
from trademesh.core.platform.replicas.leader import Leadership
from trademesh.core.platform.rpc.client import auth_metadata
from trademesh.core.platform.rpc.discovery import Venues, VenueWatch
from trademesh.core.platform.rpc.server import Service
from trademesh.core.platform.rpc.status import calling
from trademesh.core.platform.service.lifecycle import ServiceContext
from trademesh.core.platform.warm_history import HeldHistory
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc

__all__ = ["Detector"]

log = logging.getLogger(__name__)

# The trading streams are small (a signal per evaluation at most): a day at 50/s fits.
_RETENTION = Retention(entries_per_s=50, outage_minutes=24 * 60)
_LIST_TIMEOUT_S = 5.0


def _channel_factory(address: str) -> Callable[[], grpc.aio.Channel]:
    return lambda: grpc.aio.insecure_channel(address)


class Detector:
    """The service app, and the DetectorState the Patch API works on."""

    def __init__(self, config: DetectorConfig) -> None:
        self.config = config
        self.catalog = Catalog.builtin()
        engine_config = EngineConfig(
            probe_rate_hz=config.probe_rate_hz,
            module_budget_ns=config.module_budget_us * 1000,
            tick_hz=config.tick_hz,
        )
        self.engine = Engine(self.catalog, time.perf_counter_ns, engine_config)
        self.journal = PatchJournal()  # in memory until the store is open (run)
        self.runner = PatchRunner(
            self.engine, self._after_evaluation, tick_hz=config.tick_hz, hold_ns=config.hold_ms * 1_000_000
        )
        self._metadata = auth_metadata()
        self.channels = VenueChannels()  # warm-up calls: one channel per venue
        # Warm-ups read the recorder's bars first, through the gateway (none: the venue's alone).
        self.held = HeldHistory(config.gateway, "detector")
        self.instruments = VenueInstruments(self._list_instruments)  # what each venue lists
        # The venues followed: given, and registered with the gateway (found while it runs).
        self.venues = VenueWatch(config.mesh.venues, config.gateway)
        self._waiting: dict[str, list[str]] = {}  # venue -> patches to activate when it joins
        self.feeds = VenueFeeds(self._follow)
        self.feedback: InspectorFeedback | None = None  # when there is an inspector to hear (run)
        self.rosters: dict[str, ScreenRoster] = {}  # strategy id -> its screen's roster (run)
        self._stop = asyncio.Event()  # the service's (run)
        self._publisher: Publisher | None = None
        self._leadership: Leadership | None = None  # its writes are fenced by its lease (run)
        self._unsaved_logged = False
        # Signs its position requests: the inspector carries out none its key did not sign.
        self._signer = signer_from_env(DETECTOR)
        # Read (and checked) now: a bad file or an unknown venue stops the start with one line.
        self._strategies = [self._strategy(path) for path in config.strategies]

    @property
    def name(self) -> str:
        return self.config.instance

    def grpc_services(self) -> Sequence[Service]:
        return (patch_service(self),)

    # ---- DetectorState (trademesh.core.detector.api)

    @property
    def pulse(self) -> Pulse:
        return self.journal.pulse

    @property
    def recent_signals(self) -> Sequence[EmittedSignal]:
        return self.runner.recent_signals

    def now_ns(self) -> int:
        return time.time_ns()

    def status(self) -> Mapping[str, PatchActivity]:
        return {patch_id: stats.activity() for patch_id, stats in self.runner.stats.items()}

    async def warm_up(self, patch_id: str, now_ns: int | None = None) -> None:
        """The patch warmed from the venue's candles closed by `now_ns` (default: now)."""
        link = self._link(self.engine.patch(patch_id).venue)
        now = self.now_ns() if now_ns is None else now_ns
        history = await bar_history(
            self.engine, patch_id, self.channels.get(link.address), self._metadata, now, self.held
        )
        self.engine.warm(patch_id, history)

    async def check_market(self, venue: str, symbol: str) -> None:
        """NotFound naming the venue when this detector does not follow it (a patch on it would
        be fed nothing, and the advisor and the inspector would follow a venue nobody serves);
        InvalidArgument naming the symbol when the venue does not list it; Unavailable when its
        list cannot be read. A market that passes is fed from then on (ActivatePatch asks first)."""
        if self.venues.venue(venue) is None:
            known = ", ".join(sorted(self.venues.venues)) or "none"
            raise NotFound(f"no venue {shown(venue)} in this detector's mesh (venues: {known})")
        await self.instruments.check(venue, symbol, "patch_id")
        # Fed from now: the feeds otherwise follow only the venues' changes, and a patch the API
        # activates on a market no other patch trades (an external venue's) would get no events.
        self._sync_feeds(self.venues.venues)

    async def _list_instruments(self, venue: str) -> Sequence[common.Instrument]:
        stub = md_grpc.MarketDataStub(self.channels.get(self._link(venue).address))
        with calling(f"venue {venue}: ListInstruments"):
            answer = await stub.ListInstruments(
                md.ListInstrumentsRequest(), metadata=self._metadata, timeout=_LIST_TIMEOUT_S
            )
        return list(answer.instruments)

    # ---- run

    async def run(self, ctx: ServiceContext) -> None:
        store = await self._open_store(ctx.stop)
        if store is None:
            return
        redis = open_redis(self.config.redis_url)
        try:
            if not await self._reach_redis(redis, ctx.stop):
                return
            # Its lease carries the tag of `signals`: the signals it fences share their slot.
            leadership = Leadership(
                redis, "detector", self.config.instance, self.config.leader_ttl_ms, tag=tagged(SIGNALS)
            )
            if not await leadership.take(ctx):
                return
            self._leadership = leadership
            async with leadership.kept(ctx.stop) as kept:
                self._publisher = Publisher(redis, _RETENTION)
                self.journal.store = store
                await self._look_up_venues()
                await self._start_patches()
                await self._serve(ctx, kept, redis)
        finally:
            await self.venues.close()
            await self.channels.close()
            await self.held.close()
            await redis.aclose()
            await store.close()

    async def _serve(self, ctx: ServiceContext, kept: asyncio.Task[None], redis: BusRedis) -> None:
        """The patches run until the service stops or `kept` (its leader lease's renewals) ends
        with the lease lost (then the process stops, and its supervisor starts it as a standby)."""
        self._stop = ctx.stop
        venues = asyncio.create_task(self.venues.follow(ctx.stop, self._venues_changed), name="venues")
        await ctx.ready()
        log.info("detector: %d patches, %d warming", len(self.engine.patches), len(self.runner.warming))
        runner = asyncio.create_task(self.runner.run(ctx.stop), name="patches")
        heard = asyncio.create_task(self._hear(ctx.stop), name="inspector feedback")
        regimes = RegimeFeed(redis, self.runner.hear, self._regime_markets)
        regimed = asyncio.create_task(regimes.run(ctx.stop), name="regimes")
        screens = ScreenRosterFeed(redis, self.rosters, self._roster_changed, self.now_ns)
        screened = asyncio.create_task(screens.run(ctx.stop), name="screens")
        listings = InstrumentWatch(redis, self._listing)
        listed = asyncio.create_task(listings.run(ctx.stop), name="instruments")
        try:
            await asyncio.wait({runner, kept}, return_when=asyncio.FIRST_COMPLETED)
            if kept.done() and not ctx.stop.is_set():
                kept.result()  # the lease lost: LeadershipLost ends the process
            await runner
        finally:
            runner.cancel()
            venues.cancel()
            heard.cancel()
            regimed.cancel()
            screened.cancel()
            listed.cancel()
            feeds = self.feeds.tasks
            for task in feeds:
                task.cancel()
            await asyncio.gather(venues, heard, regimed, screened, listed, *feeds, return_exceptions=True)
            await self._flush()

    def _listing(self, listing: VenueListing) -> None:
        """A venue's instrument list (md.{<venue>}.instruments): its delisted markets to the
        engine, whose signals and position requests for them are withheld from then on."""
        for symbol, delisted in self.runner.listing(listing.venue, listing.delisted):
            if delisted:
                log.warning(
                    "detector: %s delisted at %s: its signals and position requests are withheld",
                    symbol,
                    listing.venue,
                )
            else:
                log.info("detector: %s listed again at %s: emitted again", symbol, listing.venue)

    async def _hear(self, stop: asyncio.Event) -> None:
        """The inspector's risk state and the strategies' positions into the engine, when there
        is an inspector to ask (given, or through the gateway's registry)."""
        config = self.config
        if config.inspector is None and config.gateway is None:
            log.info("detector: no inspector given and no gateway: the strategies hear nothing back")
            await stop.wait()
            return
        every_s = config.feedback_every_ms / 1000
        await self.feedback_of(config.gateway, config.inspector, every_s).run(stop)

    def feedback_of(self, gateway: str | None, inspector: str | None, every_s: float) -> InspectorFeedback:
        self.feedback = InspectorFeedback(gateway, inspector, self.runner.hear, every_s)
        return self.feedback

    def _regime_markets(self) -> set[tuple[str, str]]:
        """The (venue, symbol) of every patch's `regime` sources: whose regimes to look up at start."""
        return {
            (str(module.params["venue"]), str(module.params["symbol"]))
            for patch in self.engine.patches.values()
            for module in patch.modules.values()
            if isinstance(module, RegimeSource)
        }

    async def _look_up_venues(self) -> None:
        """The gateway's venues before the patches start (a registry away: only those given)."""
        try:
            await self.venues.refresh()
        except grpc.aio.AioRpcError as exc:
            log.warning("detector: the gateway's registry at %s: %s", self.venues.gateway, exc.code().name)

    async def _venues_changed(self, venues: Venues) -> None:
        """Patches waiting for a venue that joined are activated; feeds follow the venues."""
        for venue in [v for v in self._waiting if v in venues]:
            log.info("detector: venue %s joined the mesh: its patches start", venue)
            for patch_id in self._waiting.pop(venue):
                if patch_id in self.engine.patches:
                    await self._activate(patch_id, self.now_ns())
            await self._flush()
        self._sync_feeds(venues)

    def _sync_feeds(self, venues: Venues) -> None:
        """Feeds of the symbols the patches trade on the venues in the mesh
        (trademesh.core.detector.feeds)."""
        self.feeds.sync(venues, self._feed_symbols(venues))

    async def _follow(self, link: VenueLink, symbols: list[str]) -> None:
        channels = _channel_factory(link.address)
        feed = VenueFeed(link, symbols, channels, self._metadata, self.runner.deliver, self.instruments)
        await feed.run(self._stop)

    async def _open_store(self, stop: asyncio.Event) -> PatchStore | None:
        url = self.config.database_url
        return await until_reachable(
            lambda: PatchStore.open(url, self.config.instance),
            what=f"detector: PostgreSQL at {redact_url(url)}",
            retry_on=(Unavailable,),
            stop=stop,
        )

    async def _reach_redis(self, redis: BusRedis, stop: asyncio.Event) -> bool:
        return await reach_redis(redis, self.config.redis_url, "detector", stop)

    # ---- start

    def _strategy(self, path: Path) -> Strategy:
        strategy = load_strategy(path, self.catalog)
        for venue in strategy.venues:
            if self.config.mesh.venue(venue) is None and self.config.gateway is None:
                raise InvalidArgument.field(
                    "venue", f"strategy {path} trades venue {venue!r}: give it with --venue {venue}=HOST:PORT"
                )
        return strategy

    async def _start_patches(self) -> None:
        """Restored patches first (they may have been edited through the API), then the files'
        new ones; each warmed from candles and activated when it should run."""
        now = self.now_ns()
        wanted = await self.journal.restore(self.engine, now)
        for strategy in self._strategies:
            for patch in build_patches(self.engine, strategy, now, skip_existing=True):
                wanted[patch.id] = PatchState.ACTIVE
        self.rosters = {s.id: self._roster(s) for s in self._strategies if s.screen is not None}
        # The time a backtest of this session warms to (docs/backtest.md, "Parity with live").
        log.info("detector: patches warm from the candles closed by %d (ns)", now)
        for patch_id, state in wanted.items():
            if state is PatchState.ACTIVE:
                await self._activate(patch_id, now)
        await self._flush()

    async def _activate(self, patch_id: str, now_ns: int) -> None:
        patch = self.engine.patch(patch_id)
        if self.venues.venue(patch.venue) is None:
            log.warning("detector: %s trades venue %r, not in the mesh: waits for it", patch_id, patch.venue)
            self._waiting.setdefault(patch.venue, []).append(patch_id)
            return
        if not await self._listed(patch.venue, patch.symbol):
            log.warning("detector: %s: %s: left paused", patch_id, unknown_symbol(patch.venue, patch.symbol))
            return
        await self.warm_up(patch_id, now_ns)
        try:
            patch.activate(now_ns)
        except FailedPrecondition as exc:
            log.info("detector: %s warms from live data (%s)", patch_id, exc)
            self.runner.warming.add(patch_id)

    async def _listed(self, venue: str, symbol: str) -> bool:
        """Whether the venue lists the symbol (True when its list cannot be read now: its feed
        then learns it from the venue's refusal)."""
        try:
            return await self.instruments.instrument(venue, symbol) is not None
        except TrademeshError:
            return True

    def _feed_symbols(self, venues: Venues) -> dict[str, set[str]]:
        symbols: dict[str, set[str]] = {}
        for patch in self.engine.patches.values():
            if patch.venue in venues and patch.state is not PatchState.ARCHIVED:
                symbols.setdefault(patch.venue, set()).add(patch.symbol)
        return symbols

    # ---- screen-driven strategies (trademesh.core.detector.screens)

    def _roster(self, strategy: Strategy) -> ScreenRoster:
        """The strategy's roster, running the patches of it the start found (restored)."""
        assert strategy.screen is not None
        venue = strategy.venues[0]
        prefix = id_of(strategy, venue, "")
        running = [
            patch.id.removeprefix(prefix)
            for patch in self.engine.patches.values()
            if patch.id.startswith(prefix) and patch.state is not PatchState.ARCHIVED
        ]
        is_open = lambda symbol: self._open(strategy.id, venue, symbol)  # noqa: E731
        return ScreenRoster(venue, strategy.screen, is_open, running)

    def _open(self, strategy: str, venue: str, symbol: str) -> bool | None:
        """Whether the strategy holds a position there, as the inspector last said; None before
        it said anything; False with no inspector to ask (nobody holds one for it)."""
        if self.config.inspector is None and self.config.gateway is None:
            return False
        share = None if self.feedback is None else self.feedback.tracker.share(strategy, venue, symbol)
        return None if share is None else share != 0

    async def _roster_changed(self, strategy_id: str, roster: ScreenRoster, change: RosterChange) -> None:
        """Patches retired and started as the screen's set changed, at the result's time."""
        strategy = next(s for s in self._strategies if s.id == strategy_id)
        for symbol in change.retire:
            self._retire(id_of(strategy, roster.venue, symbol), change.at_ns)
        for symbol in change.leaving:
            SCREEN_PATCHES.labels(strategy_id, "leaving").inc()
            log.info(
                "detector: %s left screen %s with a position open: it runs on, entries muted, until flat",
                id_of(strategy, roster.venue, symbol), roster.screen.screen,
            )  # fmt: skip
        for symbol in change.start:
            await self._start_screened(strategy, roster, symbol, change.at_ns)
        self.runner.muted = frozenset(
            id_of(s, self.rosters[s.id].venue, symbol)
            for s in self._strategies
            if s.id in self.rosters
            for symbol in self.rosters[s.id].leaving
        )
        self._sync_feeds(self.venues.venues)
        try:
            await self._flush()
        except Unavailable as exc:  # kept and written at the next flush
            log.warning("detector: patch changes not saved yet: %s", exc)

    async def _start_screened(
        self, strategy: Strategy, roster: ScreenRoster, symbol: str, at_ns: int
    ) -> None:
        made = id_of(strategy, roster.venue, symbol)
        patch = self.engine.patches.get(made)
        if patch is not None and patch.state is PatchState.ARCHIVED:  # retired before: made anew
            self.engine.delete_patch(made, at_ns)
            patch = None
        if patch is None:
            build_patches(self.engine, dataclasses.replace(strategy, symbols=(symbol,), screen=None), at_ns)
        SCREEN_PATCHES.labels(strategy.id, "started").inc()
        log.info("detector: %s entered screen %s: its patch starts", made, roster.screen.screen)
        if self.engine.patch(made).state is PatchState.ACTIVE:
            return
        try:
            await self._activate(made, at_ns)
        except TrademeshError as exc:  # the detector stopping, a venue gone: said, the others go on
            log.warning("detector: %s cannot start: %s", made, exc)

    def _retire(self, made: str, at_ns: int) -> None:
        patch = self.engine.patches.get(made)
        self.runner.warming.discard(made)
        for waiting in self._waiting.values():
            with contextlib.suppress(ValueError):
                waiting.remove(made)
        if patch is None or patch.state is PatchState.ARCHIVED:
            return
        patch.archive(at_ns)
        SCREEN_PATCHES.labels(patch.strategy_id, "retired").inc()
        log.info("detector: %s left its screen's set: its patch retires (archived)", made)

    def _link(self, venue: str) -> VenueLink:
        link = self.venues.venue(venue)
        if link is None:
            raise FailedPrecondition(f"venue {venue!r} is not in this detector's mesh (--venue, registry)")
        return link

    # ---- out

    async def _after_evaluation(self, evaluation: Evaluation) -> None:
        """Publish what was emitted, persist and publish the changes, wake the API's streams."""
        publisher, leadership = self._publisher, self._leadership
        if publisher is not None and leadership is not None and (evaluation.signals or evaluation.positions):
            now, fence = self.now_ns(), leadership.fence()
            if evaluation.signals:
                publisher.add(
                    SIGNALS, encode_signals(self.config.source, evaluation.signals, now), fence=fence
                )
            if evaluation.positions:
                positions = encode_positions(self.config.source, evaluation.positions, now)
                signed = () if self._signer is None else self._signer.fields(POSITION_REQUESTS, positions)
                publisher.add(POSITION_REQUESTS, positions, fence=fence, extra=signed)
            await publisher.flush()
            if publisher.fenced:  # another process leads this instance now: it signals, not us
                leadership.deposed("a signal's write was refused (FENCED): another process holds the lease")
            else:
                _log_published(evaluation.signals, evaluation.positions)
        try:
            await self._flush()
            self._unsaved_logged = False
        except Unavailable as exc:  # kept and written at the next flush; the hot path goes on
            if not self._unsaved_logged:
                log.warning("detector: patch changes not saved yet: %s", exc)
                self._unsaved_logged = True
        self.pulse.bump()

    async def _flush(self) -> None:
        """The journal's flush where no caller waits for its answer: a patch the database refuses
        is logged by the journal and its changes dropped; Unavailable goes up."""
        with contextlib.suppress(FailedPrecondition):
            await self.journal.flush(self.engine)


def _log_published(signals: Sequence[EmittedSignal], requests: Sequence[PositionRequest]) -> None:
    """A line per signal and position request published, each under its own chain's trace id
    (the advisor's decision, the inspector's verdicts and the venue's orders follow under it)."""
    for signal in signals:
        with log_fields(trace_id=chain_trace_id(signal.signal_id)):
            log.info(
                "detector: signal %s %s %s %s of %s (patch %s, conviction %.3f)",
                signal.signal_id, signal.venue, signal.symbol, signal.direction.name, signal.strategy_id,
                signal.patch_id, signal.conviction,
            )  # fmt: skip
    for request in requests:
        with log_fields(trace_id=chain_trace_id(request.request_id)):
            log.info(
                "detector: position request %s %s %s %s %s of %s (patch %s, fraction %g)",
                request.request_id, request.venue, request.symbol, request.action, request.side.name,
                request.strategy_id, request.patch_id, request.fraction,
            )  # fmt: skip
