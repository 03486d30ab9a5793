"""Which symbol an order id or a client order id belongs to, as far as the connector has seen.

Most venues look an order up only within one symbol (ccxt's fetch_order and cancel_order
take it), and some hold a client order id per symbol, so the connector keeps this index of
every order it has placed, fetched or listed: a client order id already seen on one symbol
is looked up there before an order with that id is placed on any other (one order per
client order id), and a lookup by id goes to the right symbol first. It also notes which
orders are stops, for a venue that keeps stops in a book of their own (looked up there first).

Bounded: the most recently seen MAX_ENTRIES ids of each kind (an order placed, fetched or
listed again counts as seen again); older ones are forgotten, oldest first.
"""

from __future__ import annotations

from collections import OrderedDict

from trademesh.core.domain.model import Order

__all__ = ["MAX_ENTRIES", "OrderIndex"]

MAX_ENTRIES = 100_000


class _Recent:
    """key -> symbol, the most recently seen `limit` keys."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._items: OrderedDict[str, str] = OrderedDict()

    def put(self, key: str, symbol: str) -> None:
        self._items[key] = symbol
        self._items.move_to_end(key)
        while len(self._items) > self._limit:
            self._items.popitem(last=False)

    def get(self, key: str) -> str | None:
        return self._items.get(key)

    def __len__(self) -> int:
        return len(self._items)


class OrderIndex:
    def __init__(self, limit: int = MAX_ENTRIES) -> None:
        self._by_order_id = _Recent(limit)
        self._by_client_id = _Recent(limit)
        self._stop_ids = _Recent(limit)  # the ids of orders seen as stops (a lookup hint only)
        self._stop_client_ids = _Recent(limit)

    def learn(self, order: Order) -> None:
        if not order.symbol:
            return
        if order.order_id:
            self._by_order_id.put(order.order_id, order.symbol)
        if order.client_order_id:
            self._by_client_id.put(order.client_order_id, order.symbol)
        if order.type.is_stop and order.order_id:
            self._stop_ids.put(order.order_id, order.symbol)
        if order.type.is_stop and order.client_order_id:
            self._stop_client_ids.put(order.client_order_id, order.symbol)

    def symbol_of_order(self, order_id: str) -> str | None:
        return self._by_order_id.get(order_id)

    def symbol_of_client_id(self, client_order_id: str) -> str | None:
        return self._by_client_id.get(client_order_id)

    def is_stop(self, order_id: str) -> bool:
        return self._stop_ids.get(order_id) is not None

    def is_stop_client_id(self, client_order_id: str) -> bool:
        return self._stop_client_ids.get(client_order_id) is not None

    def __len__(self) -> int:
        return max(len(self._by_order_id), len(self._by_client_id))
