"""Order actions the core asks the shell to carry out at a venue."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.domain.model import OrderType, Side, TimeInForce

__all__ = [
    "Amend",
    "CancelAll",
    "CancelOrder",
    "OrderAction",
    "OrderRole",
    "PlaceOrder",
    "QueryOrder",
    "placed_by",
]


class OrderRole(enum.Enum):
    ENTRY = "entry"  # opens or adds to a position
    EXIT = "exit"  # a reduce-only intent
    STOP_LOSS = "stop_loss"  # protective, reduce-only, triggers at trigger_price
    TAKE_PROFIT = "take_profit"  # protective, reduce-only, a limit at price
    FLATTEN = "flatten"  # CLOSE_ALL's market order

    @property
    def protective(self) -> bool:
        return self in (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT)


@dataclass(frozen=True)
class PlaceOrder:
    client_order_id: str
    venue: str
    symbol: str
    side: Side
    type: OrderType
    size: Decimal
    price: Decimal | None  # None: a market order (a stop-loss is a stop-market)
    time_in_force: TimeInForce
    reduce_only: bool
    role: OrderRole
    intent_id: str = ""
    strategy_id: str = ""
    trigger_price: Decimal | None = None  # a stop order's trigger (on the last trade)
    oco_group: str = ""  # one-cancels-the-other: the protective pair's shared group
    # An entry's leverage: set at the venue (SetLeverage, when its setting differs) before the
    # order is placed; None: the venue's setting in force stands.
    leverage: Decimal | None = None


@dataclass(frozen=True)
class CancelOrder:
    client_order_id: str
    venue: str
    symbol: str
    reason: str


@dataclass(frozen=True)
class CancelAll:
    venue: str
    reason: str


@dataclass(frozen=True)
class QueryOrder:
    """Ask the venue for the order before anything is retried (its placement result is unknown)."""

    client_order_id: str
    venue: str
    symbol: str


@dataclass(frozen=True)
class Amend:
    """Change a working order's size or prices in place: `order` (under a client order id of its
    own) takes the place of `client_order_id`. The core counts the old order as being cancelled
    and the new one as placed, whatever the venue does. Carried out today as CancelOrder then
    PlaceOrder (trademesh.core.inspector.executor); a venue with an amend RPC will change the order in
    place instead, with no moment without it (docs/inspector.md, "Amend")."""

    client_order_id: str
    order: PlaceOrder
    reason: str

    @property
    def venue(self) -> str:
        return self.order.venue

    @property
    def symbol(self) -> str:
        return self.order.symbol


OrderAction = PlaceOrder | CancelOrder | CancelAll | QueryOrder | Amend


def placed_by(action: OrderAction) -> PlaceOrder | None:
    """The order an action places: a PlaceOrder's own, an Amend's new one."""
    if isinstance(action, PlaceOrder):
        return action
    return action.order if isinstance(action, Amend) else None
