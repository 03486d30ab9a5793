"""Protective orders, planned: every runtime-managed position has a reduce-only stop-loss and
take-profit pair (one-cancels-the-other) sized to the whole position. After any change the
plan is compared with the working pair: a missing order is placed, a wrong one (size, side,
price) cancelled and replaced, both cancelled when the position is flat. The shell carries the
actions out; a stop the venue cannot hold is emulated there."""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal

from core.inspector.engine.actions import CancelOrder, OrderAction, OrderRole, PlaceOrder
from core.inspector.engine.ids import protective_order_id
from core.inspector.engine.policies import ProtectPolicy
from core.inspector.engine.positions import Key
from core.inspector.engine.working import WorkingOrder, WorkingOrders
from core.model import OrderType, Side, TimeInForce

__all__ = ["Levels", "Protector"]

_ROLES = (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT)


@dataclass
class Levels:
    """A position's stop and target, and the best mark since (for the trailing stop)."""

    stop: Decimal
    target: Decimal
    best: Decimal


def _price(order: PlaceOrder) -> Decimal | None:
    return order.trigger_price if order.role is OrderRole.STOP_LOSS else order.price


class Protector:
    def __init__(self, book: str = "") -> None:
        self.book = book  # the core's lifetime, in its protective orders' ids
        self.levels: dict[Key, Levels] = {}
        self._generation: dict[Key, int] = {}

    def set_levels(
        self,
        key: Key,
        sign: int,
        entry: Decimal,
        stop: Decimal | None,
        target: Decimal | None,
        p: ProtectPolicy,
    ) -> None:
        """An entry filled: its intent's stop and target, else the policy's distances from the entry."""
        self.levels[key] = Levels(
            stop if stop is not None else entry * (1 - sign * p.stop_loss),
            target if target is not None else entry * (1 + sign * p.take_profit),
            entry,
        )

    def trail(self, key: Key, sign: int, mark: Decimal, p: ProtectPolicy) -> bool:
        """Move the stop behind a better mark; True when it moved (by at least the step)."""
        levels = self.levels.get(key)
        if levels is None or p.trailing_stop is None or sign == 0:
            return False
        levels.best = max(levels.best, mark) if sign > 0 else min(levels.best, mark)
        candidate = levels.best * (1 - sign * p.trailing_stop)
        if (candidate - levels.stop) * sign <= levels.stop * p.trailing_step:
            return False
        levels.stop = candidate
        return True

    def plan(
        self, key: Key, position: Decimal, orders: WorkingOrders, *, place: bool = True
    ) -> list[OrderAction]:
        """The actions that make the key's working pair match its position and levels (`place`
        False: its cancels only). The pair covers what the closing orders (exits, flattening, a
        triggered stop) leave: a venue may refuse reduce-only orders that together exceed the
        position."""
        if position == 0:
            self.levels.pop(key, None)
        reducing = Side.SELL if position > 0 else Side.BUY
        left = max(abs(position) - orders.closing(key, reducing), Decimal(0))
        covered = left if position > 0 else -left
        actions: list[OrderAction] = []
        for role in _ROLES:
            want = self._wanted(key, role, covered)
            current = orders.protective(key, role)
            if current is not None and (want is None or not _matches(current, want)):
                current.cancelling = True
                actions.append(
                    CancelOrder(current.order.client_order_id, *key, f"{role.value} no longer fits")
                )
                current = None
            if want is not None and current is None and place:
                placed = self._numbered(want)
                orders.add(placed)
                actions.append(placed)
        return actions

    def _wanted(self, key: Key, role: OrderRole, position: Decimal) -> PlaceOrder | None:
        levels = self.levels.get(key)
        if levels is None or position == 0:
            return None
        stop = role is OrderRole.STOP_LOSS
        return PlaceOrder(
            client_order_id="",
            venue=key[0],
            symbol=key[1],
            side=Side.SELL if position > 0 else Side.BUY,
            type=OrderType.MARKET if stop else OrderType.LIMIT,
            size=abs(position),
            price=None if stop else levels.target,
            time_in_force=TimeInForce.GTC,
            reduce_only=True,
            role=role,
            trigger_price=levels.stop if stop else None,
            oco_group=f"oco/{key[0]}/{key[1]}",
        )

    def _numbered(self, want: PlaceOrder) -> PlaceOrder:
        key = (want.venue, want.symbol)
        generation = self._generation[key] = self._generation.get(key, 0) + 1
        coid = protective_order_id(want.venue, want.symbol, want.role.value, generation, self.book)
        return replace(want, client_order_id=coid)


def _matches(current: WorkingOrder, want: PlaceOrder) -> bool:
    return (
        current.remaining == want.size
        and current.order.side is want.side
        and _price(current.order) == _price(want)
    )
