"""Turn wire requests into checked domain values, or InvalidArgument naming every bad field."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.core.domain.convert import (
    CHANNEL_FROM_PB,
    TIMEFRAME_FROM_PB,
)
from trademesh.core.domain.model import Channel, Instrument, InstrumentKind, StreamKey, Timeframe
from trademesh.core.domain.order_rules import Violations, check_enum, instrument_of, place_order
from trademesh.core.platform.errors import InvalidArgument, shown
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.venues.runtime.deadman import MAX_TTL_MS, MIN_TTL_MS
from trademesh.venues.runtime.trades import DEFAULT_TRADES, MAX_TRADES, TradesCursor, decode_token
from trademesh.venues.runtime.venue import OrderRef

__all__ = [
    "DERIVATIVE_CHANNELS",
    "MAX_REASON_CHARS",
    "Subscription",
    "cancel_reason",
    "candles_request",
    "channel_refused",
    "funding_request",
    "has_funding",
    "heartbeat_ttl",
    "no_funding",
    "order_ref",
    "place_order",
    "stream_keys",
    "subscribe_request",
    "symbol_filter",
    "tickers_request",
    "trades_request",
]

MAX_CANDLES = 5000
MAX_FUNDING_PAYMENTS = 1000
DEFAULT_FUNDING_PAYMENTS = 100


def order_ref(order_id: str, client_order_id: str) -> OrderRef:
    if (order_id == "") == (client_order_id == ""):
        raise InvalidArgument.field("order_id", "set exactly one of order_id and client_order_id")
    return OrderRef(order_id=order_id, client_order_id=client_order_id)


# A cancel's reason: one line, the edge's string limit (trademesh.core.platform.rpc.limits), nothing
# PostgreSQL cannot store (it becomes the order's status_reason, recorded with its execution).
MAX_REASON_CHARS = 256
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def cancel_reason(reason: str) -> str:
    """The reason of a CancelOrder or CancelAllOrders, checked (empty: none given)."""
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidArgument.field("reason", f"is {len(reason)} characters; at most {MAX_REASON_CHARS}")
    if _CONTROL.search(reason):
        raise InvalidArgument.field("reason", "must be one line of printable text (no control characters)")
    return reason.strip()


def symbol_filter(symbol: str, instruments: Mapping[str, Instrument], field: str = "symbol") -> str | None:
    if symbol == "":
        return None
    if symbol not in instruments:
        raise InvalidArgument.field(field, f"unknown symbol {shown(symbol)}")
    return symbol


@dataclass(frozen=True)
class Subscription:
    """A Subscribe request checked: the streams to serve, and the symbols it names that the
    venue does not list (refused alone, with their reason: the others are served)."""

    keys: list[StreamKey]
    timeframe: Timeframe
    unknown: list[tuple[str, str]]  # (symbol, reason)


def _symbols(
    found: Violations, symbols: Sequence[str], instruments: Mapping[str, Instrument]
) -> list[tuple[str, str]]:
    """The unknown symbols with their reasons; a violation each when no symbol is known (a
    subscription of which nothing can be served is refused whole)."""
    if not symbols:
        found.add("symbols", "name at least one symbol")
    unknown: dict[str, tuple[str, str]] = {}
    known = False
    for index, symbol in enumerate(symbols):
        if symbol == "":
            found.add(f"symbols[{index}]", "is required")
        elif symbol in instruments:
            known = True
        else:
            why = f"unknown symbol {shown(symbol)}; ListInstruments names the venue's symbols"
            unknown.setdefault(symbol, (f"symbols[{index}]", why))
    if not known:
        for field, why in unknown.values():
            found.add(field, why)
    return [(symbol, why) for symbol, (_, why) in unknown.items()]


def subscribe_request(request: md.SubscribeRequest, instruments: Mapping[str, Instrument]) -> Subscription:
    found = Violations()
    unknown = _symbols(found, request.symbols, instruments)
    if not request.channels:
        found.add("channels", "name at least one channel")
    for index, channel in enumerate(request.channels):
        check_enum(found, f"channels[{index}]", channel, CHANNEL_FROM_PB, "channel")
    timeframe = Timeframe.M1
    if request.candle_timeframe != 0:
        if request.candle_timeframe in TIMEFRAME_FROM_PB:
            timeframe = TIMEFRAME_FROM_PB[request.candle_timeframe]
        else:
            found.add("candle_timeframe", f"{request.candle_timeframe} is not a valid timeframe")
    if request.overflow_policy not in md.OverflowPolicy.values():
        found.add("overflow_policy", f"{request.overflow_policy} is not a valid overflow policy")
    found.raise_any()
    served = [s for s in dict.fromkeys(request.symbols) if s in instruments]
    keys = [StreamKey(s, CHANNEL_FROM_PB[c]) for s in served for c in request.channels]
    return Subscription(list(dict.fromkeys(keys)), timeframe, unknown)


def candles_request(
    request: md.GetCandlesRequest, instruments: Mapping[str, Instrument], now_ns: int
) -> tuple[str, Timeframe, int, int, int]:
    found = Violations()
    instrument_of(found, "symbol", request.symbol, instruments)
    check_enum(found, "timeframe", request.timeframe, TIMEFRAME_FROM_PB, "timeframe")
    end_ns = request.end_ns or now_ns
    if request.start_ns < 0:
        found.add("start_ns", "must not be negative")
    if end_ns <= request.start_ns:
        found.add("end_ns", "must be after start_ns (or 0 for now)")
    if request.limit > MAX_CANDLES:
        found.add("limit", f"at most {MAX_CANDLES}")
    found.raise_any()
    limit = request.limit or 1000
    return request.symbol, TIMEFRAME_FROM_PB[request.timeframe], request.start_ns, end_ns, limit


def trades_request(
    request: md.GetTradesRequest, instruments: Mapping[str, Instrument], now_ns: int
) -> tuple[TradesCursor, int]:
    """The cursor of a GetTrades page (its first page's, or its page_token's) and its limit."""
    found = Violations()
    instrument_of(found, "symbol", request.symbol, instruments)
    if request.limit > MAX_TRADES:
        found.add("limit", f"at most {MAX_TRADES} (0: {DEFAULT_TRADES})")
    cursor: TradesCursor | None = None
    if request.page_token:
        try:
            cursor = decode_token(request.page_token)
        except ValueError as exc:
            found.add("page_token", f"{exc}: pass the next_page_token of the previous answer, or none")
        else:
            if request.symbol and cursor.symbol != request.symbol:
                theirs, ours = shown(cursor.symbol), shown(request.symbol)
                found.add("page_token", f"is a page of {theirs}, not of {ours}")
    else:
        end_ns = request.end_ns or now_ns
        if request.start_ns < 0:
            found.add("start_ns", "must not be negative")
        elif request.end_ns < 0 or end_ns <= request.start_ns:
            found.add("end_ns", "must be after start_ns (or 0 for now)")
        cursor = TradesCursor(request.symbol, end_ns, request.start_ns)
    found.raise_any()
    assert cursor is not None
    return cursor, request.limit or DEFAULT_TRADES


def tickers_request(request: md.GetTickersRequest, instruments: Mapping[str, Instrument]) -> list[str]:
    """The symbols of a GetTickers request, in the venue's order (every listed one when none)."""
    found = Violations()
    for index, symbol in enumerate(request.symbols):
        instrument_of(found, f"symbols[{index}]", symbol, instruments)
    found.raise_any()
    wanted = set(request.symbols)
    return [symbol for symbol in sorted(instruments) if not wanted or symbol in wanted]


