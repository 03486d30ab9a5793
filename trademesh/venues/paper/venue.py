"""PaperVenue: a live venue's market data (or its replayed session), with our orders matched by
the sim's engine against that venue's book and trades instead of being sent to the exchange."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from decimal import Decimal

from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.matching.fees import FeeAsset
from trademesh.core.domain.matching.funding import FundingTerms
from trademesh.core.domain.model import (
    Amendment,
    Balance,
    Candle,
    Channel,
    FundingPayment,
    Instrument,
    InstrumentKind,
    LeverageSetting,
    MarginMode,
    Order,
    OrderRequest,
    Position,
    StreamKey,
    Timeframe,
)
from trademesh.core.platform.errors import FailedPrecondition
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.paper.config import PaperConfig, paper_margin
from trademesh.venues.paper.matcher import PaperMatcher
from trademesh.venues.runtime.stats import Staleness
from trademesh.venues.runtime.trades import TradesRead
from trademesh.venues.runtime.venue import AccountFeed, OrderRef, Venue, VenueContext

__all__ = ["PaperVenue", "tradable"]

log = logging.getLogger(__name__)

_DEFAULT_MAKER, _DEFAULT_TAKER = Decimal("0.001"), Decimal("0.001")
# What the matching engine needs of every symbol it trades, whatever the subscribers ask.
_MATCHED = (Channel.BOOK, Channel.TRADES)


def tradable(instrument: Instrument) -> bool:
    """What the sim's engine trades: spot pairs and linear perpetuals settled in the quote."""
    if instrument.kind is InstrumentKind.SPOT:
        return True
    return (
        instrument.kind is InstrumentKind.PERPETUAL
        and not instrument.inverse
        and instrument.settle_asset == instrument.quote_asset
        and instrument.contract_size > 0
    )


