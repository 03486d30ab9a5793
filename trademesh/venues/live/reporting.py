"""Executions of a live venue, each order state and each fill reported once, as the caller knows it.

Most changes are seen twice: in the answer to the connector's own call (place, cancel)
and on the venue's private stream. A fill always goes out (with the order as it stands
after it), and so does the answer to an amendment in place; an order state (status, filled
size) already reported does not.

What the exchange leaves out of an order, the reporter puts back (`mend`, for every order the
venue hands out: executions, answers, listings):
- A stop order keeps its type and trigger price: a venue's private stream may describe it
  without them (ccxt reads the trigger from some venues' REST answers only), and may do so
  before the answer to the placement comes. So a stop about to be placed is expected by its
  client order id (expect_stop), and an order seen as a stop once is known by its order id:
  either way it is reported as that stop, triggered once it has a fill.
- A reduce-only order stays reduce-only: spot exchanges (Kraken, Bybit spot, ...) read it back
  without the flag, and the dead-man switch keeps an order by it (a position's protection).
  Known for the orders this process placed (expect_reduce_only); not after a restart.
- A cancel says why: the reason the connector was given (expect_cancel, expect_cancel_all) is
  the cancelled order's status_reason, whichever of the answer and the private stream comes
  first.
"""

from __future__ import annotations

import dataclasses
import time
from collections import OrderedDict
from collections.abc import Callable
from decimal import Decimal

from trademesh.core.domain.model import Execution, Fill, Order, OrderRequest, OrderStatus, OrderType

__all__ = ["ExecutionReporter"]

# Orders whose last reported state (and reduce-only flag) is remembered.
_REMEMBERED = 10_000


class _Recent(OrderedDict[str, object]):
    """The most recent _REMEMBERED keys."""

    def put(self, key: str, value: object) -> None:
        self[key] = value
        self.move_to_end(key)
        while len(self) > _REMEMBERED:
            self.popitem(last=False)


class ExecutionReporter:
    def __init__(self) -> None:
        self.publish: Callable[[Execution], None] | None = None
        self._reported: dict[str, tuple[OrderStatus, Decimal]] = {}
        # order id, or "client:" + client order id -> (type, trigger price)
        self._stops: dict[str, tuple[OrderType, Decimal]] = {}
        self._reduce_only = _Recent()  # order id, or "client:" + client order id
        self._cancels: dict[str, str] = {}  # order id or "client:" + client id -> reason
        self._cancel_alls: dict[int, tuple[str | None, str]] = {}  # token -> (symbol or None, reason)

    def expect_stop(self, request: OrderRequest) -> None:
        """A stop about to be placed (with its client order id): its executions are that stop."""
        if request.type.is_stop and request.trigger_price is not None and request.client_order_id:
            self._remember_stop("client:" + request.client_order_id, request.type, request.trigger_price)

    def expect_reduce_only(self, request: OrderRequest) -> None:
        """An order about to be placed: reduce-only (by its client order id), whatever the
        exchange reads back."""
        if request.reduce_only and request.client_order_id:
            self._reduce_only.put("client:" + request.client_order_id, True)

    def expect_cancel(self, order_id: str, client_order_id: str, reason: str) -> str:
        """A cancel on its way: the order's status_reason once cancelled. Returns the key to
        forget it by once the cancel has been answered."""
        key = order_id or "client:" + client_order_id
        self._cancels[key] = reason
        return key

    def forget_cancel(self, key: str) -> None:
        self._cancels.pop(key, None)

    def expect_cancel_all(self, symbol: str | None, reason: str) -> int:
        """A cancel-all on its way (of `symbol`, None: every symbol): its orders' reason."""
        token = max(self._cancel_alls, default=0) + 1
        self._cancel_alls[token] = (symbol, reason)
        return token

    def forget_cancel_all(self, token: int) -> None:
        self._cancel_alls.pop(token, None)

    def report(self, order: Order, fill: Fill | None = None, *, amended: bool = False) -> Order:
        """`amended`: the order changed in place (its price or size, TradeFlow.AmendOrder), which
        goes out though its status and filled size are those reported already."""
        order = self.mend(order)
        state = (order.status, order.filled_size)
        if fill is None and not amended and self._reported.get(order.order_id) == state:
            return order
        self._reported[order.order_id] = state
        if len(self._reported) > _REMEMBERED:
            del self._reported[next(iter(self._reported))]
        if self.publish is not None:
            self.publish(Execution(time.time_ns(), order, fill))
        return order

    def mend(self, order: Order) -> Order:
        """The order with what the exchange left out put back (see the module's docstring)."""
        return self._with_reason(self._as_reduce_only(self._as_stop(order)))

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

    def _as_reduce_only(self, order: Order) -> Order:
        if order.reduce_only:
            if order.order_id:
                self._reduce_only.put(order.order_id, True)
            return order
        if order.order_id in self._reduce_only or "client:" + order.client_order_id in self._reduce_only:
            if order.order_id:
                self._reduce_only.put(order.order_id, True)
            return dataclasses.replace(order, reduce_only=True)
        return order

    def _with_reason(self, order: Order) -> Order:
        if order.status is not OrderStatus.CANCELED or order.status_reason:
            return order
        reason = self._cancels.get(order.order_id) or self._cancels.get("client:" + order.client_order_id)
        if reason is None:
            reason = next(
                (why for symbol, why in self._cancel_alls.values() if symbol in (None, order.symbol)), None
            )
        return order if reason is None else dataclasses.replace(order, status_reason=reason)
