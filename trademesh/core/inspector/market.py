"""The prices the inspector checks intents against and marks positions at: each venue's book,
trades and tickers, straight from its MarketData stream, for the markets the inspector follows
(those the detectors' active patches trade, from the start: trademesh.core.platform.patch_markets; and every
market it has dealt with: the set grows as intents come, the stream opened again with it).

Every trade is handed on (`on_trade`: the emulated stops). The board keeps each market's latest
quote (best bid and ask from the book, the ticker's while no book is held; the last trade) and
its quotes by event time, `keep_ns` of them (trademesh.core.domain.tops: the book's top and the
last trade as a backtest replaying the recorded events holds them then), so an intent is checked
against the quote as of its signal's time (`view(..., as_of_ns)`), as the backtest checks it; the
latest when the history does not reach back (a market followed since, a lost stream: counted).
The marks the core sees are sampled from the latest by the shell and journaled
(trademesh.core.inspector.runtime)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal

import grpc

from trademesh.core.domain.instruments import VenueInstruments, unknown_symbol
from trademesh.core.domain.tops import Timeline, TopBook
from trademesh.core.inspector.asked import AskedMarkets, Key
from trademesh.core.inspector.engine.market import MarketView
from trademesh.core.inspector.metrics import (
    FOLLOWED_MARKETS,
    FOLLOWED_VENUES,
    QUOTE_AS_OF_LATEST,
    REFUSED_MARKETS,
)
from trademesh.core.inspector.venues import VenueLinks
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.retry import sleep_unless, wait_any
from trademesh.core.platform.errors import TrademeshError
from trademesh.core.platform.rpc.status import REFUSED_AS_ASKED, call_failure
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["KEEP_NS", "MarketBoard", "OnTrade", "Quote"]

log = logging.getLogger(__name__)

OnTrade = Callable[[str, str, Decimal], Awaitable[None]]
_FIRST_QUOTE_S = 2.0  # an intent of a market not followed yet waits this long for its first quote
# Quotes kept by event time: an intent comes the detector's hold and the advisor's decision
# after its signal (seconds), so 10 s reach back to any intent not stale already.
KEEP_NS = 10_000_000_000
_CHANNELS = [md.CHANNEL_BOOK, md.CHANNEL_TRADES, md.CHANNEL_TICKERS]
_PRUNE_EVERY_S = 1.0


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
    """One venue's market stream, of the symbols followed there; open again when they change."""

    def __init__(self, venue: str, board: MarketBoard) -> None:
        self.venue = venue
        self.board = board
        self.symbols: set[str] = set()
        self.changed = asyncio.Event()
        self.task: asyncio.Task[None] | None = None
        self._said = ""  # the last failure logged: a spell of one failure is logged once

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(0.2, 5.0)
        while not stop.is_set():
            if not self.symbols:
                await wait_any(stop, self.changed)
                continue
            self.changed.clear()
            try:
                await self._follow(stop, backoff)
                continue  # the symbol set changed, or stop
            except grpc.aio.AioRpcError as exc:
                code, reason = exc.code(), call_failure(exc)
            except Exception as exc:  # no such venue yet (the registry may come later)
                code, reason = None, str(exc)
            self.board.lost(self.venue)
            if code in REFUSED_AS_ASKED:
                # Asking again unchanged would be refused again: wait for the markets to change.
                self._say(f"refused ({reason})", "not asked again until its markets change")
                await wait_any(stop, self.changed)
                continue
            delay = backoff.next()
            self._say(f"lost ({reason})", f"asked again after a backoff (now {delay:.1f} s)")
            await sleep_unless(stop, delay)

    def _say(self, what: str, then: str = "") -> None:
        """Logged when it differs from the last said (a venue away is one line, not one a retry)."""
        if what != self._said:
            self._said = what
            shown = f"{what}; {then}" if then else what
            log.warning("inspector: %s market stream %s", self.venue, shown, extra={"venue": self.venue})

    async def _follow(self, stop: asyncio.Event, backoff: Backoff) -> None:
        symbols = await self.board.listed(self.venue, sorted(self.symbols))
        if not symbols:
            await wait_any(stop, self.changed)
            return
        desk = self.board.links.desk(self.venue)
        request = md.SubscribeRequest(symbols=symbols, channels=_CHANNELS)
        call = desk.marketdata.Subscribe(request, metadata=desk.metadata)
        ended = asyncio.ensure_future(wait_any(stop, self.changed))
        try:
            reader = asyncio.ensure_future(self._read(call, backoff))
            done, _ = await asyncio.wait({reader, ended}, return_when=asyncio.FIRST_COMPLETED)
            if reader in done:
                reader.result()
                raise grpc.aio.AioRpcError(
                    grpc.StatusCode.UNAVAILABLE, None, None, "the venue ended the stream"
                )
            reader.cancel()
            # Its end awaited, not its error: a cancel of this task meanwhile is raised, not swallowed.
            await asyncio.wait({reader})
            if not reader.cancelled():
                reader.exception()  # retrieved: a stream error at the end is nobody's concern
        finally:
            ended.cancel()
            call.cancel()

    async def _read(self, call: object, backoff: Backoff) -> None:
        async for response in call:  # type: ignore[attr-defined]
            backoff.reset()
            self._said = ""
            for event in response.events:
                await self.board.take(self.venue, event)


