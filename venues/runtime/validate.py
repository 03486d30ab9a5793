"""Turn wire requests into checked domain values, or InvalidArgument naming every bad field."""

from __future__ import annotations

import re
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from core.convert import (
    CHANNEL_FROM_PB,
    ORDER_TYPE_FROM_PB,
    SIDE_FROM_PB,
    TIF_FROM_PB,
    TIMEFRAME_FROM_PB,
)
from core.decimals import format_decimal, is_multiple, parse_decimal
from core.errors import FieldViolation, InvalidArgument, shown
from core.model import Instrument, OrderRequest, OrderType, StreamKey, Timeframe, TimeInForce
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from venues.runtime.deadman import MAX_TTL_MS, MIN_TTL_MS
from venues.runtime.venue import OrderRef

__all__ = [
    "MAX_REASON_CHARS",
    "Subscription",
    "cancel_reason",
    "candles_request",
    "funding_request",
    "heartbeat_ttl",
    "order_ref",
    "place_order",
    "stream_keys",
    "subscribe_request",
    "symbol_filter",
]

_TYPE_WORDS = {
    OrderType.LIMIT: "limit",
    OrderType.MARKET: "market",
    OrderType.STOP_MARKET: "stop-market",
    OrderType.STOP_LIMIT: "stop-limit",
}
_CLIENT_ORDER_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")
MAX_CANDLES = 5000
MAX_FUNDING_PAYMENTS = 1000
DEFAULT_FUNDING_PAYMENTS = 100


class _Violations:
    """Collects every bad field of a request so the caller sees them all at once."""

    def __init__(self) -> None:
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def decimal(self, field: str, text: str, *, required: bool = True) -> Decimal | None:
        try:
            return parse_decimal(field, text, required=required)
        except InvalidArgument as exc:
            self.items += exc.violations
            return None

    def raise_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


def _instrument(
    found: _Violations, field: str, symbol: str, instruments: Mapping[str, Instrument]
) -> Instrument | None:
    if symbol == "":
        found.add(field, "is required")
        return None
    if symbol not in instruments:
        found.add(field, f"unknown symbol {shown(symbol)}; ListInstruments names the venue's symbols")
        return None
    return instruments[symbol]


def _enum(found: _Violations, field: str, value: int, table: Container[Any], what: str) -> None:
    if value == 0:
        found.add(field, "is required")
    elif value not in table:
        found.add(field, f"{value} is not a valid {what}")


def place_order(request: tf.PlaceOrderRequest, instruments: Mapping[str, Instrument]) -> OrderRequest:
    found = _Violations()
    instrument = _instrument(found, "symbol", request.symbol, instruments)
    _enum(found, "side", request.side, SIDE_FROM_PB, "side")
    _enum(found, "type", request.type, ORDER_TYPE_FROM_PB, "order type")
    order_type = ORDER_TYPE_FROM_PB.get(request.type)
    size = _size(found, request.size, instrument)
    price = _price(found, request.price, order_type, instrument)
    trigger = _trigger_price(found, request.trigger_price, order_type, instrument)
    tif = _time_in_force(found, request, order_type)
    if request.client_order_id and not _CLIENT_ORDER_ID.fullmatch(request.client_order_id):
        found.add("client_order_id", "must be 1-64 characters of A-Z a-z 0-9 . _ : -")
    reference = price if price is not None else trigger  # a stop-market's notional at its trigger
    if instrument is not None and size is not None and reference is not None:
        _check_notional(found, instrument, size, reference)
    found.raise_any()
    assert order_type is not None and size is not None and tif is not None
    return OrderRequest(
        symbol=request.symbol,
        side=SIDE_FROM_PB[request.side],
        type=order_type,
        size=size,
        price=price,
        time_in_force=tif,
        post_only=request.post_only,
        reduce_only=request.reduce_only,
        client_order_id=request.client_order_id,
        trigger_price=trigger,
    )


def _size(found: _Violations, text: str, instrument: Instrument | None) -> Decimal | None:
    size = found.decimal("size", text)
    if size is None:
        return None
    if size <= 0:
        found.add("size", f"must be positive, got {text}")
    elif instrument is not None and not is_multiple(size, instrument.lot_size):
        found.add("size", f"{text} is not a multiple of the lot size {format_decimal(instrument.lot_size)}")
    elif instrument is not None and size < instrument.min_size:
        found.add("size", f"{text} is below the minimum size {format_decimal(instrument.min_size)}")
    else:
        return size
    return None


def _price(
    found: _Violations, text: str, order_type: OrderType | None, instrument: Instrument | None
) -> Decimal | None:
    if order_type is not None and not order_type.has_price:
        if text != "":
            found.add("price", f"must be empty for a {_TYPE_WORDS[order_type]} order")
        return None
    required = order_type is not None and order_type.has_price
    return _tick_price(found, "price", text, instrument, required=required)


