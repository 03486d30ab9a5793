"""Protective orders, planned: every runtime-managed position has reduce-only stop-loss and
take-profit orders (one-cancels-the-other) covering the whole position. After any change the
plan is compared with what works (guard.py says when it may place):

- the position grew: the increment gets a layer of its own (a stop and a target for what was
  added), placed beside the orders already there, so a resize never leaves the position
  without a stop (a venue takes reduce-only orders that together stay within the position:
  the sim trims a new stop by the stops already covering it). Past _MAX_LAYERS, or for an
  increment below the venue's minimum, the newest layer is amended to cover it;
- the position shrank: whole layers are cancelled (newest first, one of exactly the excess
  first of all), the last one amended down;
- the levels moved (a new entry, the trailing stop): each layer is amended to them (at most
  once per coalescing window: guard.py);
- the position is flat: everything is cancelled;
- the core gave the position up (its levels dropped: the venue refused its protective orders
  again and again): nothing is placed, and what still stands at the venue is left protecting
  it until the position closes (a chaos run's give-up cancelled the one take-profit standing).

An amendment is an `Amend` (carried out as cancel then place today). The orders carry their
position's latest entry's intent and strategy (the trace walks a stop's fill to its signal).
The shell carries the actions out; a stop the venue cannot hold is emulated there."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from trademesh.core.domain.model import OrderType, Side, TimeInForce
from trademesh.core.inspector.engine.actions import Amend, CancelOrder, OrderAction, OrderRole, PlaceOrder
from trademesh.core.inspector.engine.ids import protective_order_id
from trademesh.core.inspector.engine.instruments import InstrumentFacts, Minimum
from trademesh.core.inspector.engine.policies import ProtectPolicy
from trademesh.core.inspector.engine.positions import Key
from trademesh.core.inspector.engine.working import WorkingOrder, WorkingOrders

__all__ = ["Levels", "ProtectionPlan", "Protector"]

ROLES = (OrderRole.STOP_LOSS, OrderRole.TAKE_PROFIT)
ZERO = Decimal(0)
# Layers of one role at most: past it, growth amends the newest (a resting entry filling in many
# parts over minutes must not leave as many orders at the venue).
_MAX_LAYERS = 4
_NO_FACTS = InstrumentFacts()


@dataclass
class Levels:
    """A position's stop and target, the best mark since (for the trailing stop), and the entry
    that set them: its order, intent and strategy (carried by the protective orders)."""

    stop: Decimal
    target: Decimal
    best: Decimal
    sign: int = 0
    source: str = ""  # the entry order whose first fill set them
    intent_id: str = ""
    strategy_id: str = ""


@dataclass
class ProtectionPlan:
    """A position's protective actions, and what they leave uncovered and why."""

    actions: list[OrderAction]
    short: Minimum | None = None  # an increment the venue's minimum leaves uncovered
    repriced: bool = False  # an order amended for its price alone (the levels moved)
    # Those amendments, carried out after everything else: each takes its order away for a
    # round trip, and what covers a fill must not wait behind them.
    reprices: list[OrderAction] = field(default_factory=list)


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
        source: PlaceOrder | None = None,
    ) -> None:
        """An entry filled: its intent's stop and target, else the policy's distances from the entry."""
        self.levels[key] = Levels(
            stop if stop is not None else entry * (1 - sign * p.stop_loss),
            target if target is not None else entry * (1 + sign * p.take_profit),
            entry,
            sign,
            "" if source is None else source.client_order_id,
            "" if source is None else source.intent_id,
            "" if source is None else source.strategy_id,
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

    @staticmethod
    def wanted(key: Key, position: Decimal, orders: WorkingOrders) -> Decimal:
        """What the protective orders of each role should cover: what the closing orders (exits,
        flattening, a triggered stop) leave of the position (a venue may refuse reduce-only
        orders that together exceed it)."""
        reducing = Side.SELL if position > 0 else Side.BUY
        return max(abs(position) - orders.closing(key, reducing), ZERO)

    @staticmethod
    def covered(key: Key, orders: WorkingOrders, *, accepted: bool = False) -> Decimal:
        """What the working pair covers: the less of its stops' and its targets' (`accepted`:
        only the orders the venue has taken)."""
        return min(
            sum((w.remaining for w in orders.layers(key, role) if w.accepted or not accepted), ZERO)
            for role in ROLES
        )

    def plan(
        self,
        key: Key,
        position: Decimal,
        orders: WorkingOrders,
        *,
        place: bool = True,
        grow: bool = True,
        facts: InstrumentFacts | None = None,
        reprice: bool = True,
    ) -> ProtectionPlan:
        """The actions that make the key's working orders match its position and levels.
        `place` False: cancels only, of whole layers (a layer to amend waits as it is: it still
        covers the position, a reduce-only order closing no more than it); `grow` False: what the
        position added waits (its layer comes later); `reprice` False: an order off the levels
        but of the right size waits (the orders protect at the levels before)."""
        if position == 0:
            self.levels.pop(key, None)
        levels = self.levels.get(key)
        want = ZERO if position == 0 else self.wanted(key, position, orders)
        side = Side.SELL if position > 0 else Side.BUY
        plan = ProtectionPlan([])
        for role in ROLES:
            _RolePlan(self, key, role, side, want, levels, facts or _NO_FACTS, plan).run(
                orders, place=place, grow=grow, reprice=reprice
            )
        plan.actions += plan.reprices
        return plan

    def order(self, key: Key, role: OrderRole, side: Side, size: Decimal, levels: Levels) -> PlaceOrder:
        """A new protective order of `role` for `size` at the levels, under a new id."""
        stop = role is OrderRole.STOP_LOSS
        generation = self._generation[key] = self._generation.get(key, 0) + 1
        return PlaceOrder(
            client_order_id=protective_order_id(*key, role.value, generation, self.book),
            venue=key[0],
            symbol=key[1],
            side=side,
            type=OrderType.MARKET if stop else OrderType.LIMIT,
            size=size,
            price=None if stop else levels.target,
            time_in_force=TimeInForce.GTC,
            reduce_only=True,
            role=role,
            intent_id=levels.intent_id,
            strategy_id=levels.strategy_id,
            trigger_price=levels.stop if stop else None,
            oco_group=f"oco/{key[0]}/{key[1]}",
        )


@dataclass
class _RolePlan:
    """One role's layers brought to the wanted size, side and price."""

    protector: Protector
    key: Key
    role: OrderRole
    side: Side
    want: Decimal
    levels: Levels | None
    facts: InstrumentFacts
    plan: ProtectionPlan

    def run(self, orders: WorkingOrders, *, place: bool, grow: bool, reprice: bool) -> None:
        layers = orders.layers(self.key, self.role)
        if self.levels is None and self.want > 0:
            return  # given up (the venue refused its orders): what still stands keeps protecting
        if self.levels is None or self.want == 0:
            for layer in layers:
                self._cancel(layer, "no longer needed")
            return
        keep = []
        for layer in layers:
            if layer.order.side is self.side:
                keep.append(layer)
            else:
                self._cancel(layer, "on the wrong side")
        sizes = self._shrunk(keep)
        missing = self.want - sum(sizes.values(), ZERO)
        if missing > 0 and grow:
            self._grow(keep, sizes, missing, orders, place=place)
        for layer in keep:
            self._fit(layer, sizes[layer.order.client_order_id], orders, place=place, reprice=reprice)

    @property
    def price(self) -> Decimal:
        assert self.levels is not None
        return self.levels.stop if self.role is OrderRole.STOP_LOSS else self.levels.target

    def _shrunk(self, keep: list[WorkingOrder]) -> dict[str, Decimal]:
        """Each layer's size once the excess is taken off: a layer of exactly the excess, else
        the newest ones (0: cancelled)."""
        sizes = {w.order.client_order_id: w.remaining for w in keep}
        excess = sum(sizes.values(), ZERO) - self.want
        if excess <= 0:
            return sizes
        exact = next((w for w in reversed(keep) if w.remaining == excess), None)
        if exact is not None:
            sizes[exact.order.client_order_id] = ZERO
            return sizes
        for layer in reversed(keep):
            if excess <= 0:
                break
            coid = layer.order.client_order_id
            cut = min(excess, sizes[coid])
            sizes[coid] -= cut
            excess -= cut
        return sizes

    def _grow(
        self,
        keep: list[WorkingOrder],
        sizes: dict[str, Decimal],
        missing: Decimal,
        orders: WorkingOrders,
        *,
        place: bool,
    ) -> None:
        """Cover what is missing: a layer of its own (the rest keeps covering meanwhile), or the
        newest layer amended to take it (below the minimum, or too many layers). Nothing while
        placing waits (a refusal's retry)."""
        if not place or self.levels is None:
            return
        size = self.facts.on_lot(missing)
        alive = [w for w in keep if sizes[w.order.client_order_id] > 0]
        short = self.facts.below_minimum(size, self.price)
        if alive and (short is not None or len(alive) >= _MAX_LAYERS):
            newest = alive[-1].order.client_order_id
            sizes[newest] += size
            if size == 0:  # less than a lot: nothing the venue takes covers it
                self.plan.short = short
            return
        if short is not None:
            self.plan.short = short
            return
        new = self.protector.order(self.key, self.role, self.side, size, self.levels)
        orders.add(new)
        self.plan.actions.append(new)

    def _fit(
        self, layer: WorkingOrder, size: Decimal, orders: WorkingOrders, *, place: bool, reprice: bool
    ) -> None:
        """A layer at its planned size and the levels' price: kept, amended or cancelled."""
        if size <= 0:
            self._cancel(layer, "no longer needed")
            return
        if size == layer.remaining and (_price(layer.order) == self.price or not reprice):
            return  # as planned, or a re-price alone that waits (the old one protects)
        resized = self.facts.below_minimum(size, self.price)
        if resized is not None:
            self._cancel(layer, "no longer fits")
            self.plan.short = resized
            return
        if not place:  # a refusal's retry waits: the layer as it is covers what is left of the
            return  # position (a reduce-only order closes no more than it), amended at the retry
        assert self.levels is not None
        new = self.protector.order(self.key, self.role, self.side, size, self.levels)
        layer.cancelling = True
        orders.add(new)
        amend = Amend(layer.order.client_order_id, new, f"{self.role.value} amended")
        if size == layer.remaining:  # the price alone: after what covers the position
            self.plan.repriced = True
            self.plan.reprices.append(amend)
        else:
            self.plan.actions.append(amend)

    def _cancel(self, layer: WorkingOrder, why: str) -> None:
        layer.cancelling = True
        coid = layer.order.client_order_id
        self.plan.actions.append(CancelOrder(coid, *self.key, f"{self.role.value} {why}"))
