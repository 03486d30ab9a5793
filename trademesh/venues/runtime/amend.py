"""TradeFlow.AmendOrder: in place where the venue amends natively, else cancel and replace.

Cancel and replace (a venue whose `amends_orders` is False, or whose amend_order says this
amendment cannot be made in place: NotInPlace, e.g. a live exchange that keeps an order's
client id while a new one is asked, or that edits limit orders only): the order is read, the amended
form checked as a placement would be (trademesh.core.domain.order_rules.amended_request), the order
cancelled with the request's reason, and its replacement placed for what is left of the new
size (the new total less what had filled by the cancel) under new_client_order_id, or one the
venue gives. For that moment the order is missing from the book, and it loses its place in
the queue whatever changed: the capability says so (AMEND_MODE_CANCEL_REPLACE). An order that
filled whole before the cancel took is refused (FAILED_PRECONDITION), nothing placed.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.model import Amendment, Instrument, Order, OrderRequest
from trademesh.core.domain.order_rules import amended_request, require_unfilled
from trademesh.core.platform.errors import FailedPrecondition, NotFound
from trademesh.venues.runtime.venue import NotInPlace, OrderRef, Venue

__all__ = ["Amended", "amend"]

log = logging.getLogger(__name__)

Place = Callable[[OrderRequest], Awaitable[tuple[Order, bool]]]


@dataclass(frozen=True)
class Amended:
    order: Order
    replaced: bool = False
    canceled: Order | None = None
    duplicate: bool = False


async def amend(
    venue: Venue, place: Place, instruments: Mapping[str, Instrument], ref: OrderRef, change: Amendment
) -> Amended:
    if venue.amends_orders:
        try:
            order, duplicate = await venue.amend_order(ref, change)
        except NotInPlace as why:
            log.info("%s: amending %s by cancel and replace: %s", venue.name, ref, why)
        else:
            return Amended(order, duplicate=duplicate)
    if change.client_order_id:
        named = await _named(venue, change.client_order_id)
        if named is not None:  # placed before: this amendment's replacement, asked again
            return Amended(named, replaced=True, duplicate=True)
    old = await venue.get_order(ref)
    _trading(venue, old)
    if not old.status.is_open:
        raise FailedPrecondition(f"order {old.order_id} is {old.status.value}, not open")
    require_unfilled(old, change)
    request = amended_request(old, change, instruments[old.symbol])
    canceled = await venue.cancel_order(OrderRef(order_id=old.order_id), change.reason)
    left = request.size - canceled.filled_size
    if left <= 0:
        raise FailedPrecondition(
            f"order {old.order_id} was cancelled with {format_decimal(canceled.filled_size)} filled, "
            "at or above the amended size: no replacement was placed"
        )
    order, _ = await place(dataclasses.replace(request, size=left))
    return Amended(order, replaced=True, canceled=canceled)


def _trading(venue: Venue, order: Order) -> None:
    """An order of a market the venue no longer trades (Venue.not_trading) is not amended."""
    why = venue.not_trading(order.symbol)
    if why is not None:
        raise FailedPrecondition(f"{why}: order {order.order_id} not amended")


async def _named(venue: Venue, client_order_id: str) -> Order | None:
    try:
        return await venue.get_order(OrderRef(client_order_id=client_order_id))
    except NotFound:
        return None