def _trigger_price(
    found: _Violations, text: str, order_type: OrderType | None, instrument: Instrument | None
) -> Decimal | None:
    """Required for a stop order (the last trade price that triggers it), empty otherwise."""
    if order_type is None:
        return None
    if not order_type.is_stop:
        if text != "":
            found.add("trigger_price", f"must be empty for a {_TYPE_WORDS[order_type]} order (stops only)")
        return None
    return _tick_price(found, "trigger_price", text, instrument, required=True)


def _tick_price(
    found: _Violations, field: str, text: str, instrument: Instrument | None, *, required: bool
) -> Decimal | None:
    price = found.decimal(field, text, required=required)
    if price is None:
        return None
    if price <= 0:
        found.add(field, f"must be positive, got {text}")
    elif instrument is not None and not is_multiple(price, instrument.tick_size):
        found.add(field, f"{text} is not a multiple of the tick size {format_decimal(instrument.tick_size)}")
    else:
        return price
    return None


def _time_in_force(
    found: _Violations, request: tf.PlaceOrderRequest, order_type: OrderType | None
) -> TimeInForce | None:
    if request.time_in_force != 0 and request.time_in_force not in TIF_FROM_PB:
        found.add("time_in_force", f"{request.time_in_force} is not a valid time in force")
        return None
    works_as = (
        None if order_type is None else order_type.triggered_type
    )  # a stop's TIF applies once triggered
    default = TimeInForce.IOC if works_as is OrderType.MARKET else TimeInForce.GTC
    tif = TIF_FROM_PB.get(request.time_in_force, default)
    if works_as is OrderType.MARKET and tif is TimeInForce.GTC:
        what = "a market order" if order_type is OrderType.MARKET else "a stop-market order, once triggered,"
        found.add("time_in_force", f"{what} cannot rest: use IOC or FOK")
    if request.post_only and (order_type is not OrderType.LIMIT or tif is not TimeInForce.GTC):
        found.add("post_only", "only a GTC limit order can be post-only")
    return tif


def _check_notional(found: _Violations, instrument: Instrument, size: Decimal, price: Decimal) -> None:
    notional = instrument.notional(size, price)  # inverse contracts: size * face value, not * price
    if notional < instrument.min_notional:
        minimum = format_decimal(instrument.min_notional)
        found.add("size", f"notional {format_decimal(notional)} is below the minimum {minimum}")


def order_ref(order_id: str, client_order_id: str) -> OrderRef:
    if (order_id == "") == (client_order_id == ""):
        raise InvalidArgument.field("order_id", "set exactly one of order_id and client_order_id")
    return OrderRef(order_id=order_id, client_order_id=client_order_id)


# A cancel's reason: one line, the edge's string limit (core.rpc.limits), nothing PostgreSQL
# cannot store (it becomes the order's status_reason, recorded with its execution).
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
    found: _Violations, symbols: Sequence[str], instruments: Mapping[str, Instrument]
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
    found = _Violations()
    unknown = _symbols(found, request.symbols, instruments)
    if not request.channels:
        found.add("channels", "name at least one channel")
    for index, channel in enumerate(request.channels):
        _enum(found, f"channels[{index}]", channel, CHANNEL_FROM_PB, "channel")
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
    found = _Violations()
    _instrument(found, "symbol", request.symbol, instruments)
    _enum(found, "timeframe", request.timeframe, TIMEFRAME_FROM_PB, "timeframe")
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


def funding_request(
    request: tf.ListFundingPaymentsRequest, instruments: Mapping[str, Instrument], now_ns: int
) -> tuple[str | None, int, int]:
    """(symbol or None for all, since_ns, limit) of a ListFundingPayments request."""
    found = _Violations()
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
    subscriptions: Sequence[admin.Subscription], instruments: Mapping[str, Instrument]
) -> list[StreamKey]:
    found = _Violations()
    if not subscriptions:
        found.add("subscriptions", "name at least one subscription")
    for index, item in enumerate(subscriptions):
        _instrument(found, f"subscriptions[{index}].symbol", item.symbol, instruments)
        _enum(found, f"subscriptions[{index}].channel", item.channel, CHANNEL_FROM_PB, "channel")
    found.raise_any()
    return [StreamKey(item.symbol, CHANNEL_FROM_PB[item.channel]) for item in subscriptions]


def heartbeat_ttl(ttl_ms: int) -> int:
    """0 (disarm), or MIN_TTL_MS to MAX_TTL_MS."""
    if ttl_ms > MAX_TTL_MS:
        raise InvalidArgument.field("ttl_ms", f"{ttl_ms} is above the maximum {MAX_TTL_MS}")
    if 0 < ttl_ms < MIN_TTL_MS:
        raise InvalidArgument.field(
            "ttl_ms", f"{ttl_ms} is below the minimum {MIN_TTL_MS} (0 disarms the switch)"
        )
    return ttl_ms
