"""The orders the core places for an intent and for CLOSE_ALL (protective ones: protect.py)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

from trademesh.core.domain.contracts.intent import ExecutionIntent
from trademesh.core.domain.model import OrderType, Side, TimeInForce
from trademesh.core.inspector.engine.actions import OrderRole, PlaceOrder
from trademesh.core.inspector.engine.ids import entry_order_id, flatten_order_id, reduce_order_id
from trademesh.core.inspector.engine.positions import Key

__all__ = ["entry_order", "flatten_order", "reduce_order"]


def entry_order(intent: ExecutionIntent, leverage: Decimal | None = None) -> PlaceOrder:
    """The intent's order as asked, under the client order id derived from the intent's id;
    `leverage` the one to set at the venue before it (None: nothing to set)."""
    return PlaceOrder(
        client_order_id=entry_order_id(intent.intent_id),
        venue=intent.venue,
        symbol=intent.symbol,
        side=intent.side,
        type=intent.entry_type,
        size=intent.size,
        price=intent.entry_price,
        time_in_force=intent.time_in_force,
        reduce_only=intent.reduce_only,
        role=OrderRole.EXIT if intent.reduce_only else OrderRole.ENTRY,
        intent_id=intent.intent_id,
        strategy_id=intent.strategy_id,
        leverage=leverage,
    )


def flatten_order(key: Key, position: Decimal, now_ns: int) -> PlaceOrder:
    """A reduce-only market order that closes the whole position."""
    return PlaceOrder(
        client_order_id=flatten_order_id(*key, now_ns),
        venue=key[0],
        symbol=key[1],
        side=Side.SELL if position > 0 else Side.BUY,
        type=OrderType.MARKET,
        size=abs(position),
        price=None,
        time_in_force=TimeInForce.IOC,
        reduce_only=True,
        role=OrderRole.FLATTEN,
    )


def reduce_order(key: Key, position: Decimal, size: Decimal, now_ns: int) -> PlaceOrder:
    """A reduce-only market order taking `size` off the position (liquidation.min_distance_open):
    a closing order as CLOSE_ALL's (protection covers only what it leaves)."""
    return replace(
        flatten_order(key, position, now_ns), client_order_id=reduce_order_id(*key, now_ns), size=size
    )
