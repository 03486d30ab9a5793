"""The hot path: a venue's MarketData stream straight into the engine, no bus in between.

One Subscribe per venue (trades and book, the symbols the patches trade and the venue lists),
resubscribed with backoff when lost (never when refused as invalid). Each batch of market
events goes to the runner (core.detector.runner) with the time the feed had it, for the
hot-path latency (core.detector.metrics); the runner orders them by event time and converts
them with a MarketConverter one timestamp at a time: each trade a TradeValue; the book deltas
of a timestamp are applied to a local L2 book (core.detector.book) and give one BookValue per
symbol (the top levels after them).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import grpc

from core.detector.book import FloatBook
from core.detector.engine.io import Event
from core.detector.engine.values import BookValue, TradeValue
from core.detector.metrics import MARKET_EVENTS, STREAM
from core.foundations.backoff import Backoff
from core.foundations.errors import TrademeshError
from core.foundations.instruments import VenueInstruments, unknown_symbol
from core.foundations.logs import bind_log_fields
from core.foundations.mesh_config import VenueLink
from core.foundations.rpc.client import Metadata
from core.foundations.rpc.follow import follow
from core.foundations.rpc.status import call_failure
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["BOOK_DEPTH", "Deliver", "MarketConverter", "VenueFeed"]

log = logging.getLogger(__name__)

# Levels per side a BookValue carries (a book source's `depth` is at most this).
BOOK_DEPTH = 50
_SUBSCRIBE = "/trademesh.marketdata.v1.MarketData/Subscribe"
_TAKER_BUY = {common.SIDE_BUY: True, common.SIDE_SELL: False}

# Takes one venue's market events of one batch, in the venue's order, with the time the feed
# had the batch (wall clock, ns): (venue, events, received). The runner converts them
# (MarketConverter) one timestamp at a time.
Deliver = Callable[[str, Sequence[md.MarketEvent], int], None]


class MarketConverter:
    """Market events of one venue to engine events, keeping each symbol's L2 book
    (core.detector.book: float levels kept in order as the deltas come, no sort per batch)."""

    def __init__(self, depth: int = BOOK_DEPTH) -> None:
        self.books: dict[str, FloatBook] = {}
        self.depth = depth

    def convert(self, events: Iterable[md.MarketEvent]) -> list[Event]:
        out: list[Event] = []
        books = self.books
        touched: dict[str, md.MarketEvent] = {}  # symbol -> its last book event
        for event in events:
            # HasField, most frequent first: cheaper than WhichOneof on every event.
            if event.HasField("book_delta"):
                symbol = event.symbol
                book = books.get(symbol)
                if book is not None:  # deltas before the first snapshot mean nothing
                    delta = event.book_delta
                    book.apply(delta.bids, delta.asks)
                    touched[symbol] = event
            elif event.HasField("trade"):
                out.append(_trade(event))
            elif event.HasField("book_snapshot"):
                snapshot, symbol = event.book_snapshot, event.symbol
                book = books.get(symbol)
                if book is None:  # not setdefault: that would make a FloatBook per snapshot
                    book = books[symbol] = FloatBook()
                book.replace(snapshot.bids, snapshot.asks)
                touched[symbol] = event
            elif event.HasField("notice") and event.notice.kind == md.NOTICE_KIND_RESYNC:
                books.pop(event.symbol, None)  # wait for the venue's next snapshot
                touched.pop(event.symbol, None)
        depth = self.depth
        for symbol, last in touched.items():
            book = books[symbol]
            out.append(BookValue(symbol, last.ts_event_ns, book.bids.top(depth), book.asks.top(depth)))
        return out


def _trade(event: md.MarketEvent) -> TradeValue:
    trade = event.trade
    return TradeValue(
        event.symbol,
        event.ts_event_ns,
        float(trade.price),
        float(trade.size),
        _TAKER_BUY.get(trade.taker_side),
        trade.trade_id,
    )


class VenueFeed:
    """Follows one venue until stopped; every batch goes to `deliver` as engine events. A symbol
    the venue does not list is dropped (said once): the venue's instruments tell before the
    subscription, its REFUSED notice after; the others are fed. A subscription the venue refuses
    whole is not sent again unchanged (the feed's symbols are the start's: it waits for stop)."""

    def __init__(
        self,
        link: VenueLink,
        symbols: list[str],
        channel_factory: Callable[[], grpc.aio.Channel],
        metadata: Metadata,
        deliver: Deliver,
        instruments: VenueInstruments | None = None,
    ) -> None:
        self.link = link
        self.symbols = symbols
        self._channel_factory = channel_factory
        self._metadata = metadata
        self._deliver = deliver
        self._instruments = instruments
        self.batches = 0
        self.reconnects = 0
        self._said = ""

    async def run(self, stop: asyncio.Event) -> None:
        bind_log_fields(venue=self.link.name)
        await follow(
            self._follow,
            stop,
            Backoff(0.2, 5.0),
            self._lost,
            go_on=lambda: bool(self.symbols),
            refused=lambda exc: self._say(f"refused ({call_failure(exc)})", "not asked again"),
        )

    def _lost(self, reason: str, delay: float) -> None:
        self.reconnects += 1
        self._say(f"lost ({reason})", f"resubscribing after a backoff (now {delay:.1f} s)")

    def _say(self, what: str, then: str) -> None:
        """Logged when it differs from the last said (a venue away is one line, not one a retry)."""
        if what != self._said:
            self._said = what
            log.warning("detector: %s stream %s; %s", self.link.name, what, then)

    async def _follow(self, backoff: Backoff) -> None:
        self.symbols = await self._listed()
        if not self.symbols:
            return
        request = md.SubscribeRequest(symbols=self.symbols, channels=[md.CHANNEL_TRADES, md.CHANNEL_BOOK])
        async with self._channel_factory() as channel:
            call: Any = channel.unary_stream(
                _SUBSCRIBE,
                request_serializer=md.SubscribeRequest.SerializeToString,
                response_deserializer=md.SubscribeResponse.FromString,
            )
            first = True
            async for response in call(request, metadata=self._metadata):
                backoff.reset()
                market = response.events
                if first:
                    first, self._said = False, ""
                    self._refusals(market)  # a refusal comes at the start, if at all
                received = time.time_ns()
                if market:
                    STREAM.observe((received - market[-1].ts_recv_ns) / 1e9)
                    MARKET_EVENTS.inc(len(market))
                if market:
                    self._deliver(self.link.name, market, received)
                self.batches += 1

    async def _listed(self) -> list[str]:
        """The symbols the venue lists; all of them when its list cannot be read now."""
        if self._instruments is None:
            return self.symbols
        try:
            listed, unknown = await self._instruments.split(self.link.name, self.symbols)
        except TrademeshError:
            return self.symbols
        for symbol in unknown:
            self._drop(symbol, unknown_symbol(self.link.name, symbol))
        return listed

    def _refusals(self, events: Sequence[md.MarketEvent]) -> None:
        for event in events:
            if event.HasField("notice") and event.notice.kind == md.NOTICE_KIND_REFUSED:
                if event.notice.channel == md.CHANNEL_UNSPECIFIED:
                    self._drop(event.symbol, event.notice.reason)
                else:  # one channel: the symbol's others come
                    log.warning("detector: %s %s: %s", self.link.name, event.symbol, event.notice.reason)

    def _drop(self, symbol: str, reason: str) -> None:
        if symbol in self.symbols:
            self.symbols = [s for s in self.symbols if s != symbol]
            log.warning("detector: %s %s not fed: %s", self.link.name, symbol, reason)
