"""Recorded rows back to the wire messages they were recorded from: the inverse of
trademesh.core.recorder.rows for trades, book events, mark prices and bars.

Each table is read with the columns of its `*_COLUMNS` (key columns first, in the primary
key's order), decimals selected as text: PostgreSQL prints a NUMERIC with the scale it was
given, so "65000.50" comes back "65000.50" and "0.00000001" stays plain (a Decimal would
print "1E-8"). A NULL optional decimal (a bar's quote_volume or vwap, a mark's index_price) is
"" again, as the recorder's tm_decimal_or_null made it NULL from "".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.convert import TIMEFRAME_TO_PB
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.errors import Corrupt
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = [
    "BAR_COLUMNS",
    "BOOK_COLUMNS",
    "MARK_COLUMNS",
    "TRADE_COLUMNS",
    "bar_of",
    "book_event_of",
    "mark_of",
    "trade_of",
]

# (key columns, the other columns), each as selected.
TRADE_COLUMNS = (
    ("ts_event_ns", "trade_id"),
    ("ts_recv_ns", "price::text", "size::text", "taker_side"),
)
BOOK_COLUMNS = (
    ("ts_event_ns", "sequence", "snapshot"),
    ("ts_recv_ns", "bid_prices::text[]", "bid_sizes::text[]", "ask_prices::text[]", "ask_sizes::text[]"),
)
MARK_COLUMNS = (
    ("ts_event_ns",),
    ("ts_recv_ns", "mark_price::text", "coalesce(index_price::text, '')"),
)
BAR_COLUMNS = (
    ("open_time_ns",),
    ("open::text", "high::text", "low::text", "close::text", "volume::text",
     "coalesce(quote_volume::text, '')", "trade_count", "coalesce(vwap::text, '')", "repaired"),
)  # fmt: skip

_SIDES = {"buy": common.SIDE_BUY, "sell": common.SIDE_SELL, None: common.SIDE_UNSPECIFIED}


def trade_of(venue: str, symbol: str, row: Sequence[Any]) -> md.MarketEvent:
    """A trades row (TRADE_COLUMNS) as the MarketEvent the venue streamed."""
    ts_event_ns, trade_id, ts_recv_ns, price, size, side = row
    event = md.MarketEvent(venue=venue, symbol=symbol, ts_event_ns=ts_event_ns, ts_recv_ns=ts_recv_ns)
    trade = event.trade
    trade.trade_id = trade_id
    trade.price = price
    trade.size = size
    trade.taker_side = _SIDES[side]
    return event


def mark_of(venue: str, symbol: str, row: Sequence[Any]) -> md.MarketEvent:
    """A mark_prices row (MARK_COLUMNS) as the mark_price event the venue streamed."""
    ts_event_ns, ts_recv_ns, mark_price, index_price = row
    event = md.MarketEvent(venue=venue, symbol=symbol, ts_event_ns=ts_event_ns, ts_recv_ns=ts_recv_ns)
    event.mark_price.mark_price = mark_price
    event.mark_price.index_price = index_price
    return event


def book_event_of(venue: str, symbol: str, row: Sequence[Any]) -> md.MarketEvent:
    """A book_events row (BOOK_COLUMNS) as the book_snapshot or book_delta the venue streamed."""
    ts_event_ns, sequence, snapshot, ts_recv_ns, bid_prices, bid_sizes, ask_prices, ask_sizes = row
    event = md.MarketEvent(venue=venue, symbol=symbol, ts_event_ns=ts_event_ns, ts_recv_ns=ts_recv_ns)
    book = event.book_snapshot if snapshot else event.book_delta
    book.sequence = sequence
    _levels(book.bids, bid_prices, bid_sizes, symbol, ts_event_ns)
    _levels(book.asks, ask_prices, ask_sizes, symbol, ts_event_ns)
    return event


def _levels(target: Any, prices: list[str], sizes: list[str], symbol: str, ts_ns: int) -> None:
    if len(prices) != len(sizes):
        raise Corrupt(f"book event {symbol} at {ts_ns}: {len(prices)} prices for {len(sizes)} sizes")
    add = target.add
    for price, size in zip(prices, sizes, strict=True):
        add(price=price, size=size)


def bar_of(venue: str, symbol: str, timeframe: Timeframe, row: Sequence[Any]) -> bus.Bar:
    """A bars row (BAR_COLUMNS) as the Bar the aggregator published."""
    open_time_ns, open_, high, low, close, volume, quote_volume, trade_count, vwap, repaired = row
    return bus.Bar(
        venue=venue,
        symbol=symbol,
        timeframe=TIMEFRAME_TO_PB[timeframe],
        open_time_ns=open_time_ns,
        open=open_,
        high=high,
        low=low,
        close=close,
        volume=volume,
        quote_volume=quote_volume,
        trade_count=trade_count,
        vwap=vwap,
        repaired=repaired,
    )
