"""The prices the inspector checks intents against and marks positions at: each venue's book,
trades and tickers, straight from its MarketData stream, for the markets the inspector follows
(those the detectors' active patches trade, from the start: core.patch_markets; and every
market it has dealt with: the set grows as intents come, the stream opened again with it).

Every trade is handed on (`on_trade`: the emulated stops). The board keeps each market's latest
quote (best bid and ask from the book, the ticker's while no book is held; the last trade) and
its quotes by event time, `keep_ns` of them (core.tops: the book's top and the last trade as a
backtest replaying the recorded events holds them then), so an intent is checked against the
quote as of its signal's time (`view(..., as_of_ns)`), as the backtest checks it; the latest when
the history does not reach back (a market followed since, a lost stream: counted). The marks the
core sees are sampled from the latest by the shell and journaled (core.inspector.runtime)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import grpc

from core.backoff import Backoff
from core.inspector.engine.market import MarketView
from core.inspector.metrics import QUOTE_AS_OF_LATEST
from core.inspector.venues import VenueLinks
from core.retry import sleep_unless
from core.tops import Timeline, TopBook
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["KEEP_NS", "MarketBoard", "OnTrade", "Quote"]

log = logging.getLogger(__name__)

OnTrade = Callable[[str, str, Decimal], Awaitable[None]]
_FIRST_QUOTE_S = 2.0  # an intent of a market not followed yet waits this long for its first quote
# Quotes kept by event time: an intent comes the detector's hold and the advisor's decision
# after its signal (seconds), so 10 s reach back to any intent not stale already.
KEEP_NS = 10_000_000_000
_CHANNELS = [md.CHANNEL_BOOK, md.CHANNEL_TRADES, md.CHANNEL_TICKERS]


@dataclass
class Quote:
    bid: Decimal | None = None
    ask: Decimal | None = None
    last: Decimal | None = None

    def view(self) -> MarketView:
        return MarketView(self.bid, self.ask, self.last)

    @property
    def mark(self) -> Decimal | None:
        if self.bid is not None and self.ask is not None:
            return (self.bid + self.ask) / 2
        return self.last


def _price(text: str) -> Decimal | None:
    return Decimal(text) if text else None


def _book_gap(notice: md.StreamNotice) -> bool:
    """A GAP notice of the book's stream (or of every stream): book events may be missing."""
    return notice.kind == md.NOTICE_KIND_GAP and notice.channel in (md.CHANNEL_BOOK, md.CHANNEL_UNSPECIFIED)


class _Market:
    """One market's book (its top), and its quotes by event time while the book is held."""

    __slots__ = ("book", "history", "usable")

    def __init__(self, keep_ns: int) -> None:
        self.book = TopBook()
        self.usable = False  # until the book's snapshot
        self.history: Timeline[MarketView] = Timeline(keep_ns)

    def lost(self) -> None:
        """Events were missed: no book, no history, until the next snapshot."""
        self.usable = False
        self.history.clear()


class _VenueFollower:
    def __init__(self, venue: str, board: MarketBoard) -> None:
        self.venue = venue
        self.board = board
        self.symbols: set[str] = set()
        self.changed = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(0.2, 5.0)
        while not stop.is_set():
            if not self.symbols:
                await _wait_any(stop, self.changed)
                continue
            self.changed.clear()
            try:
                await self._follow(stop, backoff)
                continue  # the symbol set grew, or stop
            except grpc.aio.AioRpcError as exc:
                reason = f"{exc.code().name}: {exc.details()}"
            except Exception as exc:  # no such venue yet (the registry may come later)
                reason = str(exc)
            self.board.lost(self.venue)
            delay = backoff.next()
            log.warning("inspector: %s market stream lost (%s); again in %.1f s", self.venue, reason, delay)
            await sleep_unless(stop, delay)

    async def _follow(self, stop: asyncio.Event, backoff: Backoff) -> None:
        desk = self.board.links.desk(self.venue)
        request = md.SubscribeRequest(symbols=sorted(self.symbols), channels=_CHANNELS)
        call = desk.marketdata.Subscribe(request, metadata=self.board.links.metadata)
        ended = asyncio.ensure_future(_wait_any(stop, self.changed))
        try:
            reader = asyncio.ensure_future(self._read(call, backoff))
            done, _ = await asyncio.wait({reader, ended}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                reader.result()
                raise grpc.aio.AioRpcError(
                    grpc.StatusCode.UNAVAILABLE, None, None, "the venue ended the stream"
                )
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, grpc.aio.AioRpcError):
                await reader
        finally:
            ended.cancel()
            call.cancel()

    async def _read(self, call: object, backoff: Backoff) -> None:
        async for response in call:  # type: ignore[attr-defined]
            backoff.reset()
            for event in response.events:
                await self.board.take(self.venue, event)


