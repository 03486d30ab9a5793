"""What an order must be to be placed: the contract's rules for a PlaceOrderRequest, against the
venue's instruments (its symbol listed, its enums known, size, price and trigger on the venue's
lot and tick, the minimum notional, a client order id's form). Every venue applies them before
it trades (trademesh.venues.runtime.validate) and the backtest before its replayed venue does
(trademesh.core.backtest.inspect), so a request is refused the same way live and in a backtest. Each bad
field is named, all at once (InvalidArgument with its field violations).
"""

from __future__ import annotations

import re
from collections.abc import Container, Mapping
from decimal import Decimal
from typing import Any

from trademesh.core.domain.convert import (
    MARGIN_MODE_FROM_PB,
    ORDER_TYPE_FROM_PB,
    SIDE_FROM_PB,
    TIF_FROM_PB,
    order_request_to_pb,
)
from trademesh.core.domain.decimals import format_decimal, is_multiple, parse_decimal
from trademesh.core.domain.model import (
    Amendment,
    Instrument,
    InstrumentKind,
    MarginMode,
    Order,
    OrderRequest,
    OrderType,
    TimeInForce,
)
from trademesh.core.platform.errors import FailedPrecondition, FieldViolation, InvalidArgument, shown
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = [
    "Violations",
    "amend_order",
    "amended_request",
    "check_enum",
    "instrument_of",
    "leverage_symbol",
    "place_order",
    "require_unfilled",
    "set_leverage",
]

_TYPE_WORDS = {
    OrderType.LIMIT: "limit",
    OrderType.MARKET: "market",
    OrderType.STOP_MARKET: "stop-market",
    OrderType.STOP_LIMIT: "stop-limit",
}
_CLIENT_ORDER_ID = re.compile(r"[A-Za-z0-9._:\-]{1,64}")


class Violations:
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


def instrument_of(
    found: Violations, field: str, symbol: str, instruments: Mapping[str, Instrument]
) -> Instrument | None:
    if symbol == "":
        found.add(field, "is required")
        return None
    if symbol not in instruments:
        found.add(field, f"unknown symbol {shown(symbol)}; ListInstruments names the venue's symbols")
        return None
    return instruments[symbol]


def check_enum(found: Violations, field: str, value: int, table: Container[Any], what: str) -> None:
    if value == 0:
        found.add(field, "is required")
    elif value not in table:
        found.add(field, f"{value} is not a valid {what}")


def place_order(request: tf.PlaceOrderRequest, instruments: Mapping[str, Instrument]) -> OrderRequest:
    found = Violations()
    instrument = instrument_of(found, "symbol", request.symbol, instruments)
    check_enum(found, "side", request.side, SIDE_FROM_PB, "side")
    check_enum(found, "type", request.type, ORDER_TYPE_FROM_PB, "order type")
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


def amend_order(request: tf.AmendOrderRequest, reason: str) -> Amendment:
    """An AmendOrderRequest's change (the order it names is the caller's to find): each value
    given a positive decimal, a new client order id of the placement's form, at least one."""
    found = Violations()
    if (request.order_id == "") == (request.client_order_id == ""):
        found.add("order_id", "set exactly one of order_id and client_order_id")
    values = {
        field: _positive(found, field, getattr(request, field))
        for field in ("price", "size", "trigger_price")
    }
    renamed = request.new_client_order_id
    if renamed and not _CLIENT_ORDER_ID.fullmatch(renamed):
        found.add("new_client_order_id", "must be 1-64 characters of A-Z a-z 0-9 . _ : -")
    if not found.items and not renamed and all(v is None for v in values.values()):
        found.add("size", "name at least one of price, size, trigger_price and new_client_order_id")
    found.raise_any()
    return Amendment(
        price=values["price"],
        size=values["size"],
        trigger_price=values["trigger_price"],
        client_order_id=renamed,
        reason=reason,
        unfilled_only=request.unfilled_only,
    )


def require_unfilled(order: Order, change: Amendment) -> None:
    """FailedPrecondition for an amendment asked `unfilled_only` of an order that has filled."""
    if change.unfilled_only and order.filled_size > 0:
        raise FailedPrecondition(
            f"order {order.order_id} has filled {format_decimal(order.filled_size)}: not amended "
            "(unfilled_only); it is unchanged"
        )


