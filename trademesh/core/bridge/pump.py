"""The bridge's bus handler: each bus read becomes one fan-out round.

It runs inside the group consumer's task and never awaits: it keeps the books, counts what
passes on each route, frames the events someone follows and offers them to queues, so the
consumer acknowledges the entries as soon as the round is over, whatever the subscribers do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.bridge.books import BookVerdict, BridgeBooks
from trademesh.core.bridge.encode import bar_chunk, event_chunk, notice_event
from trademesh.core.bridge.fanout import LiveFanout, LiveRoute
from trademesh.core.bridge.metrics import BOOK_HOLES, EVENTS
from trademesh.core.bridge.routes import (
    BOOK,
    KIND_OF_PAYLOAD,
    TIMEFRAME_TEXT_OF_PB,
    Key,
    bars_kind,
    candles_kind,
    notice_kind,
)
from trademesh.core.platform.bus.consumer import Entry
from trademesh.core.platform.bus.names import parse_market_stream
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["Pump", "stream_venue"]

_CANDLE_KIND = {pb: candles_kind(text) for pb, text in TIMEFRAME_TEXT_OF_PB.items()}
_BAR_KIND = {pb: bars_kind(text) for pb, text in TIMEFRAME_TEXT_OF_PB.items()}
_BOOK_NOTICE = notice_kind(md.CHANNEL_BOOK)


def stream_venue(stream: str) -> str:
    """md.{<venue>}.<channel> -> venue; "" for other streams."""
    parsed = parse_market_stream(stream)
    return "" if parsed is None else parsed[0]


class Pump:
    def __init__(
        self, fanout: LiveFanout, books: BridgeBooks, clock: Callable[[], int] = time.time_ns
    ) -> None:
        self.fanout = fanout
        self.books = books
        self._clock = clock
        self.events = 0
        # This round's routes, looked up once a round: a round never awaits, so no subscription
        # comes meanwhile; one ended in it (a subscriber too slow) is closed and offered nothing.
        self._round: dict[Key, LiveRoute] = {}

    async def handle(self, stream: str, entries: list[Entry]) -> None:
        self.take(stream, [envelope for _, envelope in entries])

    def take(self, stream: str, envelopes: Iterable[bus.Envelope]) -> None:
        """One round: every event of the envelopes to the books and the subscribers."""
        self.fanout.start_round()
        now_ns = self._clock()
        before = self.events
        venue = stream_venue(stream)
        try:
            for envelope in envelopes:
                body = envelope.WhichOneof("body")
                if body == "market":
                    self._market(venue, envelope.market.events, now_ns)
                elif body == "bars":
                    self._bars(envelope.bars.bars, now_ns)
        finally:
            self._round.clear()
            self.fanout.end_round()
            EVENTS.inc(self.events - before)

    def _market(self, stream_venue: str, events: Sequence[md.MarketEvent], now_ns: int) -> None:
        follows = self.books.follows
        for event in events:
            payload = event.WhichOneof("payload")
            venue = event.venue or stream_venue
            if payload == "book_delta":  # nearly every event on the bus: the shortest way
                passed = follows(venue, event.symbol, event)
                if passed is None:  # a hole, or a book not seen yet
                    passed = self._delta(venue, event, now_ns)
                if passed:
                    self._pass(venue, BOOK, event, now_ns)
                continue
            kind = KIND_OF_PAYLOAD.get(payload or "")
            if kind is None:
                if payload == "candle":
                    kind = _CANDLE_KIND.get(event.candle.timeframe)
                elif payload == "notice":
                    kind = notice_kind(event.notice.channel)
                if kind is None:
                    continue
            elif kind == BOOK and not self._book(venue, event, payload, now_ns):
                continue
            self._pass(venue, kind, event, now_ns)

    def _pass(self, venue: str, kind: str, event: md.MarketEvent, now_ns: int) -> None:
        self.events += 1
        key = (venue, kind, event.symbol)
        route = self._round.get(key)
        if route is None:
            route = self._round[key] = self.fanout.route(key)
            route.last_event_ns = now_ns
        route.events_total += 1
        if route.subscribers:
            self.fanout.send(route.subscribers, event_chunk(event))

    def _book(self, venue: str, event: md.MarketEvent, payload: str | None, now_ns: int) -> bool:
        """Whether the book event goes on; a GAP notice goes instead when the book just broke."""
        if payload == "book_snapshot":
            return self.books.snapshot(venue, event.symbol, event) is BookVerdict.PASS
        return self._delta(venue, event, now_ns)

    def _delta(self, venue: str, event: md.MarketEvent, now_ns: int) -> bool:
        verdict, reason = self.books.delta(venue, event.symbol, event)
        if verdict is BookVerdict.HOLE:
            BOOK_HOLES.inc()
            reason = f"bridge: {reason}; deltas are held back until the venue's next snapshot"
            gap = notice_event(venue, event.symbol, md.CHANNEL_BOOK, reason, 0, now_ns)
            self._pass(venue, _BOOK_NOTICE, gap, now_ns)
        return verdict is BookVerdict.PASS

    def _bars(self, bars: Sequence[bus.Bar], now_ns: int) -> None:
        for bar in bars:
            kind = _BAR_KIND.get(bar.timeframe)
            if kind is None:
                continue
            self.events += 1
            route = self.fanout.route((bar.venue, kind, bar.symbol))
            route.events_total += 1
            route.last_event_ns = now_ns
            if route.subscribers:
                self.fanout.send(route.subscribers, bar_chunk(bar))
