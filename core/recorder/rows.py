"""Bus entries to row tuples, one list per table, straight from the protobuf objects.

This is the recorder's only per-event Python work, so it stays minimal: attribute reads into
a tuple in staging-column order (core.recorder.schema), no decimal parsing (PostgreSQL checks
the decimal strings). What cannot be a row (no payload, an unknown enum) raises Corrupt: the
batch fails and the consumer retries it entry by entry, then dead-letters the bad entry.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from core.bus.consumer import Entry
from core.convert import TIMEFRAME_FROM_PB
from core.errors import Corrupt
from core.recorder.schema import (
    BARS,
    BOOK,
    CANDLES,
    NOTICES,
    POSITION_REQUESTS,
    SIGNALS,
    TICKERS,
    TRADES,
    Table,
)
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.signal.v1 import signal_pb2 as sig

__all__ = ["Row", "Rows", "chunks", "rows_of"]

Row = tuple[Any, ...]

_SIDES = {common.SIDE_BUY: "buy", common.SIDE_SELL: "sell"}
_TIMEFRAMES = {pb: timeframe.label for pb, timeframe in TIMEFRAME_FROM_PB.items()}
_CHANNELS = {
    md.CHANNEL_TRADES: "trades",
    md.CHANNEL_BOOK: "book",
    md.CHANNEL_CANDLES: "candles",
    md.CHANNEL_TICKERS: "tickers",
}
_NOTICE_KINDS = {md.NOTICE_KIND_GAP: "gap", md.NOTICE_KIND_RESYNC: "resync"}
_DIRECTIONS = {sig.DIRECTION_LONG: "long", sig.DIRECTION_SHORT: "short", sig.DIRECTION_FLAT: "flat"}
_ACTIONS = {
    sig.POSITION_ACTION_OPEN: "open",
    sig.POSITION_ACTION_CLOSE: "close",
    sig.POSITION_ACTION_REDUCE: "reduce",
    sig.POSITION_ACTION_FLIP: "flip",
}


class Rows:
    """The rows of one batch, per table."""

    def __init__(self) -> None:
        self.trades: list[Row] = []
        self.book: list[Row] = []
        self.tickers: list[Row] = []
        self.candles: list[Row] = []
        self.notices: list[Row] = []
        self.bars: list[Row] = []
        self.signals: list[Row] = []
        self.position_requests: list[Row] = []

    def tables(self) -> list[tuple[Table, list[Row]]]:
        """The tables that have rows, with them."""
        pairs = (
            (TRADES, self.trades),
            (BOOK, self.book),
            (TICKERS, self.tickers),
            (CANDLES, self.candles),
            (NOTICES, self.notices),
            (BARS, self.bars),
            (SIGNALS, self.signals),
            (POSITION_REQUESTS, self.position_requests),
        )
        return [(table, rows) for table, rows in pairs if rows]

    def __len__(self) -> int:
        return sum(len(rows) for _, rows in self.tables())


def chunks(entries: list[Entry], max_events: int) -> Iterator[list[Entry]]:
    """The entries in runs of about max_events events (an entry is never split)."""
    start, events = 0, 0
    for index, (_, envelope) in enumerate(entries):
        events += len(envelope.market.events) + len(envelope.bars.bars)
        events += len(envelope.signals.signals) + len(envelope.position_requests.requests)
        if events >= max_events:
            yield entries[start : index + 1]
            start, events = index + 1, 0
    if start < len(entries):
        yield entries[start:]


def rows_of(entries: Iterable[Entry]) -> Rows:
    rows = Rows()
    for entry_id, envelope in entries:
        body = envelope.WhichOneof("body")
        if body == "market":
            _add_market(rows, envelope.market.events, entry_id)
        elif body == "bars":
            _add_bars(rows, envelope.bars.bars, envelope.ts_publish_ns)
        elif body == "signals":
            rows.signals.extend(_signal_row(signal) for signal in envelope.signals.signals)
        elif body == "position_requests":
            rows.position_requests.extend(_request_row(r) for r in envelope.position_requests.requests)
        else:
            raise Corrupt(f"bus entry {entry_id}: an envelope body the recorder does not know ({body})")
    return rows


def _add_market(rows: Rows, events: Iterable[md.MarketEvent], entry_id: str) -> None:
    # Book deltas and trades, most of the events, are tested first; a trade row is built inline.
    trades, book = rows.trades.append, rows.book.append
    for event in events:
        kind = event.WhichOneof("payload")
        if kind == "book_delta":
            book(_book_row(event, event.book_delta, False))
        elif kind == "trade":
            trade = event.trade
            trades(
                (
                    event.venue,
                    event.symbol,
                    event.ts_event_ns,
                    event.ts_recv_ns,
                    trade.trade_id,
                    trade.price,
                    trade.size,
                    _SIDES.get(trade.taker_side),
                )
            )
        elif kind == "book_snapshot":
            book(_book_row(event, event.book_snapshot, True))
        elif kind == "ticker":
            rows.tickers.append(_ticker_row(event))
        elif kind == "candle":
            rows.candles.append(_candle_row(event))
        elif kind == "notice":
            rows.notices.append(_notice_row(event))
        else:
            raise Corrupt(f"bus entry {entry_id}: a {event.venue} {event.symbol} event with no known payload")


def _book_row(event: md.MarketEvent, book: md.BookDelta | md.BookSnapshot, snapshot: bool) -> Row:
    bid_prices, bid_sizes = _side(book.bids, "bid")
    ask_prices, ask_sizes = _side(book.asks, "ask")
    return (
        event.venue,
        event.symbol,
        event.ts_event_ns,
        event.ts_recv_ns,
        book.sequence,
        snapshot,
        bid_prices,
        bid_sizes,
        ask_prices,
        ask_sizes,
    )


def _side(levels: Sequence[md.BookLevel], side: str) -> tuple[str, str]:
    """One side's prices and sizes, each space-joined (PostgreSQL splits them again). A value
    holding a space would split into two numbers, so it is refused here."""
    count = len(levels)
    if count == 0:
        return "", ""
    if count == 1:  # a delta mostly changes one level: no lists, no joins
        level = levels[0]
        prices, sizes = level.price, level.size
    else:
        pairs = [(level.price, level.size) for level in levels]
        prices, sizes = " ".join([pair[0] for pair in pairs]), " ".join([pair[1] for pair in pairs])
    if prices.count(" ") != count - 1 or sizes.count(" ") != count - 1:
        raise Corrupt(f"{side} level price or size holds a space: {prices[:60]!r} / {sizes[:60]!r}")
    return prices, sizes


def _ticker_row(event: md.MarketEvent) -> Row:
    ticker = event.ticker
    return (
        event.venue,
        event.symbol,
        event.ts_event_ns,
        event.ts_recv_ns,
        ticker.best_bid,
        ticker.best_bid_size,
        ticker.best_ask,
        ticker.best_ask_size,
        ticker.last_price,
    )


def _candle_row(event: md.MarketEvent) -> Row:
    candle = event.candle
    return (
        event.venue,
        event.symbol,
        event.ts_event_ns,
        event.ts_recv_ns,
        _known(_TIMEFRAMES, candle.timeframe, "candle timeframe"),
        candle.open_time_ns,
        candle.open,
        candle.high,
        candle.low,
        candle.close,
        candle.volume,
        candle.quote_volume,
        candle.trade_count,
        candle.closed,
    )


def _notice_row(event: md.MarketEvent) -> Row:
    notice = event.notice
    return (
        event.venue,
        event.symbol,
        event.ts_event_ns,
        event.ts_recv_ns,
        _known(_NOTICE_KINDS, notice.kind, "notice kind"),
        _known(_CHANNELS, notice.channel, "notice channel"),
        notice.reason,
        notice.since_ns if notice.since_ns != 0 else None,
    )


def _add_bars(rows: Rows, bars: Iterable[bus.Bar], ts_publish_ns: int) -> None:
    for bar in bars:
        rows.bars.append(
            (
                bar.venue,
                bar.symbol,
                _known(_TIMEFRAMES, bar.timeframe, "bar timeframe"),
                bar.open_time_ns,
                bar.open,
                bar.high,
                bar.low,
                bar.close,
                bar.volume,
                bar.quote_volume,
                bar.trade_count,
                bar.vwap,
                bar.repaired,
                ts_publish_ns,
            )
        )


def _signal_row(signal: sig.Signal) -> Row:
    return (
        signal.signal_id,
        signal.venue,
        signal.symbol,
        _known(_DIRECTIONS, signal.direction, "signal direction"),
        signal.conviction,
        signal.score,
        signal.threshold,
        signal.strategy_id,
        signal.patch_version,
        _rules_json(signal.rules),
        signal.ts_event_ns,
        signal.ts_signal_ns,
    )


def _rules_json(rules: Iterable[sig.RuleAttribution]) -> str:
    """The rules as a JSON array for the jsonb column; weights stay decimal strings (exact)."""
    return json.dumps(
        [{"name": r.name, "weight": r.weight, "value": r.value, "fired": r.fired} for r in rules],
        separators=(",", ":"),
    )


def _request_row(request: sig.PositionRequest) -> Row:
    # Close and reduce carry no direction: NULL, where an unknown one is still refused.
    direction = None
    if request.direction != sig.DIRECTION_UNSPECIFIED:
        direction = _known(_DIRECTIONS, request.direction, "position request direction")
    return (
        request.request_id,
        request.venue,
        request.symbol,
        _known(_ACTIONS, request.action, "position request action"),
        direction,
        request.fraction,
        request.strategy_id,
        request.patch_version,
        request.ts_event_ns,
        request.ts_request_ns,
    )


def _known(names: Mapping[Any, str], value: int, what: str) -> str:
    name = names.get(value)
    if name is None:
        raise Corrupt(f"{what} {value} is not one the recorder knows")
    return name
