"""VenueRuntime: everything a venue process does around its connector.

It owns the market feed and fan-out, the execution hub, the stream table, the
dead-man switch and the venue's lifecycle (starting, running, draining). Once a
second it samples the streams: rates for Admin and Prometheus, and each stream's
silence judged against its own usual pace (trademesh.venues.runtime.stats): a stream that
goes stale is announced to its subscribers with a GAP notice.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

from trademesh.core.domain.model import (
    Channel,
    Execution,
    FundingPayment,
    Instrument,
    Order,
    OrderRequest,
    StreamKey,
    Timeframe,
)
from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.core.platform.errors import FailedPrecondition, Unavailable
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.runtime import metrics
from trademesh.venues.runtime.account import AccountHub
from trademesh.venues.runtime.cancels import Kept, cancel_openers, dead_man_reason, drain_reason
from trademesh.venues.runtime.deadman import DeadMan
from trademesh.venues.runtime.executions import ExecutionHub
from trademesh.venues.runtime.fanout import MarketFanout
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.history import History
from trademesh.venues.runtime.native import NativeSwitchPolicy
from trademesh.venues.runtime.stats import StreamState, StreamStats, StreamTable
from trademesh.venues.runtime.validate import channel_refused
from trademesh.venues.runtime.venue import AccountFeed, Venue, VenueContext

__all__ = ["RuntimeOptions", "RuntimeState", "VenueRuntime"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RuntimeOptions:
    # Per market-data subscriber: batches queued before its overflow policy applies.
    queue_batches: int = 256
    # Per execution subscriber: executions queued before it is ended.
    execution_queue: int = 10_000
    # Executions the venue keeps for subscribers that resume (a restarted ingest): the latest
    # this many, encoded (about 330 bytes each: 16 MB when full).
    execution_history: int = 50_000
    sample_interval_s: float = 1.0
    # What the venue keeps of its recent market data for subscribers that resume a lost
    # stream (a restarted ingest): this long, at most this many bytes.
    resume_window_s: float = 120.0
    resume_max_bytes: int = 512 * 1024 * 1024


class RuntimeState(enum.Enum):
    STARTING = "starting"
    RUNNING = "running"
    DRAINING = "draining"


class VenueRuntime:
    def __init__(self, venue: Venue, options: RuntimeOptions | None = None) -> None:
        self.options = options or RuntimeOptions()
        self.venue = venue
        self.name = venue.name
        self.instruments: dict[str, Instrument] = {}
        self.streams = StreamTable()
        # Its feed encodes nothing until the first market-data subscriber (MarketFeed.listen).
        self.feed = MarketFeed(venue.name, self.streams, encoding=False)
        history = History(self.options.resume_window_s, self.options.resume_max_bytes)
        self.fanout = MarketFanout(self.options.queue_batches, self._recovery_chunks, history)
        self.fanout.on_subscribe = self.listen
        self.feed.attach(self.fanout)
        self.executions = ExecutionHub(
            venue.name, self.options.execution_queue, self.options.execution_history, history.epoch
        )
        self.account = AccountHub(venue)
        self.deadman = DeadMan(self._dead_man_trip, NativeSwitchPolicy(venue))
        self.active: set[StreamKey] = set()
        self.state = RuntimeState.STARTING
        self.started_ns = time.time_ns()
        self.on_drain: Callable[[], Awaitable[None]] | None = None
        self._sampler: asyncio.Task[None] | None = None
        self._metrics = metrics.VenueMetrics(venue.name)

    async def start(self) -> None:
        await self.venue.prepare()
        self.instruments = {item.symbol: item for item in self.venue.instruments()}
        self.active = self.venue.default_streams()
        await self.venue.start(
            VenueContext(self.feed, self._on_execution, self.account.touch), set(self.active)
        )
        self.state = RuntimeState.RUNNING
        self._sampler = asyncio.create_task(self._sample_forever(), name=f"{self.name}-sampler")

    async def stop(self) -> None:
        self.end_streams()
        await self.account.stop()
        await self.deadman.stop()
        if self._sampler is not None:
            await cancel_and_wait(self._sampler)
        await self.venue.stop()

    def listen(self) -> None:
        """Before a market-data subscriber is served: the feed encodes from now on
        (MarketFeed.listen), and what it did not before counts as one dispatch, not kept
        (History.skip): positions handed out start past it, as they did when every step was kept."""
        if not self.feed.encoding:
            self.feed.listen()
            self.fanout.history.skip()

    def end_streams(self) -> int:
        return self.fanout.end_all() + self.executions.end_all() + self.account.end_all()

    def require_serving(self) -> None:
        if self.state is RuntimeState.DRAINING:
            raise Unavailable(f"venue {self.name} is draining: it takes no new orders or subscriptions")

    def split_active(self, keys: Iterable[StreamKey]) -> tuple[list[StreamKey], list[tuple[StreamKey, str]]]:
        """The keys streamed now, and the others with the reason each is not: a subscription is
        served for what the venue streams, refused only when it streams none of it."""
        served, missing = [], []
        for key in keys:
            if key in self.active:
                served.append(key)
            else:
                missing.append((key, self._not_streamed(key)))
        if not served and missing:
            raise FailedPrecondition("; ".join(why for _, why in missing))
        return served, missing

    def _not_streamed(self, key: StreamKey) -> str:
        instrument = self.instruments.get(key.symbol)
        if key.channel not in self.venue.channels:
            return f"not streamed by venue {self.name}: it has no {key.channel.value} channel"
        refused = None if instrument is None else channel_refused(instrument, key.channel)
        if refused is not None:
            return f"not streamed by venue {self.name}: {refused}"
        why = f"not streamed by venue {self.name}: {key.symbol} {key.channel.value}"
        return f"{why}; add with Admin/AddSubscriptions"

    async def set_streams(self, keys: set[StreamKey]) -> None:
        await self.venue.set_streams(set(keys))
        for key in self.active - keys:
            self.streams.get(key).state = StreamState.STOPPED
            # Its subscribers stay open but hear nothing more: tell them why.
            self.feed.gap(
                key.symbol, key.channel, "stream removed by an operator (Admin/RemoveSubscriptions)"
            )
        self.feed.flush()
        self.active = keys

    async def drain(self, cancel_orders: bool) -> tuple[int, Kept]:
        """Stop serving; with cancel_orders, cancel what could open or add to a position (the
        reduce-only orders, a position's protection, stay)."""
        self.state = RuntimeState.DRAINING
        if self.on_drain is not None:
            await self.on_drain()
        # Cancel first, so execution streams carry the cancellations before they end.
        kept = await cancel_openers(self.venue, drain_reason()) if cancel_orders else Kept([], 0)
        ended = self.end_streams()
        return ended, kept

    async def place_order(self, request: OrderRequest) -> tuple[Order, bool]:
        """Place through the venue; a reduce-only order only once the exchange's own dead-man
        switch is off (it would cancel the order with everything else)."""
        if not request.reduce_only:
            return await self.venue.place_order(request)
        native = self.deadman.native
        try:
            await native.before_reduce_only()
            return await self.venue.place_order(request)
        finally:
            native.after_reduce_only()

    async def funding_page(self, symbol: str | None, since_ns: int, limit: int) -> list[FundingPayment]:
        """The venue's funding payments (ListFundingPayments' page): whatever the venue answered,
        the contract holds: in range, oldest first, at most `limit`."""
        payments = await self.venue.funding_payments(symbol, since_ns, limit)
        kept = [p for p in payments if p.ts_ns >= since_ns and (symbol is None or p.symbol == symbol)]
        kept.sort(key=lambda p: (p.ts_ns, p.funding_id))
        return kept[:limit]

    def subscriber_count(self, key: StreamKey) -> int:
        timeframes: list[Timeframe | None] = list(Timeframe) if key.channel is Channel.CANDLES else [None]
        return sum(self.fanout.count((key.symbol, key.channel, tf)) for tf in timeframes)

    async def _dead_man_trip(self, ttl_ms: int) -> Kept:
        return await cancel_openers(self.venue, dead_man_reason(ttl_ms))

    def _on_execution(self, execution: Execution) -> None:
        self.deadman.native.observe(execution.order)
        self.executions.publish(execution)
        if execution.fill is not None:
            self._metrics.fill(execution.fill.symbol, execution.fill.liquidation)
        # A pushing venue's every order change moves its locks; a polled one is read after fills.
        if execution.fill is not None or self.venue.account_feed is AccountFeed.PUSH:
            self.account.touch()

    def _recovery_chunks(self, symbol: str, channel: Channel) -> bytes:
        gap = self.feed.gap_chunk(symbol, channel, "subscriber fell behind: events were dropped (conflated)")
        return gap + self.feed.snapshot_chunk(symbol) if channel is Channel.BOOK else gap

    async def _sample_forever(self) -> None:
        while True:
            await asyncio.sleep(self.options.sample_interval_s)
            self.sample()
            self._metrics.update(self)

    def sample(self) -> None:
        """Rates, and staleness: a stream that went stale gets a GAP notice (since its last event)."""
        policy = None if self.venue.silence_expected() else self.venue.staleness()
        changed = self.streams.sample(policy)
        for stats, stale in changed:
            if stale:
                self._went_stale(stats)
            elif stats.state is StreamState.CONNECTED:
                log.info("%s %s %s: events again", self.name, stats.key.symbol, stats.key.channel.value)
        if changed:
            self.feed.flush()

    def _went_stale(self, stats: StreamStats) -> None:
        key = stats.key
        log.warning("%s %s %s: stale: %s", self.name, key.symbol, key.channel.value, stats.detail)
        # A notice, not feed.gap: the venue may just have paused, so a book's copy stays the one
        # handed to new subscribers (after this notice: services' _silent) until events say otherwise.
        reason = f"stream stale: {stats.detail}"
        self.feed.notice(key.symbol, key.channel, md.NOTICE_KIND_GAP, reason, stats.last_recv_ns)
