"""Turn the sim exchange's callbacks into market events on the runtime's feed.

Trades and book changes are published as they happen; tickers (with the 24h volume and 24h open
of the sim's own trades: trademesh/venues/sim/volume.py), open-candle updates and the
perpetuals' funding rates and mark prices on their own intervals; closed candles when their
interval ends.
"""

from __future__ import annotations

import time
from decimal import Decimal
from functools import partial

from trademesh.core.domain.decimals import format_decimal, format_optional
from trademesh.core.domain.matching.engine import LevelChange
from trademesh.core.domain.matching.exchange import SimExchange
from trademesh.core.domain.model import Channel, Execution, Side, StreamKey, Timeframe
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.runtime.trades import TradesRead
from trademesh.venues.runtime.venue import VenueContext
from trademesh.venues.sim.candles import CandleBook, IntCandle
from trademesh.venues.sim.trade_log import TradeLog
from trademesh.venues.sim.volume import RollingVolume

__all__ = ["SimPublisher"]

_BUY = Side.BUY


class SimPublisher:
    """A SimListener that publishes to a VenueContext; silent until attached."""

    def __init__(self, exchange: SimExchange) -> None:
        self.exchange = exchange
        self.context: VenueContext | None = None
        # Per channel, the symbols whose stream is on: a str lookup, no Enum hashing per event.
        self._on: dict[Channel, set[str]] = {channel: set() for channel in Channel}
        self.candles = {i.symbol: CandleBook(i.tick_size, i.lot_size) for i in exchange.instruments()}
        self.volumes = {i.symbol: RollingVolume() for i in exchange.instruments()}
        # Its latest trades of each symbol, for GetTrades.
        self.trade_logs = {i.symbol: TradeLog() for i in exchange.instruments()}
        self._scales = {i.symbol: (i.tick_size, i.lot_size) for i in exchange.instruments()}
        self._format = {i.symbol: exchange.formatters(i.symbol) for i in exchange.instruments()}
        self._last_price: dict[str, int] = {}
        self._last_ticker: dict[str, md.Ticker] = {}
        self._last_mark: dict[str, Decimal] = {}

    def attach(self, context: VenueContext, streams: set[StreamKey]) -> None:
        self.context = context
        self._on = {channel: {key.symbol for key in streams if key.channel is channel} for channel in Channel}

    @property
    def enabled(self) -> set[tuple[str, Channel]]:
        """The (symbol, channel) streams that are on."""
        return {(symbol, channel) for channel, symbols in self._on.items() for symbol in symbols}

    def on_trade(
        self, symbol: str, trade_id: str, price_ticks: int, lots: int, taker_side: Side, ts_ns: int
    ) -> None:
        self._last_price[symbol] = price_ticks
        self.volumes[symbol].add(ts_ns, price_ticks, lots)
        self.trade_logs[symbol].add(ts_ns, int(trade_id), price_ticks, lots, taker_side)
        self.candles[symbol].add_trade(ts_ns, price_ticks, lots, partial(self._closed, symbol, now_ns=ts_ns))
        if self.context is None or symbol not in self._on[Channel.TRADES]:
            return
        price_text, size_text = self._format[symbol]
        self.context.feed.trade(symbol, ts_ns, trade_id, price_text(price_ticks), size_text(lots), taker_side)

    def on_levels(self, symbol: str, changes: list[LevelChange]) -> None:
        if self.context is None or symbol not in self._on[Channel.BOOK]:
            return
        price_text, size_text = self._format[symbol]
        bids: list[tuple[str, str]] = []
        asks: list[tuple[str, str]] = []
        for side, price, lots in changes:
            (bids if side is _BUY else asks).append((price_text(price), size_text(lots)))
        self.context.feed.book_delta(symbol, time.time_ns(), bids, asks)

    def publish_book(self, symbol: str, reason: str = "") -> None:
        """The engine's whole book as a snapshot: with a reason, a resync, for when the feed's
        copy may be stale; without, the first book of a stream."""
        if self.context is None or symbol not in self._on[Channel.BOOK]:
            return
        book = self.exchange.book(symbol)
        bids = [self._level(symbol, level) for level in book.depth(Side.BUY)]
        asks = [self._level(symbol, level) for level in book.depth(Side.SELL)]
        self.context.feed.book_snapshot(symbol, time.time_ns(), bids, asks, resync_reason=reason)

    def on_execution(self, execution: Execution) -> None:
        if self.context is not None:
            self.context.on_execution(execution)

    def publish_tickers(self, now_ns: int) -> None:
        for symbol in self.candles:
            if self.context is None or symbol not in self._on[Channel.TICKERS]:
                continue
            ticker = self._ticker(symbol, now_ns)
            if ticker != self._last_ticker.get(symbol):
                self._last_ticker[symbol] = ticker
                self.context.feed.ticker(symbol, now_ns, ticker)

    def publish_funding(self, now_ns: int) -> None:
        """Each perpetual's funding as it stands (its config's rate, its next funding time, the
        mark it would be paid at): every call, changed or not, as a venue's mark price stream
        states it every second."""
        if self.context is None:
            return
        for symbol in self._on[Channel.FUNDING]:
            quote = self.exchange.funding_quote(symbol)
            if quote is not None:
                rate, next_ns, mark = quote
                funding = md.FundingRate(
                    rate=format_decimal(rate), next_funding_ns=next_ns, mark_price=format_optional(mark)
                )
                self.context.feed.funding_rate(symbol, now_ns, funding)

    def publish_marks(self, now_ns: int) -> None:
        """Each perpetual's mark price as the engine reckons it now (what its margin, liquidation
        and funding are reckoned at: SimExchange.mark; no index: the sim has no spot market to
        follow) whenever it changed, as a venue's mark price stream states it; nothing while the
        market has no price."""
        if self.context is None:
            return
        for symbol in self._on[Channel.MARK]:
            mark = self.exchange.mark(symbol)
            if mark is not None and mark != self._last_mark.get(symbol):
                self._last_mark[symbol] = mark
                self.context.feed.mark_price(symbol, now_ns, md.MarkPrice(mark_price=format_decimal(mark)))

    def publish_candles(self, now_ns: int) -> None:
        """Close ended intervals, then send every open candle's current state."""
        for symbol, book in self.candles.items():
            book.roll(now_ns, partial(self._closed, symbol, now_ns=now_ns))
            if self.context is None or symbol not in self._on[Channel.CANDLES]:
                continue
            for timeframe, candle in book.open.items():
                self.context.feed.candle(symbol, now_ns, book.to_candle(timeframe, candle, closed=False))

    def _closed(self, symbol: str, timeframe: Timeframe, candle: IntCandle, now_ns: int) -> None:
        if self.context is None or symbol not in self._on[Channel.CANDLES]:
            return
        book = self.candles[symbol]
        self.context.feed.candle(symbol, now_ns, book.to_candle(timeframe, candle, closed=True))

    def latest_ticker(self, symbol: str, now_ns: int) -> md.SymbolTicker | None:
        """The symbol's ticker as of now (GetTickers); None while it has no market (no book, no
        trade)."""
        ticker = self._ticker(symbol, now_ns)
        if not (ticker.best_bid or ticker.best_ask or ticker.last_price):
            return None
        return md.SymbolTicker(symbol=symbol, ts_event_ns=now_ns, ticker=ticker)

    def trades(self, symbol: str, since_ns: int, end_ns: int, limit: int) -> TradesRead:
        """Its kept trades of the symbol (GetTrades)."""
        price_text, size_text = self._format[symbol]
        return self.trade_logs[symbol].read(since_ns, end_ns, limit, price_text, size_text)

    def _ticker(self, symbol: str, now_ns: int) -> md.Ticker:
        book = self.exchange.book(symbol)
        tick, lot = self._scales[symbol]
        volume, last = self.volumes[symbol], self._last_price.get(symbol)
        lots, notional = volume.totals(now_ns)
        opened = volume.opening(now_ns, last)
        ticker = md.Ticker(
            base_volume_24h=format_decimal(lots * lot),
            quote_volume_24h=format_decimal(notional * tick * lot),
            open_24h="" if opened is None else self.exchange.price_str(symbol, opened),
        )
        bids, asks = book.depth(Side.BUY, 1), book.depth(Side.SELL, 1)
        if bids:
            ticker.best_bid, ticker.best_bid_size = self._level(symbol, bids[0])
        if asks:
            ticker.best_ask, ticker.best_ask_size = self._level(symbol, asks[0])
        if last is not None:
            ticker.last_price = self.exchange.price_str(symbol, last)
        return ticker

    def _level(self, symbol: str, level: tuple[int, int]) -> tuple[str, str]:
        return self.exchange.price_str(symbol, level[0]), self.exchange.size_str(symbol, level[1])
