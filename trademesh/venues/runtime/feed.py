"""Where a venue reports market data. Events are built once, batched per stream, sent on flush.

A venue calls trade/book_delta/... as events happen and flush() when a burst is
over (the sim after each step, a live venue after each exchange message). Each
stream's events since the last flush are built in place inside one
SubscribeResponse and serialized once; since serialized SubscribeResponses
concatenate into a valid SubscribeResponse, a subscriber's batch is a byte join.

The runtime's L2 books follow the deltas at flush time, so the snapshot a new
subscriber gets matches exactly the deltas it will receive next. A book is only
handed to a new subscriber once the venue has published one (a snapshot, or the first
change of a venue that builds its book from changes): until then, and after a GAP on
the book's stream until the venue's next snapshot, the subscriber waits for the
venue's own snapshot rather than getting an empty or stale one.

A book that changes is also sent whole at least every SNAPSHOT_EVERY_S (a snapshot made of the
book as flushed, the next in its sequence): the bus keeps a market stream's last minutes only
(Retention.max_age_ms), and a consumer that starts on it later (a restarted bridge, which
rebuilds its books from the stream's latest snapshots) needs one there. A venue that builds its
book from changes (the sim) sends none of its own.

This is the hot path of every venue: streams are found by symbol in one dict per
channel, because hashing an Enum costs a Python call.

A feed made with `encoding=False` (the runtime's) builds no message until something may read
one: until listen() (called before a venue's first market-data subscriber is served) it keeps
the streams' statistics, the books and their sequences, and nothing else: no event is encoded,
no batch dispatched, no dispatch numbered or kept for resuming (no subscriber holds a position
to resume from yet). Most of a quiet sim's work per step went to events no one could read.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Protocol

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.book import L2Book, Level
from trademesh.core.domain.convert import CHANNEL_TO_PB, candle_to_pb
from trademesh.core.domain.model import Candle, Channel, Side, StreamKey, Timeframe
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.runtime.fanout import MarketFanout, MarketRoute
from trademesh.venues.runtime.stats import StreamStats, StreamTable

__all__ = ["SNAPSHOT_EVERY_S", "FeedTap", "MarketFeed"]

_NOTICE_GAP = md.NOTICE_KIND_GAP
_NOTICE_RESYNC = md.NOTICE_KIND_RESYNC
_BUY, _SELL = common.SIDE_BUY, common.SIDE_SELL
# A changing book is sent whole at least this often (well within the bus's age bound on a stream).
SNAPSHOT_EVERY_S = 60
_SNAPSHOT_EVERY_NS = SNAPSHOT_EVERY_S * 1_000_000_000


class _Outgoing:
    """One stream's events since the last flush."""

    __slots__ = ("batch", "route", "stats")

    def __init__(self, route: MarketRoute, stats: StreamStats) -> None:
        self.route = route
        self.stats = stats
        self.batch: md.SubscribeResponse | None = None


class _BookState:
    """A symbol's book as last flushed, its sequence, and the changes waiting for the flush.

    `ready`: the flushed book is the venue's (not the empty book before its first event,
    nor a book left stale by a GAP on its stream).
    """

    __slots__ = ("book", "pending", "ready", "sequence", "snapshot_ns")

    def __init__(self, now_ns: int) -> None:
        self.book = L2Book()
        self.sequence = 0
        self.ready = False
        self.snapshot_ns = now_ns  # when the book was last sent whole (or first seen)
        self.pending: list[tuple[int, bool, Sequence[Level], Sequence[Level]]] = []


def _add_levels(target: object, levels: Sequence[Level]) -> None:
    add = target.add  # type: ignore[attr-defined]
    for price, size in levels:
        level = add()  # set field by field: upb's keyword arguments cost ~40 % more a level
        level.price = price
        level.size = size


class FeedTap(Protocol):
    """Sees a venue's trades and book changes as the venue reports them, before they are sent
    (the paper venue's matching engine: trademesh/venues/paper)."""

    def trade(self, symbol: str, price: str, size: str, taker_side: Side) -> None: ...

    def book(self, symbol: str, bids: Sequence[Level], asks: Sequence[Level], is_snapshot: bool) -> None: ...

    def gap(self, symbol: str, channel: Channel) -> None: ...

    def flushed(self) -> None: ...


