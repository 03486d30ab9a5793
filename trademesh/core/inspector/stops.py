"""Stop-losses the inspector emulates, at venues without native stop orders: held here until
the last trade crosses the trigger (a sell stop at or below it, a buy stop at or above it)."""

from __future__ import annotations

from decimal import Decimal

from trademesh.core.domain.model import Side
from trademesh.core.inspector.engine.actions import PlaceOrder

__all__ = ["EmulatedStops"]


def crossed(order: PlaceOrder, last: Decimal) -> bool:
    trigger = order.trigger_price
    if trigger is None:
        return False
    return last <= trigger if order.side is Side.SELL else last >= trigger


class EmulatedStops:
    def __init__(self) -> None:
        self._held: dict[str, PlaceOrder] = {}

    def __len__(self) -> int:
        return len(self._held)

    def holds(self, client_order_id: str) -> bool:
        return client_order_id in self._held

    def held(self) -> list[PlaceOrder]:
        return list(self._held.values())

    def hold(self, order: PlaceOrder) -> None:
        self._held[order.client_order_id] = order

    def release(self, client_order_id: str) -> PlaceOrder | None:
        return self._held.pop(client_order_id, None)

    def release_venue(self, venue: str) -> list[PlaceOrder]:
        mine = [o for o in self._held.values() if o.venue == venue]
        for order in mine:
            del self._held[order.client_order_id]
        return mine

    def triggered(self, venue: str, symbol: str, last: Decimal) -> list[PlaceOrder]:
        """The stops `last` crosses, released (each is placed once)."""
        hit = [o for o in self._held.values() if o.venue == venue and o.symbol == symbol and crossed(o, last)]
        for order in hit:
            del self._held[order.client_order_id]
        return hit
