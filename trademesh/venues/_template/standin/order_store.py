"""A small template order store for the replay stand-in, in the venue's REST and private formats.

The fake exchange behind the stand-in: enough of one to trade through the real ccxt client.
Say what it keeps (orders, balances, positions), when an order fills (at once at the replayed
book's best price in the others), which of the venue's error codes it answers, and what it
pushes on the private stream (through `on_event`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

from trademesh.venues.replay.adapter import RestAnswer, RestRequest

__all__ = ["TemplateOrderStore"]

_ORDER_PATH = "/api/v1/order"


class TemplateOrderStore:
    def __init__(self) -> None:
        # (private topic, message): every order change, as the venue pushes it.
        self.on_event: Callable[[str, dict[str, Any]], None] = lambda topic, message: None
        self.orders: dict[str, dict[str, Any]] = {}
        self._ids = itertools.count(1)

    def answer(self, request: RestRequest) -> RestAnswer | None:
        """The answer to an order call; None for a path that is not the order store's."""
        if not request.path.endswith(_ORDER_PATH):
            return None
        if request.method == "POST":
            return self._place(request.params())
        return RestAnswer.json({"code": 404, "msg": f"{request.method} {_ORDER_PATH} is not served"}, 404)

    def _place(self, params: dict[str, str]) -> RestAnswer:
        order = {"orderId": str(next(self._ids)), "status": "NEW", **params}
        self.orders[order["orderId"]] = order
        self.on_event("orders", order)
        return RestAnswer.json(order)