async def _wait_any(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


class MarketBoard:
    def __init__(self, links: VenueLinks, on_trade: OnTrade, keep_ns: int = KEEP_NS) -> None:
        self.links = links
        self.on_trade = on_trade
        self.keep_ns = keep_ns
        self.quotes: dict[tuple[str, str], Quote] = {}
        self._markets: dict[tuple[str, str], _Market] = {}
        self._followers: dict[str, _VenueFollower] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stop: asyncio.Event | None = None
        self._arrived: dict[tuple[str, str], asyncio.Event] = {}

    def start(self, stop: asyncio.Event) -> None:
        self._stop = stop

    def follow(self, venue: str, symbol: str) -> None:
        """Follow this market from now on (a no-op when followed already)."""
        follower = self._followers.get(venue)
        if follower is None:
            follower = self._followers[venue] = _VenueFollower(venue, self)
            if self._stop is not None:
                self._tasks.append(asyncio.create_task(follower.run(self._stop), name=f"market {venue}"))
        if symbol not in follower.symbols:
            follower.symbols.add(symbol)
            follower.changed.set()

    def following(self) -> list[tuple[str, str]]:
        return sorted((venue, symbol) for venue, f in self._followers.items() for symbol in f.symbols)

    async def view(self, venue: str, symbol: str, as_of_ns: int = 0) -> MarketView:
        """The market as of `as_of_ns` (an intent's signal time) when its quotes reach back to
        it; else (counted when a time was given) the market now: a market not followed yet is
        followed, and its first quote (bid and ask) awaited a moment (a view without them when
        none comes)."""
        key = (venue, symbol)
        if as_of_ns > 0:
            market = self._markets.get(key)
            found = None if market is None else market.history.at(as_of_ns)
            if found is not None:
                return found
            QUOTE_AS_OF_LATEST.inc()
        quote = self.quotes.get(key)
        if quote is None or quote.bid is None or quote.ask is None:
            self.follow(venue, symbol)
            arrived = self._arrived.setdefault(key, asyncio.Event())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(arrived.wait(), _FIRST_QUOTE_S)
            quote = self.quotes.get(key)
        return quote.view() if quote is not None else MarketView()

    async def take(self, venue: str, event: md.MarketEvent) -> None:
        key = (venue, event.symbol)
        quote = self.quotes.setdefault(key, Quote())
        market = self._markets.get(key)
        if market is None:
            market = self._markets[key] = _Market(self.keep_ns)
        kind = event.WhichOneof("payload")
        if kind == "book_snapshot":
            snapshot = event.book_snapshot
            market.book.replace(snapshot.bids, snapshot.asks)
            market.usable = True
            self._top(key, quote, market, event.ts_event_ns)
        elif kind == "book_delta":
            if market.usable:
                delta = event.book_delta
                market.book.apply(delta.bids, delta.asks)
                self._top(key, quote, market, event.ts_event_ns)
        elif kind == "ticker":
            ticker = event.ticker
            if not market.usable:  # the book, when held, is the fresher
                quote.bid, quote.ask = _price(ticker.best_bid), _price(ticker.best_ask)
                self._arrive(key, quote)
            quote.last = _price(ticker.last_price) or quote.last
        elif kind == "trade":
            quote.last = Decimal(event.trade.price)
            self._add(quote, market, event.ts_event_ns)
            await self.on_trade(venue, event.symbol, quote.last)
        elif kind == "notice" and _book_gap(event.notice):
            market.lost()

    def lost(self, venue: str) -> None:
        """The venue's stream was lost: what came meanwhile is unknown."""
        for (at, _), market in self._markets.items():
            if at == venue:
                market.lost()

    def _top(self, key: tuple[str, str], quote: Quote, market: _Market, ts_ns: int) -> None:
        """The book's best prices into the quote, and its history when they moved."""
        book = market.book
        if (book.bid, book.ask) == (quote.bid, quote.ask) and market.history.newest is not None:
            return
        quote.bid, quote.ask = book.bid, book.ask
        self._add(quote, market, ts_ns)
        self._arrive(key, quote)

    @staticmethod
    def _add(quote: Quote, market: _Market, ts_ns: int) -> None:
        if market.usable and quote.bid is not None and quote.ask is not None:
            view = quote.view()
            if view != market.history.newest:
                market.history.add(ts_ns, view)

    def _arrive(self, key: tuple[str, str], quote: Quote) -> None:
        if quote.bid is not None and quote.ask is not None:
            arrived = self._arrived.pop(key, None)
            if arrived is not None:
                arrived.set()

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
