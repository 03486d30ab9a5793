"""Executions of a live venue, each order state and each fill reported once.

Most changes are seen twice: in the answer to the connector's own call (place, cancel)
and on the venue's private stream. A fill always goes out (with the order as it stands
after it); an order state (status, filled size) already reported does not.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal

from core.model import Execution, Fill, Order, OrderStatus

__all__ = ["ExecutionReporter"]

# Orders whose last reported state is remembered.
_REMEMBERED = 10_000


class ExecutionReporter:
    def __init__(self) -> None:
        self.publish: Callable[[Execution], None] | None = None
        self._reported: dict[str, tuple[OrderStatus, Decimal]] = {}

    def report(self, order: Order, fill: Fill | None = None) -> Order:
        state = (order.status, order.filled_size)
        if fill is None and self._reported.get(order.order_id) == state:
            return order
        self._reported[order.order_id] = state
        if len(self._reported) > _REMEMBERED:
            del self._reported[next(iter(self._reported))]
        if self.publish is not None:
            self.publish(Execution(time.time_ns(), order, fill))
        return order
