"""Builders for the inspector's tests: intents, markets, fills and order updates, and a core."""

from __future__ import annotations

import itertools
from decimal import Decimal

from trademesh.core.domain.contracts.intent import ExecutionIntent
from trademesh.core.domain.model import Fill, Liquidity, Order, OrderStatus, OrderType, Side, TimeInForce
from trademesh.core.inspector.engine.actions import (
    Amend,
    CancelOrder,
    OrderAction,
    OrderRole,
    PlaceOrder,
    placed_by,
)
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.engine.events import RiskState
from trademesh.core.inspector.engine.market import MarketView
from trademesh.core.inspector.engine.policies import PolicySet

D = Decimal
# 2026-01-01 20:40:00 UTC, a Thursday.
T0 = 1_767_300_000_000_000_000
MS = 1_000_000
SECOND = 1_000 * MS
EQUITY = D(100_000)

_ids = itertools.count(1)


def state(c: InspectorCore) -> RiskState:
    """The core's state, read through a call (so a type checker does not narrow it between calls)."""
    return c.state


def core(policies: PolicySet | None = None, equity: Decimal = EQUITY) -> InspectorCore:
    return InspectorCore(policies or PolicySet(), equity, T0)


def intent(
    side: Side = Side.BUY, size: str = "1", price: str | None = "100", *, symbol: str = "BTC/USDT",
    venue: str = "sim", strategy: str = "trend", intent_id: str | None = None, reduce_only: bool = False,
    stop: str | None = None, target: str | None = None, at_ns: int = T0,
) -> ExecutionIntent:  # fmt: skip
    return ExecutionIntent(
        intent_id=intent_id or f"intent-{next(_ids)}",
        decision_id="d",
        signal_id="s",
        strategy_id=strategy,
        venue=venue,
        symbol=symbol,
        side=side,
        size=D(size),
        entry_type=OrderType.MARKET if price is None else OrderType.LIMIT,
        entry_price=None if price is None else D(price),
        stop_loss=None if stop is None else D(stop),
        take_profit=None if target is None else D(target),
        time_in_force=TimeInForce.IOC if price is None else TimeInForce.GTC,
        expires_ns=at_ns + 60 * SECOND,
        conviction=0.7,
        reduce_only=reduce_only,
        created_ns=at_ns,
    )


def market(mid: str = "100", half_spread: str = "0.05") -> MarketView:
    return MarketView(bid=D(mid) - D(half_spread), ask=D(mid) + D(half_spread), last=D(mid))


def fill(
    order: PlaceOrder, size: str | Decimal | None = None, price: str | Decimal = "100", fee: str = "0"
) -> Fill:
    n = next(_ids)
    return Fill(
        fill_id=f"fill-{n}",
        order_id=f"venue-{order.client_order_id}",
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        price=D(price),
        size=order.size if size is None else D(size),
        fee=D(fee),
        fee_asset="USDT",
        liquidity=Liquidity.TAKER,
        trade_id=f"trade-{n}",
        ts_event_ns=T0,
    )


def update(order: PlaceOrder, status: OrderStatus, filled: str = "0") -> Order:
    return Order(
        venue=order.venue,
        order_id=f"venue-{order.client_order_id}",
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        type=order.type,
        time_in_force=order.time_in_force,
        price=order.price,
        size=order.size,
        reduce_only=order.reduce_only,
        filled_size=D(filled),
        status=status,
    )


def placed(actions: tuple[OrderAction, ...], role: OrderRole | None = None) -> list[PlaceOrder]:
    """The orders the actions place (an Amend's new one too: it is carried out as a placement)."""
    orders = [o for a in actions if (o := placed_by(a)) is not None]
    return [o for o in orders if role is None or o.role is role]


def cancelled(actions: tuple[OrderAction, ...]) -> list[str]:
    """The orders the actions cancel (an Amend's old one too)."""
    return [a.client_order_id for a in actions if isinstance(a, CancelOrder | Amend)]


def amended(actions: tuple[OrderAction, ...]) -> list[Amend]:
    return [a for a in actions if isinstance(a, Amend)]