def funding_request(
    request: tf.ListFundingPaymentsRequest, instruments: Mapping[str, Instrument], now_ns: int
) -> tuple[str | None, int, int]:
    """(symbol or None for all, since_ns, limit) of a ListFundingPayments request."""
    found = Violations()
    if request.symbol and request.symbol not in instruments:
        found.add("symbol", f"unknown symbol {shown(request.symbol)}; ListInstruments names the symbols")
    if request.since_ns < 0:
        found.add("since_ns", "must not be negative (0: from the oldest payment)")
    elif request.since_ns > now_ns:
        found.add("since_ns", "must not be in the future")
    if not 0 <= request.limit <= MAX_FUNDING_PAYMENTS:
        found.add("limit", f"must be between 0 and {MAX_FUNDING_PAYMENTS} (0: {DEFAULT_FUNDING_PAYMENTS})")
    found.raise_any()
    return request.symbol or None, request.since_ns, request.limit or DEFAULT_FUNDING_PAYMENTS


def stream_keys(
    subscriptions: Sequence[admin.Subscription],
    instruments: Mapping[str, Instrument],
    offered: frozenset[Channel] = frozenset(Channel),
) -> list[StreamKey]:
    """The streams an Admin Add/RemoveSubscriptions names; a channel the venue does not offer
    (`offered`), or one the instrument cannot have (channel_refused), is a field violation."""
    found = Violations()
    if not subscriptions:
        found.add("subscriptions", "name at least one subscription")
    for index, item in enumerate(subscriptions):
        instrument = instrument_of(found, f"subscriptions[{index}].symbol", item.symbol, instruments)
        check_enum(found, f"subscriptions[{index}].channel", item.channel, CHANNEL_FROM_PB, "channel")
        channel = CHANNEL_FROM_PB.get(item.channel)
        refused = None if instrument is None else channel_refused(instrument, channel)
        if channel is not None and channel not in offered:
            refused = f"this venue has no {channel.value} channel"
        if refused is not None:
            found.add(f"subscriptions[{index}].channel", refused)
    found.raise_any()
    return [StreamKey(item.symbol, CHANNEL_FROM_PB[item.channel]) for item in subscriptions]


def has_funding(instrument: Instrument) -> bool:
    """Only a perpetual has a funding rate (CHANNEL_FUNDING)."""
    return instrument.kind is InstrumentKind.PERPETUAL


def no_funding(instrument: Instrument) -> str:
    return f"{instrument.symbol} is {instrument.kind.value}: only a perpetual has a funding rate"


# A derivative's own channels: mark and index prices, open interest, the market's liquidations.
DERIVATIVE_CHANNELS = frozenset({Channel.MARK, Channel.OPEN_INTEREST, Channel.LIQUIDATIONS})


def channel_refused(instrument: Instrument, channel: Channel | None) -> str | None:
    """Why `instrument` has no stream on `channel` whatever the venue: funding is a perpetual's
    (CHANNEL_FUNDING), mark, open interest and liquidations a derivative's (not spot); None when
    it may have one."""
    if channel is Channel.FUNDING and not has_funding(instrument):
        return no_funding(instrument)
    if channel in DERIVATIVE_CHANNELS and instrument.kind is InstrumentKind.SPOT:
        what = channel.value.replace("_", " ")
        return f"{instrument.symbol} is spot: only a derivative has a {what} stream"
    return None


def heartbeat_ttl(ttl_ms: int) -> int:
    """0 (disarm), or MIN_TTL_MS to MAX_TTL_MS."""
    if ttl_ms > MAX_TTL_MS:
        raise InvalidArgument.field("ttl_ms", f"{ttl_ms} is above the maximum {MAX_TTL_MS}")
    if 0 < ttl_ms < MIN_TTL_MS:
        raise InvalidArgument.field(
            "ttl_ms", f"{ttl_ms} is below the minimum {MIN_TTL_MS} (0 disarms the switch)"
        )
    return ttl_ms
