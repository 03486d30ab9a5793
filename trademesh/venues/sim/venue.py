"""SimVenue: the built-in exchange as a Venue — synthetic market plus real matching."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from decimal import Decimal

from prometheus_client import Counter

from trademesh.core.domain.matching.config import margin_terms
from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.matching.funding import FundingTerms
from trademesh.core.domain.model import (
    Amendment,
    Balance,
    Candle,
    Channel,
    FundingPayment,
    Instrument,
    LeverageSetting,
    MarginMode,
    Order,
    OrderRequest,
    Position,
    StreamKey,
    Timeframe,
)
from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.runtime.stats import StreamState
from trademesh.venues.runtime.trades import TradesRead
from trademesh.venues.runtime.validate import channel_refused, has_funding
from trademesh.venues.runtime.venue import AccountFeed, OrderRef, Venue, VenueContext
from trademesh.venues.sim.config import SimConfig
from trademesh.venues.sim.listing import Listing
from trademesh.venues.sim.market_data import SyntheticMarket
from trademesh.venues.sim.publish import SimPublisher
from trademesh.venues.sim.symbols import VENUE, instruments

__all__ = ["SimVenue"]

log = logging.getLogger(__name__)

# Behind schedule by more than this, the market skips the missed steps (counted, logged).
_MAX_LAG_S = 0.25
_SKIP_LOG_INTERVAL_S = 10.0
# Passes of history played to catch up with the wall clock (each far shorter than the last).
_CATCH_UP_PASSES = 5
# The perpetuals' funding rates are stated this often (Binance's mark price stream's pace).
_FUNDING_EVERY_S = 1.0

SKIPPED_STEPS = Counter(
    "trademesh_sim_skipped_steps_total", "Synthetic market steps skipped because the venue fell behind."
)


def _stream_order(stream: tuple[str, Channel]) -> tuple[str, str]:
    return stream[0], stream[1].value  # Channel members do not order


class _Clock:
    """The exchange's clock: the wall clock, or the simulated time while the sim plays its history."""

    def __init__(self) -> None:
        self.simulated_ns: int | None = None

    def __call__(self) -> int:
        return time.time_ns() if self.simulated_ns is None else self.simulated_ns