class PaperVenue(Venue):
    """Everything but trading is the wrapped venue's (its market data streams unchanged);
    trading is the engine's, with the account of the paper config."""

    supports_stop_orders = True  # the engine holds them and triggers them on the venue's trades
    paper = True
    amends_orders = (
        True  # in place, by the sim's engine (trademesh.core.domain.matching.exchange, "Amending")
    )
    account_feed = AccountFeed.PUSH  # its account changes only with the engine's own executions

    def __init__(self, inner: Venue, config: PaperConfig) -> None:
        self.inner = inner
        self.name = inner.name
        # Market data history and tickers are the wrapped venue's, as it serves them.
        self.trade_history = inner.trade_history
        self.all_tickers = inner.all_tickers
        self.channels = inner.channels  # its market data is the wrapped venue's
        self.config = config
        self.exchange: SimExchange | None = None
        self.matcher: PaperMatcher | None = None
        self._latency_s = config.latency_ms / 1000

    # ---- lifecycle and market data: the wrapped venue's

    async def prepare(self) -> None:
        await self.inner.prepare()
        traded = [i for i in self.inner.instruments() if tradable(i)]
        left_out = [i.symbol for i in self.inner.instruments() if not tradable(i)]
        if left_out:
            log.warning("paper venue %s trades none of %s (inverse, options)", self.name, ", ".join(left_out))
        maker, taker = self._fee_rates(traded)
        self.exchange = SimExchange(
            self.name,
            traded,
            maker_fee_rate=maker,
            taker_fee_rate=taker,
            balances=dict(self.config.balances),
            clock=time.time_ns,
            price_band_ratio=self.config.price_band_ratio,
            closed_orders_kept=self.config.closed_orders_kept,
            funding={
                i.symbol: FundingTerms(self.config.funding_rate, self.config.funding_interval_s)
                for i in traded
                if i.kind is InstrumentKind.PERPETUAL
            },
            fee_asset=self._fee_asset(),
            margin=paper_margin(self.config),
        )
        if self.exchange.margined:  # its perpetuals: SetLeverage, and liquidation at the mark
            self.margin_modes = (MarginMode.CROSS, MarginMode.ISOLATED)
            self.margin_moves_with_market = True  # StreamAccount sends the marks' moves too
            self.liquidates = True
        self.matcher = PaperMatcher(self.exchange, [i.symbol for i in traded])
        log.info(
            "paper venue %s: %d instruments matched against its book, maker fee %s, taker fee %s "
            "(spot fees in the %s asset), latency %d ms",
            self.name,
            len(traded),
            maker,
            taker,
            self._fee_asset().value,
            self.config.latency_ms,
        )

    def _fee_asset(self) -> FeeAsset:
        """The config's rule, else the exchange's own (its spec.py)."""
        configured = self.config.fee_asset
        return self.inner.spot_fee_asset if configured is None else configured

    def _fee_rates(self, traded: Sequence[Instrument]) -> tuple[Decimal, Decimal]:
        """The config's rates, else the venue's (the highest of its instruments': one schedule)."""
        makers = [i.maker_fee_rate for i in traded if i.maker_fee_rate is not None]
        takers = [i.taker_fee_rate for i in traded if i.taker_fee_rate is not None]
        maker = self.config.maker_fee_rate
        taker = self.config.taker_fee_rate
        if maker is None:
            maker = max(makers) if makers else _DEFAULT_MAKER
        if taker is None:
            taker = max(takers) if takers else _DEFAULT_TAKER
        return maker, taker

    async def start(self, context: VenueContext, streams: set[StreamKey]) -> None:
        matcher = self._matcher()
        matcher.executions.publish = context.on_execution
        context.feed.tap = matcher
        await self.inner.start(context, self._with_matched(streams))

    async def stop(self) -> None:
        await self.inner.stop()

    def instruments(self) -> Sequence[Instrument]:
        return self.inner.instruments()

    def not_trading(self, symbol: str) -> str | None:
        """The wrapped venue's: a market its exchange delisted, or lists inactive, is not paper-traded."""
        return self.inner.not_trading(symbol)

    def default_streams(self) -> set[StreamKey]:
        return self._with_matched(self.inner.default_streams())

    async def set_streams(self, streams: set[StreamKey]) -> None:
        await self.inner.set_streams(self._with_matched(streams))

    def _with_matched(self, streams: set[StreamKey]) -> set[StreamKey]:
        """The streams asked, and the book and trades of every symbol the engine trades."""
        symbols = [] if self.matcher is None else list(self.matcher.mirrors)
        return streams | {StreamKey(symbol, channel) for symbol in symbols for channel in _MATCHED}

    async def reconnect(self) -> int:
        return await self.inner.reconnect()

    async def candles(
        self, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int, limit: int
    ) -> list[Candle]:
        return await self.inner.candles(symbol, timeframe, start_ns, end_ns, limit)

    async def trades(self, symbol: str, since_ns: int, end_ns: int, limit: int) -> TradesRead:
        return await self.inner.trades(symbol, since_ns, end_ns, limit)

    async def tickers(self, symbols: Sequence[str]) -> list[md.SymbolTicker]:
        return await self.inner.tickers(symbols)

    def staleness(self) -> Staleness:
        return self.inner.staleness()

    def silence_expected(self) -> bool:
        return self.inner.silence_expected()

    # ---- trading: the engine's

    async def place_order(self, request: OrderRequest) -> tuple[Order, bool]:
        exchange, matcher = self._exchange(), self._matcher()
        if request.symbol in matcher.mirrors and request.symbol not in matcher.ready:
            raise FailedPrecondition(
                f"paper venue {self.name} has no {request.symbol} book yet: its market data has not come"
            )
        await self._travel()
        matcher.settle(request.symbol)
        return exchange.place(request)

    async def cancel_order(self, ref: OrderRef, reason: str) -> Order:
        await self._travel()
        self._matcher().settle()
        return self._exchange().cancel(ref.order_id or None, ref.client_order_id or None, reason)

    async def amend_order(self, ref: OrderRef, change: Amendment) -> tuple[Order, bool]:
        await self._travel()
        self._matcher().settle()
        return self._exchange().amend(ref.order_id or None, ref.client_order_id or None, change)

    async def cancel_all_orders(self, symbol: str | None, reason: str) -> list[Order]:
        await self._travel()
        self._matcher().settle(symbol)
        return self._exchange().cancel_all(symbol, reason)

    async def get_order(self, ref: OrderRef) -> Order:
        self._matcher().settle()
        return self._exchange().get(ref.order_id or None, ref.client_order_id or None)

    async def open_orders(self, symbol: str | None) -> list[Order]:
        self._matcher().settle(symbol)
        return self._exchange().open_orders(symbol)

    async def balances(self) -> list[Balance]:
        self._matcher().settle()
        return self._exchange().balances()

    async def positions(self, symbol: str | None) -> list[Position]:
        self._matcher().settle(symbol)
        return self._exchange().positions(symbol)

    async def set_leverage(self, symbol: str, leverage: Decimal, mode: MarginMode | None) -> LeverageSetting:
        return self._exchange().set_leverage(symbol, leverage, mode)

    async def leverage(self, symbol: str) -> LeverageSetting:
        return self._exchange().leverage(symbol)

    def account_as_of_ns(self) -> int:
        """The engine stamps its fills with the wall clock, and an account answer (made at once,
        without awaiting) holds every fill made so far."""
        return time.time_ns()

    async def funding_payments(self, symbol: str | None, since_ns: int, limit: int) -> list[FundingPayment]:
        return self._exchange().funding_payments(symbol, since_ns, limit)

    async def _travel(self) -> None:
        """The order's way to the venue: the market moves on meanwhile (its events keep coming)."""
        if self._latency_s > 0:
            await asyncio.sleep(self._latency_s)

    def _exchange(self) -> SimExchange:
        if self.exchange is None:
            raise FailedPrecondition(f"paper venue {self.name} is not prepared yet")
        return self.exchange

    def _matcher(self) -> PaperMatcher:
        if self.matcher is None:
            raise FailedPrecondition(f"paper venue {self.name} is not prepared yet")
        return self.matcher
