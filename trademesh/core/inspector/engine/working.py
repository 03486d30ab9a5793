"""The core's working orders: every order it asked for that may still fill, with what has
filled, what the venue says has filled, whether its placement is unknown, and whether we asked
to cancel it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

from trademesh.core.domain.model import Side
from trademesh.core.inspector.engine.actions import OrderRole, PlaceOrder
from trademesh.core.inspector.engine.positions import Key

__all__ = ["WorkingOrder", "WorkingOrders"]

ZERO = Decimal(0)


@dataclass
class WorkingOrder:
    order: PlaceOrder
    filled: Decimal = Decimal(0)
    unknown: bool = False  # the placement's result is unknown: query before any retry
    cancelling: bool = False  # we asked to cancel it
    triggered: bool = False  # an emulated stop whose trigger was crossed: being placed as market
    accepted: bool = False  # the venue took it (an update heard that did not end it, or a fill)
    # Set when the venue says the order is done: what filled in all. Fills may still be on
    # their way (an update can overtake its fills); the order stays until they are in.
    final_size: Decimal | None = None
    number: int = 0  # the orders asked for before it and it (WorkingOrders.asked when added)
    # The most the venue's updates have said is filled (their filled_size). A market entry's
    # PlaceOrder answer says FILLED 100-350 ms before its fills come through ingest and the bus:
    # protection is sized by it at once (an entry's only; positions stay the fills').
    reported: Decimal = Decimal(0)

    @property
    def remaining(self) -> Decimal:
        return self._size - self.filled

    @property
    def _size(self) -> Decimal:
        return self.order.size if self.final_size is None else self.final_size

    @property
    def _said(self) -> Decimal:
        """The venue's word, never past the order's size (nor, once done, its final size)."""
        return min(self.reported, self._size)

    @property
    def unheard(self) -> Decimal:
        """What the venue says has filled and no fill has brought yet."""
        return max(self._said - self.filled, ZERO)

    @property
    def venue_filled(self) -> Decimal:
        """What has filled at the venue as far as the inspector knows: its fills or its word."""
        return max(self.filled, self._said)

    @property
    def venue_remaining(self) -> Decimal:
        """What may still fill at the venue (none once it said the order is done)."""
        return max(self._size - self.venue_filled, ZERO)

    @property
    def key(self) -> Key:
        return (self.order.venue, self.order.symbol)


class WorkingOrders:
    def __init__(self) -> None:
        self._orders: dict[str, WorkingOrder] = {}
        self.asked = 0  # orders added so far

    def __contains__(self, client_order_id: str) -> bool:
        return client_order_id in self._orders

    def __iter__(self) -> Iterator[WorkingOrder]:
        return iter(list(self._orders.values()))

    def get(self, client_order_id: str) -> WorkingOrder | None:
        return self._orders.get(client_order_id)

    def add(self, order: PlaceOrder) -> WorkingOrder:
        self.asked += 1
        working = self._orders[order.client_order_id] = WorkingOrder(order, number=self.asked)
        return working

    def remove(self, client_order_id: str) -> WorkingOrder | None:
        return self._orders.pop(client_order_id, None)

    @property
    def version(self) -> tuple[int, int]:
        """Moves whenever the orders held change: (orders added so far, orders held); an add
        moves the first, a removal the second (a reader keeping what it read of them knows when
        to read again)."""
        return self.asked, len(self._orders)

    def count_open(self) -> int:
        """Entries, exits and flattening orders (protective orders are counted apart)."""
        return sum(1 for w in self._orders.values() if not w.order.role.protective and w.final_size is None)

    def entries(self, key: Key | None = None) -> list[WorkingOrder]:
        return [
            w
            for w in self._orders.values()
            if w.order.role is OrderRole.ENTRY and (key is None or w.key == key)
        ]

    def unheard(self, key: Key) -> Decimal:
        """What the key's entries have filled at the venue, by its word, beyond the fills heard:
        signed (a buy's adds, a sell's takes off). Protection covers the position plus this."""
        total = ZERO  # sum() of entries(key)'s, the same additions, without their list made (a mark asks)
        for w in self._orders.values():
            if w.order.role is OrderRole.ENTRY and w.key == key:
                total += w.unheard * w.order.side.sign
        return total

    def pending_entry(self, key: Key, side: Side) -> Decimal:
        """What the key's open entries of `side` may still add (cancelling ones may fill too)."""
        return sum((w.remaining for w in self.entries(key) if w.order.side is side), Decimal(0))

    def pending_reduce(self, key: Key, side: Side) -> Decimal:
        """What the key's reduce-only orders of `side` (exits, protective, flattening) may take
        off the position; cancelling ones may still fill."""
        return sum(
            (
                w.remaining
                for w in self._orders.values()
                if w.key == key and w.order.reduce_only and w.order.side is side
            ),
            Decimal(0),
        )

    def pending_exit(self, key: Key) -> Decimal:
        """What the key's open reduce-only intent orders may still take off the position."""
        return sum(
            (w.remaining for w in self._orders.values() if w.key == key and w.order.role is OrderRole.EXIT),
            Decimal(0),
        )

    def closing(self, key: Key, reducing: Side | None = None) -> Decimal:
        """What the key's orders that close the position may still take off it: exits,
        flattening orders and triggered stops (emulated ones we triggered, native ones filling),
        and entries on the `reducing` side that have begun to fill (a sell against a long fills
        in parts: at the venue the position may be gone before the inspector has heard every
        fill; one not filling yet, a resting limit, leaves the position protected). Protection
        covers only the rest. An entry's is what may still fill at the venue: what the venue
        says it filled already is in the position protection covers (`unheard`), not closing it
        a second time."""
        closing = (_closing(w) for w in self._orders.values() if w.key == key and _closes(w, reducing))
        return sum(closing, ZERO)

    def layers(self, key: Key, role: OrderRole) -> list[WorkingOrder]:
        """The key's working protective orders of `role`, oldest first: each covers a part of
        the position (protect.py); those cancelling, triggered or filling are gone from it."""
        return [
            w
            for w in self._orders.values()
            if w.key == key and w.order.role is role and not (w.cancelling or w.triggered or _stop_filling(w))
        ]


def _closes(working: WorkingOrder, reducing: Side | None) -> bool:
    role = working.order.role
    if role in (OrderRole.EXIT, OrderRole.FLATTEN) or working.triggered or _stop_filling(working):
        return True
    entry = role is OrderRole.ENTRY and not working.cancelling and working.venue_filled > 0
    return entry and working.order.side is reducing


def _closing(working: WorkingOrder) -> Decimal:
    return working.venue_remaining if working.order.role is OrderRole.ENTRY else working.remaining


def _stop_filling(working: WorkingOrder) -> bool:
    """A stop the venue has triggered (it has begun to fill): a market order now, taking the rest
    of the position in the same moment. Its fills come one by one, and at the venue the position
    is gone already: a pair re-planned for what is left between them was refused (reduce-only,
    the position is 0), three times at once, and stood the inspector down. So is one we are
    cancelling (a fill resized the pair while the venue was triggering it): our cancel comes too
    late for what it takes, and a pair re-planned per fill of it (each trimmed by the venue to
    what was left) was cancelled and placed again seven times in 40 ms. Once the venue says it is
    done, its final size bounds what it still takes."""
    return working.order.role is OrderRole.STOP_LOSS and working.filled > 0
