"""Cancels the venue makes on its own, and why an order was cancelled (its status_reason).

The dead-man switch and a drain cancel what could open or add to a position and keep the
reduce-only orders: a position's stop-loss and take-profit must outlive the inspector that
placed them, or the position stands naked until it comes back. Every cancel says who asked
and why, so an execution (and the recorder's row of it) tells a dead-man trip from a drain, a
cancel-all, the inspector's re-plan or an operator.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from trademesh.core.domain.model import Order
from trademesh.core.platform.errors import FailedPrecondition, NotFound, TrademeshError
from trademesh.venues.runtime.venue import OrderRef, Venue

__all__ = [
    "AMENDED",
    "BY_REQUEST",
    "Kept",
    "cancel_all_reason",
    "cancel_openers",
    "dead_man_reason",
    "drain_reason",
]

log = logging.getLogger(__name__)

# An AmendOrder that gave no reason: the amended order's status_reason (a replaced one's too).
AMENDED = "amended"
# A CancelOrder that gave no reason.
BY_REQUEST = "canceled by request"
_KEPT = "reduce-only orders kept"


def dead_man_reason(ttl_ms: int) -> str:
    return f"dead-man: no heartbeat within {ttl_ms} ms; {_KEPT}"


def drain_reason() -> str:
    return f"drain: the venue is draining (Admin/Drain); {_KEPT}"


def cancel_all_reason(reason: str) -> str:
    return f"cancel-all: {reason}" if reason else "cancel-all by request"


@dataclass(frozen=True)
class Kept:
    """What a protective cancel did: the orders it cancelled, the reduce-only ones it kept,
    and how many it could not cancel (logged; the next trip or drain tries them again)."""

    canceled: list[Order]
    kept: int
    failed: int = 0


async def cancel_openers(venue: Venue, reason: str) -> Kept:
    """Cancel every open order that is not reduce-only, one by one, each with `reason`.

    One by one, not the exchange's cancel-all: that would take the protection too, and a
    reduce-only order placed between a listing and a cancel-all would go with it."""
    orders = await venue.open_orders(None)
    kept = sum(1 for order in orders if order.reduce_only)
    canceled: list[Order] = []
    failed = 0
    for order in orders:
        if order.reduce_only:
            continue
        try:
            canceled.append(await venue.cancel_order(OrderRef(order_id=order.order_id), reason))
        except (NotFound, FailedPrecondition):
            continue  # closed meanwhile (filled, or cancelled by someone else)
        except TrademeshError as exc:
            failed += 1
            log.warning("%s: could not cancel order %s (%s): %s", venue.name, order.order_id, reason, exc)
    return Kept(canceled, kept, failed)
