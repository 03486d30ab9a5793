"""Executions of a live venue, each order state and each fill reported once.

Most changes are seen twice: in the answer to the connector's own call (place, cancel)
and on the venue's private stream. A fill always goes out (with the order as it stands
after it); an order state (status, filled size) already reported does not.

A stop order keeps its type and trigger price: a venue's private stream may describe it
without them (ccxt reads the trigger from some venues' REST answers only), and may do so
before the answer to the placement comes. So a stop about to be placed is expected by its
client order id (expect_stop), and an order seen as a stop once is known by its order id:
either way it is reported as that stop, triggered once it has a fill.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from decimal import Decimal

from core.model import Execution, Fill, Order, OrderRequest, OrderStatus, OrderType

__all__ = ["ExecutionReporter"]

# Orders whose last reported state is remembered.
_REMEMBERED = 10_000


class ExecutionReporter:
    def __init__(self) -> None:
        self.publish: Callable[[Execution], None] | None = None
        self._reported: dict[str, tuple[OrderStatus, Decimal]] = {}
        # order id, or "client:" + client order id -> (type, trigger price)
        self._stops: dict[str, tuple[OrderType, Decimal]] = {}

    def expect_stop(self, request: OrderRequest) -> None:
        """A stop about to be placed (with its client order id): its executions are that stop."""
        if request.type.is_stop and request.trigger_price is not None and request.client_order_id:
            self._remember_stop("client:" + request.client_order_id, request.type, request.trigger_price)

    def report(self, order: Order, fill: Fill | None = None) -> Order:
        order = self._as_stop(order)
        state = (order.status, order.filled_size)
        if fill is None and self._reported.get(order.order_id) == state:
            return order
        self._reported[order.order_id] = state
        if len(self._reported) > _REMEMBERED:
            del self._reported[next(iter(self._reported))]
        if self.publish is not None:
            self.publish(Execution(time.time_ns(), order, fill))
        return order

    def _remember_stop(self, key: str, order_type: OrderType, trigger: Decimal) -> None:
        self._stops[key] = (order_type, trigger)
        if len(self._stops) > _REMEMBERED:
            del self._stops[next(iter(self._stops))]

    def _as_stop(self, order: Order) -> Order:
        if order.type.is_stop and order.trigger_price is not None:
            self._remember_stop(order.order_id, order.type, order.trigger_price)
            return order
        known = self._stops.get(order.order_id) or self._stops.get("client:" + order.client_order_id)
        if known is None:
            return order
        return dataclasses.replace(
            order, type=known[0], trigger_price=known[1], triggered=order.filled_size > 0
        )
