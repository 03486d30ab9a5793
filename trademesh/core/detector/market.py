"""A venue's market events to the detector engine's events: each trade a TradeValue; the book deltas
of a timestamp applied to a local L2 book (trademesh.core.detector.book) and given as one BookValue per
symbol (the top levels after them). The live runner (trademesh.core.detector.runner) converts what the
feed (trademesh.core.detector.feed) delivers, one timestamp at a time; a backtest converts the recorded
events alike. Pure: no I/O, so a backtest meets it without gRPC."""

from __future__ import annotations

from collections.abc import Iterable

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.detector.book import FloatBook
from trademesh.core.detector.engine.io import Event
from trademesh.core.detector.engine.values import BookValue, TradeValue
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["BOOK_DEPTH", "MarketConverter"]

# Levels per side a BookValue carries (a book source's `depth` is at most this).
BOOK_DEPTH = 50
_TAKER_BUY = {common.SIDE_BUY: True, common.SIDE_SELL: False}


class MarketConverter:
    """Market events of one venue to engine events, keeping each symbol's L2 book
    (trademesh.core.detector.book: float levels kept in order as the deltas come, no sort per batch)."""

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
