"""LiveVenue: any ccxt.pro exchange as a trademesh Venue, live or against a replayed capture."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import ccxt.pro

from trademesh.core.domain.model import (
    Amendment,
    Balance,
    Candle,
    Channel,
    Fill,
    FundingPayment,
    Instrument,
    LeverageSetting,
    MarginMode,
    Order,
    OrderRequest,
    OrderType,
    Position,
    StreamKey,
    Timeframe,
)
from trademesh.core.domain.order_rules import amended_request, require_unfilled
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.live.account import AccountWatch
from trademesh.venues.live.config import LiveConfig
from trademesh.venues.live.derivatives import (
    DerivativeStreams,
    LiquidationNormalizer,
    StateNormalizer,
    derivative_job,
)
from trademesh.venues.live.exchange import Hooks, create_exchange, has_credentials
from trademesh.venues.live.funding_poll import FundingPoll
from trademesh.venues.live.market_reload import MarketReload
from trademesh.venues.live.markets import choose_symbols, load_markets
from trademesh.venues.live.normalize import (
    BookNormalizer,
    BookRange,
    CandleNormalizer,
    FundingNormalizer,
    TickerNormalizer,
    TradeNormalizer,
)
from trademesh.venues.live.private import PrivateStreams
from trademesh.venues.live.reporting import ExecutionReporter
from trademesh.venues.live.spec import LiveSpec
from trademesh.venues.live.streams import StreamWatcher, Watchdog, current_watcher
from trademesh.venues.live.trading import LiveTrading, new_client_order_id, retry_after
from trademesh.venues.live.wire import BookResync, WireTap
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.stats import Staleness
from trademesh.venues.runtime.trades import TradesRead
from trademesh.venues.runtime.validate import DERIVATIVE_CHANNELS, channel_refused
from trademesh.venues.runtime.venue import (
    AccountFeed,
    NativeSwitch,
    NotInPlace,
    OrderRef,
    Venue,
    VenueContext,
)

if TYPE_CHECKING:
    from trademesh.venues.replay.server import ReplayOptions, ReplayServer

__all__ = ["LiveVenue"]

log = logging.getLogger(__name__)

# A replay starts once its subscribers have stopped coming for this long (_release_replay).
_SUBSCRIBERS_SETTLE_S = 0.25

Normalizer = (
    TradeNormalizer
    | BookNormalizer
    | TickerNormalizer
    | CandleNormalizer
    | FundingNormalizer
    | StateNormalizer
    | LiquidationNormalizer
)


class LiveVenue(Venue):
    def __init__(self, spec: LiveSpec, config: LiveConfig, replay: ReplayOptions | None = None) -> None:
        self.name = spec.name
        self.spec = spec
        self.supports_stop_orders = spec.stop_params is not None
        self.amends_orders = spec.amend_in_place
        self.spot_fee_asset = spec.spot_fee_asset
        self.trade_history = spec.trade_history is not None
        self.all_tickers = True  # ccxt's fetch_tickers, at every venue shipped
        self.channels = frozenset(spec.channels)
        if spec.margin is not None:  # a derivatives exchange (trademesh/venues/live/margin.py)
            self.margin_modes = spec.margin.modes
            self.liquidates = True
        if spec.account_stream and has_credentials(spec):
            self.account_feed = AccountFeed.PUSH
        self.config = config
        if replay is not None and config.replay_url is not None:
            raise InvalidArgument.field(
                "replay_url", "--replay runs its own stand-in: give either it or the config's replay_url"
            )
        self.replay_options = replay
        self.replay: ReplayServer | None = None
        self.exchange: Any = None
        self.trading: LiveTrading | None = None
        # Its instruments: its exchange's markets, read again every markets_reload_s (market_reload).
        self._markets: MarketReload | None = None
        self._feed: MarketFeed | None = None
        self._normalizers: dict[StreamKey, list[Normalizer]] = {}
        self._watchers: dict[StreamKey, list[StreamWatcher]] = {}
        self._watchdog: Watchdog | None = None
        self._release_task: asyncio.Task[None] | None = None
        self._executions = ExecutionReporter()
        self._sequence = spec.sequence_check() if spec.sequence_check is not None else None
        self._restarting: dict[Any, asyncio.Task[None]] = {}
        self._resolved: set[int] = set()
        self._book_ranges: dict[str, BookRange] = {}  # books started from a REST snapshot
        self._private: PrivateStreams | None = None
        self._account: AccountWatch | None = None
        self._flush_due = False  # a dispatch of the events read is scheduled
        self._flushed_at = -1e9  # the event loop's time of the last one
        self._wire: WireTap | None = None  # the venue's public frames taken before ccxt's handler

    # ---- lifecycle

    async def prepare(self) -> None:
        replay_url = self.config.replay_url  # a stand-in in another process, or None
        if self.replay_options is not None:
            # Imported only here: a venue run without --replay never loads its stand-in.
            from trademesh.venues.replay.loader import open_standin

            self.replay = open_standin(self.spec.standin, self.replay_options)
            replay_url = await self.replay.start()
        hooks = Hooks(
            self._on_message,
            self._on_malformed,
            self._on_frame,
            self._on_resolve,
            self._on_watch,
            self._on_rest_book,
        )
        # Against the in-process stand-in ccxt's pacing would only slow the replay (Binance's
        # 1,000-level depth snapshots a second apart): it has no limits to keep to, and its
        # `ratelimit` fault answers 429s where a test wants the venue's. A stand-in in another
        # process (replay_url) gets the production connector, paced as it is live.
        self.exchange = create_exchange(
            self.spec,
            hooks,
            self.config.sandbox,
            replay_url,
            self.config.request_timeout_s,
            throttled=self.replay is None,
        )
        try:
            await load_markets(self.exchange, self.name, self._backoff())
            replayed = self.replay.adapter.native_symbols() if self.replay is not None else None
            symbols = choose_symbols(self.spec, self.config, self.exchange.markets, replayed)
            self._markets = MarketReload(self.spec, self.exchange, symbols, self.config.markets_reload_s)
        except BaseException:
            await self.stop()  # the ccxt session and the stand-in, before the error ends the process
            raise
        self.trading = LiveTrading(self.spec, self.exchange, lambda: [i.symbol for i in self._instruments])

    async def start(self, context: VenueContext, streams: set[StreamKey]) -> None:
        self._feed = context.feed
        self._executions.publish = context.on_execution
        if self.spec.wire is not None:
            natives = {i.native_symbol: i.symbol for i in self._instruments}
            self._wire = self.spec.wire(context.feed, self.exchange, natives, self.config.timeframes)
        await self.set_streams(streams)
        if self._markets is not None:
            self._markets.start()
        self._watchdog = Watchdog(self.exchange, self.config.watchdog_silence_s, self._replay_over)
        self._watchdog.start()
        if self.replay is not None:
            self._release_task = asyncio.create_task(self._release_replay(), name="replay-release")
        if self.spec.private_streams and has_credentials(self.spec):
            liquidation = self.spec.margin.liquidation if self.spec.margin is not None else None
            self._private = PrivateStreams(
                self.name, self.exchange, self._report, self._backoff, self.spec.stop_stream, liquidation
            )
            self._private.start()
        if self.account_feed is AccountFeed.PUSH:
            self._account = AccountWatch(self.name, self.exchange, context.on_account, self._backoff)
            self._account.start()

    def _backoff(self) -> Backoff:
        return Backoff(self.config.backoff_initial_s, self.config.backoff_max_s)

    def _replay_over(self) -> bool:
        """After a replay has played out, silence is expected: the watchdog leaves it alone."""
        return self.replay is not None and self.replay.exhausted

    def staleness(self) -> Staleness:
        return Staleness(factor=self.config.stale_factor, floor_s=self.config.stale_floor_s)

    def silence_expected(self) -> bool:
        """Silence says nothing after a replay has played out, nor during an unpaced one: its
        frames come as fast as the machine goes, so a stream's pauses are not the venue's."""
        return self._replay_over() or (self.replay is not None and not self.replay.options.paced)

    async def _release_replay(self) -> None:
        """Start the replay once the market-data subscribers listen, so they see the whole
        session: after the first one, once none has come for `_SUBSCRIBERS_SETTLE_S` (ingest
        subscribes a stream per channel, one after another; released at the first, a later
        channel missed the session's first frames)."""
        assert self._feed is not None and self.replay is not None
        feed, loop = self._feed, asyncio.get_running_loop()
        while feed.fanout is None or feed.fanout.total() == 0:  # noqa: ASYNC110 (polls the fanout)
            await asyncio.sleep(0.02)
        seen, since = feed.fanout.total(), loop.time()
        while loop.time() - since < _SUBSCRIBERS_SETTLE_S:
            await asyncio.sleep(0.02)
            if (now := feed.fanout.total()) != seen:
                seen, since = now, loop.time()
        self.replay.backlog = feed.fanout.max_depth
        self.replay.settle = self._settle_replay
        self.replay.release()

    async def _settle_replay(self) -> bool:
        """The venue's own work on the frames its client has handled (the stand-in's drain waits
        for it): its broken books' connections closed (to subscribe again), every stream whose
        watch failed watching again, the events read dispatched now (not flush_ms later), and
        every batch handed to its subscriber's stream. True when it waited for a connection or
        a stream: their new subscriptions' answers are more frames to handle."""
        assert self._feed is not None and self._feed.fanout is not None
        waited = False
        while self._restarting:
            waited = True
            await asyncio.wait(list(self._restarting.values()))
        while any(w.backing_off for watchers in self._watchers.values() for w in watchers):
            waited = True
            await asyncio.sleep(0.005)
        self._flush()
        while self._feed.fanout.max_depth() > 0:  # noqa: ASYNC110 (polls the subscribers' queues)
            await asyncio.sleep(0.005)
        return waited

    async def stop(self) -> None:
        if self._markets is not None:
            await self._markets.stop()
        if self._account is not None:
            await self._account.stop()
        if self._private is not None:
            await self._private.stop()
        if self._release_task is not None:
            self._release_task.cancel()
        if self._watchdog is not None:
            await self._watchdog.stop()
        for key in list(self._watchers):
            await self._close(key)
        if self.exchange is not None:
            await self.exchange.close()
        if self.replay is not None:
            await self.replay.stop()

    # ---- streams

    @property
    def _instruments(self) -> list[Instrument]:
        """The instruments listed now (a reload swaps the list whole)."""
        return self._markets.instruments if self._markets is not None else []

    def instruments(self) -> Sequence[Instrument]:
        return self._instruments

    def not_trading(self, symbol: str) -> str | None:
        return self._markets.not_trading(symbol) if self._markets is not None else None

    def default_streams(self) -> set[StreamKey]:
        """The config's channels of every instrument; the funding channel of the perpetuals only, the
        mark, open interest and liquidations channels of the derivatives only."""
        return {
            StreamKey(i.symbol, channel)
            for i in self._instruments
            for channel in self.config.channels
            if channel_refused(i, channel) is None
        }

    async def set_streams(self, streams: set[StreamKey]) -> None:
        for key in set(self._watchers) - streams:
            await self._close(key)
        for key in sorted(streams - set(self._watchers), key=lambda k: (k.symbol, k.channel.value)):
            self._open(key)

    async def reconnect(self) -> int:
        for client in list(self.exchange.clients.values()):
            client.reset(ccxt.NetworkError("reconnect asked by an operator (Admin/Reconnect)"))
            await client.close()
        return len(self._watchers)

    def _open(self, key: StreamKey) -> None:
        assert self._feed is not None
        feed, ex, symbol = self._feed, self.exchange, key.symbol
        stats = feed.streams.get(key)
        book: BookNormalizer | None = None
        jobs: list[tuple[Normalizer, Any]] = []
        if key.channel is Channel.TRADES:
            jobs.append((TradeNormalizer(feed, symbol), lambda: ex.watch_trades(symbol)))
        elif key.channel is Channel.BOOK:
            book = BookNormalizer(feed, symbol, self._resolved, self._book_ranges)
            depth = self.spec.book_depth
            jobs.append((book, lambda: ex.watch_order_book(symbol, depth)))
        elif key.channel is Channel.TICKERS:
            jobs += self._ticker_jobs(symbol)
        elif key.channel is Channel.FUNDING:
            jobs.append(self._funding_job(key))
        elif key.channel in DERIVATIVE_CHANNELS:
            streams = self.spec.derivatives or DerivativeStreams()
            jobs.append(derivative_job(streams, key, feed, ex, self.config.open_interest_poll_s))
        else:
            for tf in self.config.timeframes:
                name = tf.label
                jobs.append(
                    (
                        CandleNormalizer(feed, symbol, tf, name),
                        functools.partial(ex.watch_ohlcv, symbol, name),
                    )
                )
        self._normalizers[key] = list(dict.fromkeys(normalizer for normalizer, _ in jobs))  # each once
        resync: BookResync | None = book
        if self._wire is not None:
            taken, wire_book = self._wire.open(key)
            if taken:  # its frames become events before ccxt's handler: ccxt's caches are not read
                self._normalizers[key], resync = [], wire_book
        if key.channel is Channel.BOOK:
            self._made_up(key)
        self._watchers[key] = []
        for _, watch in jobs:
            watcher = StreamWatcher(
                key,
                watch,
                stats,
                feed,
                self._backoff(),
                self._on_message,
                lambda: retry_after(ex),
                resync,
                self.spec.book_checksum,
            )
            watcher.start()
            self._watchers[key].append(watcher)

    def _ticker_jobs(self, symbol: str) -> list[tuple[Normalizer, Any]]:
        """The ticker's watches: the spec's ticker stream, and with `ticker_stats` ccxt's 24h
        ticker beside it for the volume (one normalizer reads both caches)."""
        ex, feed = self.exchange, self._feed_or_fail()
        if self.spec.ticker_method != "watch_bids_asks":
            normalizer = TickerNormalizer(feed, symbol, "tickers", open_24h=self.spec.ticker_open)
            return [(normalizer, lambda: ex.watch_ticker(symbol))]
        stats = "tickers" if self.spec.ticker_stats else None
        normalizer = TickerNormalizer(feed, symbol, "bidsasks", stats, self.spec.ticker_open)
        jobs: list[tuple[Normalizer, Any]] = [(normalizer, lambda: ex.watch_bids_asks([symbol]))]
        if stats is not None:
            jobs.append((normalizer, lambda: ex.watch_ticker(symbol)))
        return jobs

    def _funding_job(self, key: StreamKey) -> tuple[Normalizer, Any]:
        """The funding rate from the venue's stream (LiveSpec.funding_watch), else polled by REST
        every funding_poll_s (Admin's poll_interval_ms says so)."""
        feed, method = self._feed_or_fail(), self.spec.funding_watch
        normalizer = FundingNormalizer(feed, key.symbol)
        if method is not None and self.config.funding_stream:
            feed.streams.get(key).poll_interval_ms = 0
            return normalizer, functools.partial(getattr(self.exchange, method), key.symbol)
        feed.streams.get(key).poll_interval_ms = round(self.config.funding_poll_s * 1000)
        return normalizer, FundingPoll(self.exchange, key.symbol, self.config.funding_poll_s)

    def _feed_or_fail(self) -> MarketFeed:
        assert self._feed is not None, "streams open once the venue has started"
        return self._feed

    def _made_up(self, key: StreamKey) -> None:
        """A replayed book the stand-in starts from something it made up (the capture holds no
        snapshot of it) is not the exchange's: its stream says so (INCOMPLETE, and why), and its
        subscribers get a GAP notice, now and on subscribing."""
        native = next((i.native_symbol for i in self._instruments if i.symbol == key.symbol), None)
        why = self.replay.adapter.made_up_books().get(native or "") if self.replay is not None else None
        if not why or self._feed is None:
            return
        stats = self._feed.streams.get(key)
        stats.incomplete = why
        log.warning("%s %s book: incomplete: %s", self.name, key.symbol, why)
        self._feed.gap(key.symbol, key.channel, stats.incomplete_notice())
        self._feed.flush()

    async def _close(self, key: StreamKey) -> None:
        for watcher in self._watchers.pop(key, []):
            await watcher.stop()
        self._normalizers.pop(key, None)
        if self._wire is not None:
            self._wire.close(key)

    def _on_message(self) -> None:
        """After every venue frame (and every watch return): read what changed in ccxt's caches.

        Each frame is read on its own (ccxt keeps only the latest ticker of a symbol), but the
        events read are dispatched at most once per `flush_ms`: a frame after a quiet spell goes
        out when this loop iteration ends, one within `flush_ms` of the last dispatch waits for the
        rest of it with whatever else comes. Under load many frames make one message per
        subscriber (gRPC's per-message costs, the venue's and the consumer's, paid once for many);
        the events and their order are the same.
        """
        if self._feed is None:
            return
        changed = False
        for normalizers in self._normalizers.values():
            for normalizer in normalizers:
                changed |= normalizer.poll(self.exchange)
        self._resolved.clear()
        if changed:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if not self._flush_due:
            self._flush_due = True
            loop = asyncio.get_running_loop()
            wait = self._flushed_at + self.config.flush_ms / 1000 - loop.time()
            if wait > 0:
                loop.call_later(wait, self._flush)
            else:
                loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_due = False
        self._flushed_at = asyncio.get_running_loop().time()
        if self._feed is not None:
            self._feed.flush()

    def _on_resolve(self, result: Any) -> None:
        self._resolved.add(id(result))

    def _on_watch(self, client: Any) -> None:
        watcher = current_watcher()
        if watcher is not None and client is not None:
            watcher.watching(client)

    def _on_rest_book(self, symbol: str, book: Any, depth: int | None) -> None:
        self._book_ranges[symbol] = BookRange.of_snapshot(book, depth)
        if self._wire is not None:
            self._wire.rest_book(symbol, book, depth)  # a book of the tap's starts: its snapshot goes out
            self._schedule_flush()

    def _on_frame(self, client: Any, message: Any) -> bool:
        """Before ccxt sees a frame: the wire tap's frames become events here (ccxt does not see
        them); drop book updates that follow a missed one, and resync."""
        if self._wire is not None and self._feed is not None:
            try:
                emitted = self._wire.handle(client, message)
            except Exception as exc:  # a frame of ours the tap could not read
                self._on_malformed(exc)
                return False
            if emitted is not None:
                if emitted:
                    self._schedule_flush()
                return False
        if self._sequence is None:
            return True
        broken = self._sequence.check(message, client)
        if broken is None:
            return True
        if broken.reason:
            self._resync(client, broken.native_symbol, broken.reason)
        return False

    def _resync(self, client: Any, native: str, reason: str) -> None:
        """The venue's book sequence broke: rebuild from a fresh subscription (a new snapshot)."""
        log.warning("%s %s: book sequence broken (%s); resubscribing", self.name, native or "*", reason)
        served = self._markets.served() if self._markets is not None else []  # delisted ones' too
        symbols = [i.symbol for i in served if native in ("", i.native_symbol)]
        for symbol in symbols:
            for normalizer in self._normalizers.get(StreamKey(symbol, Channel.BOOK), []):
                if isinstance(normalizer, BookNormalizer):
                    normalizer.resync(f"venue book sequence broken ({reason}): rebuilt from a new snapshot")
        if client not in self._restarting:
            task = asyncio.get_running_loop().create_task(self._restart(client, reason))
            self._restarting[client] = task  # holds the task until it is done

    async def _restart(self, client: Any, reason: str) -> None:
        try:
            client.reset(ccxt.NetworkError(f"resubscribing after a broken book sequence ({reason})"))
            await client.close()
        finally:
            self._restarting.pop(client, None)

    def _on_malformed(self, exc: Exception) -> None:
        log.warning("%s: skipped a venue message that could not be understood: %s", self.name, str(exc)[:200])
        if self._feed is not None:
            for key in self._watchers:
                self._feed.streams.get(key).malformed_messages += 1

    # ---- trading and history

    def _trading(self) -> LiveTrading:
        if self.trading is None:
            raise FailedPrecondition(f"venue {self.name} is not started")
        return self.trading

    async def candles(
        self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int, limit: int
    ) -> list[Candle]:
        return await self._trading().candles(symbol, timeframe, start_ns, end_ns or time.time_ns(), limit)

    async def trades(self, symbol: str, since_ns: int, end_ns: int, limit: int) -> TradesRead:
        return await self._trading().trades(symbol, since_ns, end_ns, limit)

    async def tickers(self, symbols: Sequence[str]) -> list[md.SymbolTicker]:
        return await self._trading().tickers(list(symbols))

    async def place_order(self, request: OrderRequest) -> tuple[Order, bool]:
        # Its private-stream updates may come before the answer, and without what the exchange
        # does not keep (a stop's trigger, the reduce-only flag): expected by its client id.
        if (request.type.is_stop or request.reduce_only) and not request.client_order_id:
            request = dataclasses.replace(request, client_order_id=new_client_order_id())
        self._executions.expect_stop(request)
        self._executions.expect_reduce_only(request)
        order, duplicate = await self._trading().place_order(request)
        if duplicate:
            return self._executions.mend(order), duplicate
        return self._report(order), duplicate

    async def cancel_order(self, ref: OrderRef, reason: str) -> Order:
        key = self._executions.expect_cancel(ref.order_id, ref.client_order_id, reason)
        try:
            return self._report(await self._trading().cancel_order(ref))
        finally:
            self._executions.forget_cancel(key)

    async def amend_order(self, ref: OrderRef, change: Amendment) -> tuple[Order, bool]:
        """ccxt's edit_order, for what the exchange changes in place: an open limit order's price
        and total size under its own client id (NotInPlace otherwise: cancel and replace)."""
        order = await self.get_order(ref)
        if (not_trading := self.not_trading(order.symbol)) is not None:
            raise FailedPrecondition(f"{not_trading}: order {order.order_id} not amended")
        if change.client_order_id and change.client_order_id != order.client_order_id:
            raise NotInPlace(f"{self.name} keeps an order's client id: a new one means a new order")
        if order.type is not OrderType.LIMIT or change.trigger_price is not None:
            raise NotInPlace(f"{self.name} edits limit orders only")
        if not order.status.is_open:
            raise FailedPrecondition(f"order {order.order_id} is {order.status.value}, not open")
        require_unfilled(order, change)
        instrument = next((i for i in self._instruments if i.symbol == order.symbol), None)
        if instrument is None:
            raise NotInPlace(f"{order.symbol} is not listed here any more")
        request = amended_request(order, change, instrument)
        edited = await self._trading().edit_order(order, request)
        return self._executions.report(edited, amended=True), False

    async def cancel_all_orders(self, symbol: str | None, reason: str) -> list[Order]:
        token = self._executions.expect_cancel_all(symbol, reason)
        try:
            return [self._report(order) for order in await self._trading().cancel_all_orders(symbol)]
        finally:
            self._executions.forget_cancel_all(token)

    def _report(self, order: Order, fill: Fill | None = None) -> Order:
        return self._executions.report(order, fill)

    async def get_order(self, ref: OrderRef) -> Order:
        return self._executions.mend(await self._trading().get_order(ref))

    async def open_orders(self, symbol: str | None) -> list[Order]:
        return [self._executions.mend(order) for order in await self._trading().open_orders(symbol)]

    async def balances(self) -> list[Balance]:
        return await self._trading().balances()

    async def positions(self, symbol: str | None) -> list[Position]:
        return await self._trading().positions(symbol)

    async def funding_payments(self, symbol: str | None, since_ns: int, limit: int) -> list[FundingPayment]:
        return await self._trading().funding_payments(symbol, since_ns, limit)

    async def set_leverage(self, symbol: str, leverage: Decimal, mode: MarginMode | None) -> LeverageSetting:
        trading = self._trading()
        trading.require_credentials()
        assert trading.leverage is not None, "asked only of a venue with margin_modes"
        return await trading.leverage.set(symbol, leverage, mode)

    async def leverage(self, symbol: str) -> LeverageSetting:
        trading = self._trading()
        trading.require_credentials()
        assert trading.leverage is not None, "asked only of a venue with margin_modes"
        return await trading.leverage.read(symbol)

    def native_switch(self) -> NativeSwitch | None:
        if not self.spec.native_cancel_after or self.trading is None or not self.trading.has_credentials():
            return None
        return NativeSwitch(disarms=self.spec.native_cancel_after_disarms)

    async def cancel_all_after(self, ttl_ms: int) -> bool:
        return await self._trading().cancel_all_after(ttl_ms)
