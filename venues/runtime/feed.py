"""Where a venue reports market data. Events are encoded once, batched, and sent on flush.

A venue calls trade/book_delta/... as events happen and flush() when a burst is
over (the sim after each tick, a live venue after each exchange message). The
runtime's L2 books follow the deltas at flush time, so the snapshot a new
subscriber gets matches exactly the deltas it will receive next.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from core.model import Candle, Channel, Side, StreamKey, Timeframe
from trademesh.marketdata.v1 import marketdata_pb2 as md
from venues.runtime.book import L2Book, Level
from venues.runtime.convert import CHANNEL_TO_PB, SIDE_TO_PB, candle_to_pb
from venues.runtime.fanout import Fanout, Route, encode_chunk
from venues.runtime.stats import StreamStats, StreamTable

__all__ = ["MarketFeed"]

_NOTICE_GAP = md.NOTICE_KIND_GAP
_NOTICE_RESYNC = md.NOTICE_KIND_RESYNC


def _levels(levels: Sequence[Level]) -> list[md.BookLevel]:
    return [md.BookLevel(price=price, size=size) for price, size in levels]


class MarketFeed:
    def __init__(self, venue: str, streams: StreamTable, clock: Callable[[], int] = time.time_ns) -> None:
        self.venue = venue
        self.streams = streams
        self.fanout: Fanout | None = None
        self._clock = clock
        self._books: dict[str, L2Book] = {}
        self._sequence: dict[str, int] = {}
        self._pending: dict[Route, list[bytes]] = {}
        self._stats_cache: dict[tuple[str, Channel], StreamStats] = {}
        # Book changes to apply at flush: (sequence, is_snapshot, bids, asks), per symbol.
        self._pending_books: dict[str, list[tuple[int, bool, Sequence[Level], Sequence[Level]]]] = {}

    def attach(self, fanout: Fanout) -> None:
        self.fanout = fanout

    def stats(self, symbol: str, channel: Channel) -> StreamStats:
        return self.streams.get(StreamKey(symbol, channel))

    def _hot_stats(self, symbol: str, channel: Channel) -> StreamStats:
        # Called per event: a tuple-keyed cache avoids building a StreamKey each time.
        stats = self._stats_cache.get((symbol, channel))
        if stats is None:
            stats = self._stats_cache[(symbol, channel)] = self.stats(symbol, channel)
        return stats

    def trade(
        self, symbol: str, ts_event_ns: int, trade_id: str, price: str, size: str, taker_side: Side
    ) -> None:
        payload = md.Trade(trade_id=trade_id, price=price, size=size, taker_side=SIDE_TO_PB[taker_side])
        self._emit(symbol, Channel.TRADES, None, ts_event_ns, md.MarketEvent(trade=payload))

    def book_delta(self, symbol: str, ts_event_ns: int, bids: Sequence[Level], asks: Sequence[Level]) -> None:
        sequence = self._next_sequence(symbol)
        self._pending_books.setdefault(symbol, []).append((sequence, False, bids, asks))
        payload = md.BookDelta(sequence=sequence, bids=_levels(bids), asks=_levels(asks))
        self._emit(symbol, Channel.BOOK, None, ts_event_ns, md.MarketEvent(book_delta=payload))

    def book_snapshot(
        self,
        symbol: str,
        ts_event_ns: int,
        bids: Sequence[Level],
        asks: Sequence[Level],
        resync_reason: str = "",
    ) -> None:
        """Replace the book; with a resync_reason, subscribers are told it was rebuilt."""
        if resync_reason:
            self.stats(symbol, Channel.BOOK).resyncs += 1
            self.notice(symbol, Channel.BOOK, _NOTICE_RESYNC, resync_reason)
        sequence = self._next_sequence(symbol)
        self._pending_books.setdefault(symbol, []).append((sequence, True, bids, asks))
        payload = md.BookSnapshot(sequence=sequence, bids=_levels(bids), asks=_levels(asks))
        self._emit(symbol, Channel.BOOK, None, ts_event_ns, md.MarketEvent(book_snapshot=payload))

    def candle(self, symbol: str, ts_event_ns: int, candle: Candle) -> None:
        event = md.MarketEvent(candle=candle_to_pb(candle))
        self._emit(symbol, Channel.CANDLES, candle.timeframe, ts_event_ns, event)

    def ticker(self, symbol: str, ts_event_ns: int, ticker: md.Ticker) -> None:
        self._emit(symbol, Channel.TICKERS, None, ts_event_ns, md.MarketEvent(ticker=ticker))

    def notice(self, symbol: str, channel: Channel, kind: md.NoticeKind.ValueType, reason: str) -> None:
        """A GAP or RESYNC notice on one stream; not counted as a market event."""
        notice = md.StreamNotice(kind=kind, channel=CHANNEL_TO_PB[channel], reason=reason)
        chunk = self._encode(symbol, self._clock(), md.MarketEvent(notice=notice))
        for route in self._routes(symbol, channel):
            self._pending.setdefault(route, []).append(chunk)

    def gap(self, symbol: str, channel: Channel, reason: str) -> None:
        self.notice(symbol, channel, _NOTICE_GAP, reason)

    def flush(self) -> None:
        for symbol, changes in self._pending_books.items():
            book = self.book(symbol)
            for sequence, is_snapshot, bids, asks in changes:
                (book.replace if is_snapshot else book.apply)(sequence, bids, asks)
        self._pending_books = {}
        pending, self._pending = self._pending, {}
        if self.fanout is not None and pending:
            self.fanout.dispatch(pending)

    def book(self, symbol: str) -> L2Book:
        book = self._books.get(symbol)
        if book is None:
            book = self._books[symbol] = L2Book()
        return book

    def snapshot_chunk(self, symbol: str) -> bytes:
        """The book as last flushed, encoded for a (re)starting subscriber."""
        book = self.book(symbol)
        bids, asks = book.snapshot()
        payload = md.BookSnapshot(sequence=book.sequence, bids=_levels(bids), asks=_levels(asks))
        return self._encode(symbol, self._clock(), md.MarketEvent(book_snapshot=payload))

    def gap_chunk(self, symbol: str, channel: Channel, reason: str) -> bytes:
        notice = md.StreamNotice(kind=_NOTICE_GAP, channel=CHANNEL_TO_PB[channel], reason=reason)
        return self._encode(symbol, self._clock(), md.MarketEvent(notice=notice))

    def _next_sequence(self, symbol: str) -> int:
        sequence = self._sequence.get(symbol, 0) + 1
        self._sequence[symbol] = sequence
        return sequence

    def _routes(self, symbol: str, channel: Channel) -> list[Route]:
        if channel is Channel.CANDLES:
            return [(symbol, channel, timeframe) for timeframe in Timeframe]
        return [(symbol, channel, None)]

    def _encode(self, symbol: str, ts_event_ns: int, event: md.MarketEvent) -> bytes:
        event.venue = self.venue
        event.symbol = symbol
        event.ts_event_ns = ts_event_ns
        event.ts_recv_ns = self._clock()
        return encode_chunk(event.SerializeToString())

    def _emit(
        self,
        symbol: str,
        channel: Channel,
        timeframe: Timeframe | None,
        ts_event_ns: int,
        event: md.MarketEvent,
    ) -> None:
        stats = self._hot_stats(symbol, channel)
        stats.events_total += 1
        stats.last_event_ns = ts_event_ns
        route = (symbol, channel, timeframe)
        chunks = self._pending.get(route)
        if chunks is None:
            chunks = self._pending[route] = []
        chunks.append(self._encode(symbol, ts_event_ns, event))