class MarketFeed:
    def __init__(
        self,
        venue: str,
        streams: StreamTable,
        clock: Callable[[], int] = time.time_ns,
        encoding: bool = True,
    ) -> None:
        self.venue = venue
        # Events are built and dispatched (False: until listen(); see the module's docstring).
        self.encoding = encoding
        self.streams = streams
        self.fanout: MarketFanout | None = None
        self._clock = clock
        self._outgoing: dict[MarketRoute, _Outgoing] = {}
        self._by_channel: dict[Channel, dict[str, _Outgoing]] = {channel: {} for channel in Channel}
        self._trades = self._by_channel[Channel.TRADES]
        self._deltas = self._by_channel[Channel.BOOK]
        self._dirty: list[_Outgoing] = []
        self._books: dict[str, _BookState] = {}
        self.tap: FeedTap | None = None

    def attach(self, fanout: MarketFanout) -> None:
        self.fanout = fanout

    def stats(self, symbol: str, channel: Channel) -> StreamStats:
        return self.streams.get(StreamKey(symbol, channel))

    def listen(self) -> None:
        """From now on events are encoded and dispatched. What was reported before and not yet
        flushed is flushed first (into the books only), so the book a new subscriber is handed
        and the deltas it gets next follow each other. Idempotent."""
        if not self.encoding:
            self.flush()
            self.encoding = True

    # ---- events

    def trade(
        self, symbol: str, ts_event_ns: int, trade_id: str, price: str, size: str, taker_side: Side
    ) -> None:
        out = self._trades.get(symbol) or self._stream(symbol, Channel.TRADES)
        if self.encoding:
            trade = self._event(out, symbol, ts_event_ns).trade
            trade.trade_id = trade_id
            trade.price = price
            trade.size = size
            trade.taker_side = _BUY if taker_side is Side.BUY else _SELL
        else:
            self._count(out, ts_event_ns)
        if self.tap is not None:
            self.tap.trade(symbol, price, size, taker_side)

    def book_delta(self, symbol: str, ts_event_ns: int, bids: Sequence[Level], asks: Sequence[Level]) -> None:
        self._book_event(symbol, ts_event_ns, bids, asks, is_snapshot=False)

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
        self._book_event(symbol, ts_event_ns, bids, asks, is_snapshot=True)

    def candle(self, symbol: str, ts_event_ns: int, candle: Candle) -> None:
        out = self._stream(symbol, Channel.CANDLES, candle.timeframe)
        if self.encoding:
            self._event(out, symbol, ts_event_ns).candle.CopyFrom(candle_to_pb(candle))
        else:
            self._count(out, ts_event_ns)

    def ticker(self, symbol: str, ts_event_ns: int, ticker: md.Ticker) -> None:
        out = self._stream(symbol, Channel.TICKERS)
        if self.encoding:
            self._event(out, symbol, ts_event_ns).ticker.CopyFrom(ticker)
        else:
            self._count(out, ts_event_ns)

    def funding_rate(self, symbol: str, ts_event_ns: int, funding: md.FundingRate) -> None:
        """A perpetual's funding as the venue states it now (each event whole: a state, not a change)."""
        out = self._stream(symbol, Channel.FUNDING)
        if self.encoding:
            self._event(out, symbol, ts_event_ns).funding_rate.CopyFrom(funding)
        else:
            self._count(out, ts_event_ns)

    def mark_price(self, symbol: str, ts_event_ns: int, mark: md.MarkPrice) -> None:
        """A derivative's mark and index prices as the venue states them (a state, each event whole)."""
        out = self._stream(symbol, Channel.MARK)
        if self.encoding:
            self._event(out, symbol, ts_event_ns).mark_price.CopyFrom(mark)
        else:
            self._count(out, ts_event_ns)

    def open_interest(self, symbol: str, ts_event_ns: int, interest: md.OpenInterest) -> None:
        """A derivative's open interest as the venue states it (a state, each event whole)."""
        out = self._stream(symbol, Channel.OPEN_INTEREST)
        if self.encoding:
            self._event(out, symbol, ts_event_ns).open_interest.CopyFrom(interest)
        else:
            self._count(out, ts_event_ns)

    def liquidation(self, symbol: str, ts_event_ns: int, liquidation: md.Liquidation) -> None:
        """One liquidation the venue executed in the market (anyone's), as it publishes it."""
        out = self._stream(symbol, Channel.LIQUIDATIONS)
        if self.encoding:
            self._event(out, symbol, ts_event_ns).liquidation.CopyFrom(liquidation)
        else:
            self._count(out, ts_event_ns)

    def notice(
        self,
        symbol: str,
        channel: Channel,
        kind: md.NoticeKind.ValueType,
        reason: str,
        since_ns: int = 0,
    ) -> None:
        """A GAP or RESYNC notice on one stream; not counted as a market event."""
        if not self.encoding:
            return  # no one to tell (a new subscriber learns a stream's state from its stats)
        timeframes: list[Timeframe | None] = list(Timeframe) if channel is Channel.CANDLES else [None]
        for timeframe in timeframes:
            out = self._stream(symbol, channel, timeframe)
            event = self._event(out, symbol, self._clock(), counted=False)
            event.notice.kind = kind
            event.notice.channel = CHANNEL_TO_PB[channel]
            event.notice.reason = reason
            event.notice.since_ns = since_ns

    def gap(self, symbol: str, channel: Channel, reason: str, since_ns: int = 0) -> None:
        """Events may be missing; on a book's stream, its copy here is stale until the next snapshot."""
        if channel is Channel.BOOK:
            state = self._books.get(symbol)
            if state is not None:
                state.pending.append((0, False, (), ()))  # at flush: not ready (see _apply)
        if self.tap is not None:
            self.tap.gap(symbol, channel)
        self.notice(symbol, channel, _NOTICE_GAP, reason, since_ns)

    # ---- flushing and books

    def flush(self) -> None:
        if self.tap is not None:
            self.tap.flushed()
        now_ns = 0
        for symbol, state in self._books.items():
            if state.pending:
                _apply(state)
                now_ns = now_ns or self._clock()
                if state.ready and now_ns - state.snapshot_ns >= _SNAPSHOT_EVERY_NS:
                    self._send_whole(symbol, state)
        if not self._dirty:
            return
        pending: dict[MarketRoute, bytes] = {}
        for out in self._dirty:
            assert out.batch is not None
            pending[out.route] = out.batch.SerializeToString()
            out.batch = None
        self._dirty = []
        if self.fanout is not None:
            self.fanout.dispatch(pending)

    def book(self, symbol: str) -> L2Book:
        return self._book_state(symbol).book

    def book_ready(self, symbol: str) -> bool:
        state = self._books.get(symbol)
        return state is not None and state.ready

    def snapshot_chunk(self, symbol: str) -> bytes:
        """The book as last flushed, encoded for a (re)starting subscriber; b"" while it has none.

        Without one, the subscriber gets the venue's next snapshot like everyone else.
        """
        if not self.book_ready(symbol):
            return b""
        book = self.book(symbol)
        bids, asks = book.snapshot()
        snapshot = md.BookSnapshot(sequence=book.sequence)
        _add_levels(snapshot.bids, bids)
        _add_levels(snapshot.asks, asks)
        return self._single(symbol, md.MarketEvent(book_snapshot=snapshot))

    def gap_chunk(self, symbol: str, channel: Channel, reason: str) -> bytes:
        notice = md.StreamNotice(kind=_NOTICE_GAP, channel=CHANNEL_TO_PB[channel], reason=reason)
        return self._single(symbol, md.MarketEvent(notice=notice))

    def refused_chunk(self, symbol: str, channel: Channel | None, reason: str) -> bytes:
        """A REFUSED notice for one subscriber: the symbol (on `channel`, or on every channel
        asked when None) is not served by its subscription."""
        pb_channel = md.CHANNEL_UNSPECIFIED if channel is None else CHANNEL_TO_PB[channel]
        notice = md.StreamNotice(kind=md.NOTICE_KIND_REFUSED, channel=pb_channel, reason=reason)
        return self._single(symbol, md.MarketEvent(notice=notice))

    # ---- internals

    def _send_whole(self, symbol: str, state: _BookState) -> None:
        """The book as flushed, sent as the next snapshot of its sequence (no change to the book:
        the tap is not told)."""
        bids, asks = state.book.snapshot()
        self._book_event(symbol, self._clock(), bids, asks, is_snapshot=True, tell_tap=False)
        _apply(state)

    def _book_event(
        self,
        symbol: str,
        ts_event_ns: int,
        bids: Sequence[Level],
        asks: Sequence[Level],
        is_snapshot: bool,
        tell_tap: bool = True,
    ) -> None:
        state = self._books.get(symbol) or self._book_state(symbol)
        state.sequence += 1
        if is_snapshot:
            state.snapshot_ns = self._clock()
        state.pending.append((state.sequence, is_snapshot, bids, asks))
        out = self._deltas.get(symbol) or self._stream(symbol, Channel.BOOK)
        if self.encoding:
            event = self._event(out, symbol, ts_event_ns)
            book = event.book_snapshot if is_snapshot else event.book_delta
            book.sequence = state.sequence
            if bids:  # a delta mostly changes one side
                _add_levels(book.bids, bids)
            if asks:
                _add_levels(book.asks, asks)
        else:
            self._count(out, ts_event_ns)
        if self.tap is not None and tell_tap:
            self.tap.book(symbol, bids, asks, is_snapshot)

    def _book_state(self, symbol: str) -> _BookState:
        state = self._books.get(symbol)
        if state is None:
            state = self._books[symbol] = _BookState(self._clock())
        return state

    def _stream(self, symbol: str, channel: Channel, timeframe: Timeframe | None = None) -> _Outgoing:
        route = (symbol, channel, timeframe)
        out = self._outgoing.get(route)
        if out is None:
            out = self._outgoing[route] = _Outgoing(route, self.stats(symbol, channel))
            if timeframe is None:
                self._by_channel[channel][symbol] = out
        return out

    def _event(self, out: _Outgoing, symbol: str, ts_event_ns: int, counted: bool = True) -> md.MarketEvent:
        if out.batch is None:
            out.batch = md.SubscribeResponse()
            self._dirty.append(out)
        now = self._clock()
        if counted:
            stats = out.stats
            stats.events_total += 1
            stats.last_event_ns = ts_event_ns
            stats.last_recv_ns = now
        event = out.batch.events.add()  # set field by field: upb's keyword arguments cost twice as much
        event.venue = self.venue
        event.symbol = symbol
        event.ts_event_ns = ts_event_ns
        event.ts_recv_ns = now
        return event

    def _count(self, out: _Outgoing, ts_event_ns: int) -> None:
        """An event's statistics, when it is not encoded (what _event counts)."""
        stats = out.stats
        stats.events_total += 1
        stats.last_event_ns = ts_event_ns
        stats.last_recv_ns = self._clock()

    def _single(self, symbol: str, event: md.MarketEvent) -> bytes:
        now = self._clock()
        event.venue, event.symbol, event.ts_event_ns, event.ts_recv_ns = self.venue, symbol, now, now
        return md.SubscribeResponse(events=[event]).SerializeToString()


def _apply(state: _BookState) -> None:
    book = state.book
    for sequence, is_snapshot, bids, asks in state.pending:
        if sequence == 0:  # a GAP on the stream: stale until the venue's next snapshot
            state.ready = False
        elif is_snapshot:
            book.replace(sequence, bids, asks)
            state.ready = True
        else:
            book.apply(sequence, bids, asks)
            # A venue that builds its book from changes alone (the sim) has it from the first one.
            state.ready = state.ready or sequence == 1
    state.pending = []
