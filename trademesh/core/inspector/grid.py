"""A protective order's price on its venue's grid: planned by the core as a fraction from the entry
(docs/inspector.md), it rarely falls on the instrument's tick, and a venue refuses a price off its
grid. It is rounded before placing: away from the market (a sell up, a buy down), so the order is
never worse than planned. The live shell (trademesh.core.inspector.executor, tick sizes from
trademesh.core.inspector.ticks) and a backtest round alike. Pure: no I/O."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.model import Side
from trademesh.core.inspector.engine.actions import OrderRole, PlaceOrder
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["gridded_price", "on_grid", "put_on_grid"]


def on_grid(price: Decimal, tick: Decimal, side: Side) -> Decimal:
    """`price` on the grid of `tick`, rounded away from the market for `side`."""
    if tick <= 0:
        return price
    steps = (price / tick).to_integral_value(ROUND_CEILING if side is Side.SELL else ROUND_FLOOR)
    return (steps * tick).quantize(tick) if steps * tick != price else price


def gridded_price(order: PlaceOrder, native: bool) -> Decimal | None:
    """The price of `order` that must be on the grid: a take-profit's limit, a native stop's
    trigger; None for any other order."""
    if order.role is OrderRole.TAKE_PROFIT:
        return order.price
    return order.trigger_price if native else None


def put_on_grid(order: PlaceOrder, request: tf.PlaceOrderRequest, native: bool, tick: Decimal) -> None:
    """The request's gridded price on the grid of `tick`. A take-profit's limit goes away from
    the market (a better price); a native stop's trigger toward it (a sell stop rounds up: it
    triggers no later than planned). Both: a sell rounds up, a buy down."""
    price = gridded_price(order, native)
    if price is None:
        return
    text = format_decimal(on_grid(price, tick, order.side))
    if order.role is OrderRole.TAKE_PROFIT:
        request.price = text
    else:
        request.trigger_price = text
