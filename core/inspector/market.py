"""The prices the inspector checks intents against and marks positions at: each venue's
tickers (best bid and ask) and trades, straight from its MarketData stream, for the symbols the
inspector has dealt with (the set grows as intents come: the stream is opened again with it).

Every trade is handed on (`on_trade`: the emulated stops). The board keeps the latest only; the
marks the core sees are sampled from it by the shell and journaled (core.inspector.runtime)."""

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
from core.inspector.venues import VenueLinks
from core.retry import sleep_unless
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["MarketBoard", "OnTrade", "Quote"]

log = logging.getLogger(__name__)

OnTrade = Callable[[str, str, Decimal], Awaitable[None]]
_FIRST_QUOTE_S = 2.0  # an intent of a market not followed yet waits this long for its first quote


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
            delay = backoff.next()
            log.warning("inspector: %s market stream lost (%s); again in %.1f s", self.venue, reason, delay)
            await sleep_unless(stop, delay)

    async def _follow(self, stop: asyncio.Event, backoff: Backoff) -> None:
        desk = self.board.links.desk(self.venue)
        request = md.SubscribeRequest(
            symbols=sorted(self.symbols), channels=[md.CHANNEL_TICKERS, md.CHANNEL_TRADES]
        )
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
    def __init__(self, links: VenueLinks, on_trade: OnTrade) -> None:
        self.links = links
        self.on_trade = on_trade
        self.quotes: dict[tuple[str, str], Quote] = {}
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

    async def view(self, venue: str, symbol: str) -> MarketView:
        """The market now; a market not followed yet is followed, and its first quote (bid and
        ask) awaited a moment (a view without them when none comes)."""
        key = (venue, symbol)
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
        kind = event.WhichOneof("payload")
        if kind == "ticker":
            ticker = event.ticker
            quote.bid, quote.ask = _price(ticker.best_bid), _price(ticker.best_ask)
            quote.last = _price(ticker.last_price) or quote.last
            arrived = self._arrived.pop(key, None)
            if arrived is not None:
                arrived.set()
        elif kind == "trade":
            quote.last = Decimal(event.trade.price)
            await self.on_trade(venue, event.symbol, quote.last)

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