class MarketBoard:
    def __init__(
        self,
        links: VenueLinks,
        on_trade: OnTrade,
        keep_ns: int = KEEP_NS,
        instruments: VenueInstruments | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.links = links
        self.on_trade = on_trade
        self.keep_ns = keep_ns
        self.instruments = instruments or VenueInstruments(lambda venue: links.list_instruments(venue))
        self.quotes: dict[tuple[str, str], Quote] = {}
        self._markets: dict[tuple[str, str], _Market] = {}
        self._followers: dict[str, _VenueFollower] = {}
        self._stop: asyncio.Event | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # the prune loop, followers ending
        self._arrived: dict[tuple[str, str], asyncio.Event] = {}
        self._refused: set[Key] = set()  # not served by their venue: not followed again unasked
        self.asked = AskedMarkets(clock)
        # The markets the core holds a position or a working order in (the runtime sets it).
        self.held: Callable[[], set[Key]] = set
        self.kept: frozenset[Key] = frozenset()  # those the detectors' active patches trade

    def start(self, stop: asyncio.Event) -> None:
        self._stop = stop
        for follower in self._followers.values():
            self._run(follower)
        self._tasks.add(asyncio.create_task(self._prune_loop(stop), name="markets pruned"))

    async def _prune_loop(self, stop: asyncio.Event) -> None:
        while not await sleep_unless(stop, _PRUNE_EVERY_S):
            self.prune()

    def keep(self, markets: frozenset[Key]) -> None:
        """Follow these markets (the active patches trade them) as long as they are given."""
        self.kept = markets
        for venue, symbol in sorted(markets):
            self.follow(venue, symbol)

    def follow(self, venue: str, symbol: str) -> None:
        """Follow this market from now on (a no-op when followed already)."""
        self._refused.discard((venue, symbol))
        follower = self._followers.get(venue)
        if follower is None:
            follower = self._followers[venue] = _VenueFollower(venue, self)
            self._run(follower)
        if symbol not in follower.symbols:
            follower.symbols.add(symbol)
            follower.changed.set()
            self._count()

    def unfollow(self, venue: str, symbol: str) -> None:
        """No longer followed: its quotes dropped, its venue's stream open again without it (or
        ended, with the venue's last market)."""
        key = (venue, symbol)
        self.quotes.pop(key, None)
        self._markets.pop(key, None)
        self._arrived.pop(key, None)
        self.asked.forget(key)
        follower = self._followers.get(venue)
        if follower is None:
            return
        follower.symbols.discard(symbol)
        follower.changed.set()
        if not follower.symbols:
            del self._followers[venue]
            self._end(follower)
        self._count()

    def _end(self, follower: _VenueFollower) -> None:
        task = follower.task
        if task is not None:
            task.cancel()
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def following(self) -> list[tuple[str, str]]:
        return sorted((venue, symbol) for venue, f in self._followers.items() for symbol in f.symbols)

    async def check(self, venue: str, symbol: str, field: str = "symbol") -> None:
        """NotFound for a venue nobody serves, InvalidArgument naming `field` for a symbol it
        does not list (Unavailable when its instruments cannot be read)."""
        self.links.known(venue)
        await self.instruments.check(venue, symbol, field)

    async def listed(self, venue: str, symbols: list[str]) -> list[str]:
        """Those of `symbols` the venue lists; the others dropped, said once. All of them when
        the venue's list cannot be read now (the venue then refuses a bad one alone)."""
        try:
            found, unknown = await self.instruments.split(venue, symbols)
        except TrademeshError:
            return symbols
        for symbol in unknown:
            self.refused(venue, symbol, unknown_symbol(venue, symbol))
        return found

    def refused(self, venue: str, symbol: str, reason: str) -> None:
        """The venue does not serve this market: no longer followed (its stream goes on for the
        others); an intent for it is refused (Runtime.check_market)."""
        REFUSED_MARKETS.inc()
        log.warning("inspector: %s %s not followed: %s", venue, symbol, reason, extra={"venue": venue})
        self._refused.add((venue, symbol))
        follower = self._followers.get(venue)
        if follower is None:
            return
        follower.symbols.discard(symbol)  # not `changed`: the stream serves the others as is
        if not follower.symbols:
            del self._followers[venue]
            self._end(follower)
        self._count()

    def prune(self) -> None:
        """Follow every market held or kept (but one its venue refused); drop every other one
        not asked about within the idle time."""
        needed = self.held() | self.kept
        followed = set(self.following())
        for venue, symbol in sorted(needed - followed - self._refused):
            self.follow(venue, symbol)
        self.asked.expire(needed)
        for key in sorted(followed - needed):
            if not self.asked.holds(key):
                self.unfollow(*key)
        self._refused &= needed

    async def view(self, venue: str, symbol: str, as_of_ns: int = 0) -> MarketView:
        """The market as of `as_of_ns` (an intent's signal time) when its quotes reach back to
        it; else (counted when a time was given) the market now: a market not followed yet is
        followed (counted among those asked about: at most `AskedMarkets.most`, each dropped
        when idle), and its first quote (bid and ask) awaited a moment (a view without them
        when none comes)."""
        key = (venue, symbol)
        self._ask(key)
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

    def _ask(self, key: Key) -> None:
        """The market asked about now; the least recently asked dropped past the bound (never one
        held or kept: those stay followed whatever is asked)."""
        needed = self.held() | self.kept
        for evicted in self.asked.touch(key, needed):
            self.unfollow(*evicted)

    def _run(self, follower: _VenueFollower) -> None:
        if self._stop is not None and follower.task is None:
            follower.task = asyncio.create_task(follower.run(self._stop), name=f"market {follower.venue}")

    def _count(self) -> None:
        FOLLOWED_VENUES.set(sum(1 for f in self._followers.values() if f.symbols))
        FOLLOWED_MARKETS.set(sum(len(f.symbols) for f in self._followers.values()))

    async def take(self, venue: str, event: md.MarketEvent) -> None:
        kind = event.WhichOneof("payload")
        if kind == "notice" and event.notice.kind == md.NOTICE_KIND_REFUSED:
            self._refusal(venue, event.symbol, event.notice)
            return
        key = (venue, event.symbol)
        quote = self.quotes.setdefault(key, Quote())
        market = self._markets.get(key)
        if market is None:
            market = self._markets[key] = _Market(self.keep_ns)
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

    def _refusal(self, venue: str, symbol: str, notice: md.StreamNotice) -> None:
        """The venue does not serve the market (every channel), or one of its channels (the
        others come: followed on)."""
        if notice.channel == md.CHANNEL_UNSPECIFIED:
            self.refused(venue, symbol, notice.reason)
        else:
            log.warning("inspector: %s %s: %s", venue, symbol, notice.reason, extra={"venue": venue})

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
        tasks = [*self._tasks, *(f.task for f in self._followers.values() if f.task is not None)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
