"""Each venue's price grid: a protective order's price is planned by the core as a fraction from
the entry (docs/inspector.md), which rarely falls on the instrument's tick, and a venue refuses
a price off its grid. The shell rounds it before placing: away from the market (a sell up, a buy
down), so the order is never worse than planned. Tick sizes come from the venue's
ListInstruments, asked once per venue (again after a failure); the same answer gives the core
its instrument facts (minimum size and notional, lot size: core.inspector.runtime journals
them)."""

from __future__ import annotations

import logging
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from core.foundations.decimals import format_decimal
from core.foundations.model import Side
from core.inspector.engine.actions import OrderRole, PlaceOrder
from core.inspector.venues import VenueLinks
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["TickSizes", "gridded_price", "on_grid", "put_on_grid"]

log = logging.getLogger(__name__)


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


class TickSizes:
    def __init__(self, links: VenueLinks, timeout_s: float) -> None:
        self.links = links
        self.timeout_s = timeout_s
        self._listed: dict[str, dict[str, common.Instrument]] = {}

    async def tick(self, venue: str, symbol: str) -> Decimal | None:
        """The symbol's tick size at the venue; None when the venue does not say."""
        listed = await self.instruments(venue)
        item = None if listed is None else listed.get(symbol)
        return Decimal(item.tick_size) if item is not None and item.tick_size else None

    def forget(self, venue: str) -> None:
        """The venue's list changed (md.{<venue>}.instruments): asked again next time."""
        self._listed.pop(venue, None)

    async def instruments(self, venue: str) -> dict[str, common.Instrument] | None:
        """The venue's instruments by symbol; None when it could not be asked (asked again next
        time)."""
        listed = self._listed.get(venue)
        if listed is None:
            try:
                desk = self.links.desk(venue)
                answer = await desk.marketdata.ListInstruments(
                    md.ListInstrumentsRequest(), timeout=self.timeout_s, metadata=desk.metadata
                )
            except Exception as exc:  # gRPC error, or no such venue: asked again next time
                log.warning("inspector: %s instruments: %s", venue, exc)
                return None
            listed = self._listed[venue] = {i.symbol: i for i in answer.instruments}
        return listed