class SimVenue(Venue):
    name = VENUE
    supports_stop_orders = True  # the exchange holds them and triggers them on its own trades
    # Its perpetuals' mark prices, not open interest nor the market's liquidations (its own
    # account's come as Fill.liquidation).
    channels = frozenset(Channel) - {Channel.OPEN_INTEREST, Channel.LIQUIDATIONS}
    amends_orders = True  # in place: trademesh.core.domain.matching.exchange, "Amending"
    account_feed = AccountFeed.PUSH  # its account changes only with its own executions
    trade_history = True  # its latest trades of each symbol (trademesh/venues/sim/trade_log.py)
    all_tickers = True  # from its own books and trades

    def __init__(self, config: SimConfig, name: str = VENUE) -> None:
        self.name = name  # an account's: "sim.desk-a" (docs/accounts.md)
        self.config = config
        self._clock = _Clock()
        self.exchange = SimExchange(
            name,
            instruments(config, name),
            maker_fee_rate=config.maker_fee_rate,
            taker_fee_rate=config.taker_fee_rate,
            balances=dict(config.balances),
            clock=self._clock,
            price_band_ratio=config.price_band_ratio,
            closed_orders_kept=config.closed_orders_kept,
            funding={
                item.symbol: FundingTerms(item.funding_rate, item.funding_interval_s)
                for item in config.symbols
                if item.perpetual
            },
            margin=margin_terms(config),
        )
        if self.exchange.margined:  # its perpetuals: SetLeverage, and liquidation at the mark
            self.margin_modes = (MarginMode.CROSS, MarginMode.ISOLATED)
            self.margin_moves_with_market = True  # StreamAccount sends the marks' moves too
            self.liquidates = True
        self.listing = (
            Listing()
        )  # TRADEMESH_SIM_LISTING: delistings and rule changes (trademesh.venues.sim.listing)
        self.publisher = SimPublisher(self.exchange)
        self.exchange.listener = self.publisher
        self.market = SyntheticMarket(self.exchange, config)
        self._context: VenueContext | None = None
        self._task: asyncio.Task[None] | None = None
        self._last_skip_log = 0.0

    # ---- lifecycle and streams

    async def start(self, context: VenueContext, streams: set[StreamKey]) -> None:
        self._context = context
        if self.config.history_s:
            self.market.prime()
            self._play_history(time.time_ns())
            self.publisher.attach(context, streams)
            for symbol, channel in sorted(self.publisher.enabled, key=_stream_order):
                if channel is Channel.BOOK:
                    self.publisher.publish_book(symbol)
        else:
            self.publisher.attach(context, streams)
            self.market.prime()
        context.feed.flush()
        self._mark(streams, StreamState.CONNECTED)
        self._task = asyncio.create_task(self._run(), name="sim-market")

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)

    def instruments(self) -> list[Instrument]:
        return self.listing.apply(self.exchange.instruments())

    def default_streams(self) -> set[StreamKey]:
        return {
            StreamKey(i.symbol, channel)
            for i in self.instruments()
            for channel in self.channels
            if channel_refused(i, channel) is None and (channel is not Channel.MARK or has_funding(i))
        }

    async def set_streams(self, streams: set[StreamKey]) -> None:
        if self._context is not None:
            added = {(key.symbol, key.channel) for key in streams} - self.publisher.enabled
            self.publisher.attach(self._context, streams)
            self._mark(streams, StreamState.CONNECTED)
            # While a book stream was off the feed's copy missed every change: resync it.
            for symbol, channel in sorted(added, key=_stream_order):
                if channel is Channel.BOOK:
                    self.publisher.publish_book(symbol, "book stream added")
            self._context.feed.flush()

    async def reconnect(self) -> int:
        """The sim has no upstream connection: re-send every book as a resync instead."""
        if self._context is None:
            return 0
        feed = self._context.feed
        streams = sorted(self.publisher.enabled, key=_stream_order)
        for symbol, channel in streams:
            feed.stats(symbol, channel).reconnects += 1
            if channel is Channel.BOOK:
                self.publisher.publish_book(symbol, "reconnect requested")
            else:
                feed.gap(symbol, channel, "reconnect requested")
        feed.flush()
        return len(streams)

    def _mark(self, streams: set[StreamKey], state: StreamState) -> None:
        assert self._context is not None
        for key in streams:
            self._context.feed.stats(key.symbol, key.channel).state = state

    # ---- the market loop

    async def _run(self) -> None:
        """One market step per turn of the event loop, so gRPC can send between steps."""
        assert self._context is not None
        feed, step_s = self._context.feed, self.market.step_s
        next_step = time.monotonic()
        next_ticker = next_candles = next_funding = 0.0
        while True:
            now = time.monotonic()
            if now - next_step > _MAX_LAG_S:
                next_step = self._skip_ahead(now, next_step, step_s)
            self.market.step()
            self.exchange.settle_funding()
            self.exchange.check_liquidations()
            next_step += step_s
            now_ns = time.time_ns()
            if now >= next_ticker:
                self.publisher.publish_tickers(now_ns)
                next_ticker = now + self.config.ticker_interval_ms / 1000
            if now >= next_candles:
                self.publisher.publish_candles(now_ns)
                next_candles = now + self.config.candle_interval_ms / 1000
            if now >= next_funding:
                self.publisher.publish_funding(now_ns)
                self.publisher.publish_marks(now_ns)
                next_funding = now + _FUNDING_EVERY_S
            feed.flush()
            await asyncio.sleep(max(0.0, next_step - time.monotonic()))

    def _play_history(self, now_ns: int, wall: Callable[[], int] = time.time_ns) -> None:
        """Play `history_s` seconds of market, in simulated time ending when it opens, before any
        stream is on: only the candles keep it (what GetCandles answers); nothing is published.
        Playing takes time (seconds for the demo market's 20 minutes): the market of those
        seconds is played after it, until the simulated clock is within a step of the wall
        clock, so the candles have no hole where the live market begins."""
        step_ns = self.config.tick_interval_ms * 1_000_000
        at = now_ns - self.config.history_s * 1_000_000_000 // step_ns * step_ns
        started = time.monotonic()
        for _ in range(_CATCH_UP_PASSES):
            while at < now_ns:
                self._clock.simulated_ns = at
                self.market.step()
                at += step_ns
            now_ns = wall()
            if now_ns - at < step_ns:
                break
        self._clock.simulated_ns = None
        for book in self.publisher.candles.values():
            book.roll(now_ns, lambda timeframe, candle: None)
        log.info("sim played %d s of history in %.1f s", self.config.history_s, time.monotonic() - started)

    def _skip_ahead(self, now: float, next_step: float, step_s: float) -> float:
        """The machine cannot keep up: drop the missed steps instead of bursting through them."""
        skipped = int((now - next_step) / step_s)
        SKIPPED_STEPS.inc(skipped)
        if now - self._last_skip_log > _SKIP_LOG_INTERVAL_S:
            self._last_skip_log = now
            log.warning(
                "sim market fell %d steps (%.0f ms) behind; skipping ahead", skipped, skipped * step_s * 1e3
            )
        return next_step + skipped * step_s

    # ---- market data history

    async def candles(
        self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int, limit: int
    ) -> list[Candle]:
        return self.publisher.candles[symbol].history(timeframe, start_ns, end_ns, limit)

    async def trades(self, symbol: str, since_ns: int, end_ns: int, limit: int) -> TradesRead:
        return self.publisher.trades(symbol, since_ns, end_ns, limit)

    async def tickers(self, symbols: Sequence[str]) -> list[md.SymbolTicker]:
        now_ns = self._clock()
        found = (self.publisher.latest_ticker(symbol, now_ns) for symbol in symbols)
        return [ticker for ticker in found if ticker is not None]

    # ---- trading

    async def place_order(self, request: OrderRequest) -> tuple[Order, bool]:
        order, duplicate = self.exchange.place(request)
        self._flush()
        return order, duplicate

    async def cancel_order(self, ref: OrderRef, reason: str) -> Order:
        order = self.exchange.cancel(ref.order_id or None, ref.client_order_id or None, reason)
        self._flush()
        return order

    async def cancel_all_orders(self, symbol: str | None, reason: str) -> list[Order]:
        orders = self.exchange.cancel_all(symbol, reason)
        self._flush()
        return orders

    async def amend_order(self, ref: OrderRef, change: Amendment) -> tuple[Order, bool]:
        amended = self.exchange.amend(ref.order_id or None, ref.client_order_id or None, change)
        self._flush()
        return amended

    async def get_order(self, ref: OrderRef) -> Order:
        return self.exchange.get(ref.order_id or None, ref.client_order_id or None)

    async def open_orders(self, symbol: str | None) -> list[Order]:
        return self.exchange.open_orders(symbol)

    async def balances(self) -> list[Balance]:
        return self.exchange.balances()

    async def positions(self, symbol: str | None) -> list[Position]:
        return self.exchange.positions(symbol)

    async def set_leverage(self, symbol: str, leverage: Decimal, mode: MarginMode | None) -> LeverageSetting:
        return self.exchange.set_leverage(symbol, leverage, mode)

    async def leverage(self, symbol: str) -> LeverageSetting:
        return self.exchange.leverage(symbol)

    def account_as_of_ns(self) -> int:
        """The exchange's clock: its fills are stamped by it, and an account answer (made at
        once, without awaiting) holds every fill made so far."""
        return self._clock()

    async def funding_payments(self, symbol: str | None, since_ns: int, limit: int) -> list[FundingPayment]:
        """The perpetuals' funding payments (none while the config lists no perpetual)."""
        return self.exchange.funding_payments(symbol, since_ns, limit)

    def _flush(self) -> None:
        # A user order moves the book now; its subscribers should not wait for the next step.
        if self._context is not None:
            self._context.feed.flush()