def amended_request(order: Order, change: Amendment, instrument: Instrument) -> OrderRequest:
    """The open `order` as `change` makes it (its size the new total), checked as a placement
    would be, each bad value named by the AmendOrder field that set it."""
    found = Violations()
    if change.price is not None and not order.type.has_price:
        found.add("price", f"a {_TYPE_WORDS[order.type]} order has no limit price")
    if change.trigger_price is not None and not order.type.is_stop:
        found.add("trigger_price", "is for stop orders only")
    size = order.size if change.size is None else change.size
    if size <= order.filled_size:
        found.add("size", f"must be above the size filled so far, {format_decimal(order.filled_size)}")
    found.raise_any()
    request = OrderRequest(
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        size=size,
        price=order.price if change.price is None else change.price,
        time_in_force=order.time_in_force,
        post_only=order.post_only,
        reduce_only=order.reduce_only,
        client_order_id=change.client_order_id,
        trigger_price=order.trigger_price if change.trigger_price is None else change.trigger_price,
    )
    return place_order(order_request_to_pb(request), {instrument.symbol: instrument})


def set_leverage(
    request: tf.SetLeverageRequest, instruments: Mapping[str, Instrument], modes: Container[MarginMode]
) -> tuple[str, Decimal, MarginMode | None]:
    """(symbol, leverage, margin mode or None to keep it) of a SetLeverage request: a derivatives
    symbol the venue lists, a positive leverage, a mode the venue offers (`modes`)."""
    found = Violations()
    symbol = leverage_symbol(found, request.symbol, instruments)
    leverage = found.decimal("leverage", request.leverage)
    if leverage is not None and leverage <= 0:
        found.add("leverage", f"must be positive, got {request.leverage}")
    mode = None
    if request.margin_mode:
        mode = MARGIN_MODE_FROM_PB.get(request.margin_mode)
        if mode is None or mode not in modes:
            offered = ", ".join(sorted(m.value for m in MarginMode if m in modes)) or "none"
            found.add("margin_mode", f"is not one this venue offers ({offered})")
    found.raise_any()
    assert leverage is not None
    return symbol, leverage, mode


def leverage_symbol(found: Violations, symbol: str, instruments: Mapping[str, Instrument]) -> str:
    """A derivatives symbol the venue lists (a violation on `symbol` otherwise)."""
    instrument = instrument_of(found, "symbol", symbol, instruments)
    if instrument is not None and instrument.kind is InstrumentKind.SPOT:
        found.add("symbol", f"{shown(symbol)} is spot: leverage and margin modes are for derivatives")
    return symbol


def _positive(found: Violations, field: str, text: str) -> Decimal | None:
    value = found.decimal(field, text, required=False)
    if value is not None and value <= 0:
        found.add(field, f"must be positive, got {text}")
        return None
    return value


def _size(found: Violations, text: str, instrument: Instrument | None) -> Decimal | None:
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
    found: Violations, text: str, order_type: OrderType | None, instrument: Instrument | None
) -> Decimal | None:
    if order_type is not None and not order_type.has_price:
        if text != "":
            found.add("price", f"must be empty for a {_TYPE_WORDS[order_type]} order")
        return None
    required = order_type is not None and order_type.has_price
    return _tick_price(found, "price", text, instrument, required=required)


def _trigger_price(
    found: Violations, text: str, order_type: OrderType | None, instrument: Instrument | None
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
    found: Violations, field: str, text: str, instrument: Instrument | None, *, required: bool
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
    found: Violations, request: tf.PlaceOrderRequest, order_type: OrderType | None
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


def _check_notional(found: Violations, instrument: Instrument, size: Decimal, price: Decimal) -> None:
    notional = instrument.notional(size, price)  # inverse contracts: size * face value, not * price
    if notional < instrument.min_notional:
        minimum = format_decimal(instrument.min_notional)
        found.add("size", f"notional {format_decimal(notional)} is below the minimum {minimum}")
