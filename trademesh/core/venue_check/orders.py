"""The kit's orders: the smallest size, resting far from the market or taking it, placed with the
trading credential and remembered, so that every check can leave the venue flat."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from decimal import Decimal

import grpc

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.core.venue_check.kit import Kit
from trademesh.core.venue_check.market import decimal_of, reference_prices
from trademesh.core.venue_check.results import fail
from trademesh.core.venue_check.sizing import Terms
from trademesh.core.venue_check.wire import Role, answer, describe
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = [
    "ExecutionReader",
    "cancel",
    "leave_flat",
    "place",
    "place_resting",
    "resting_request",
    "round_trip",
    "status_name",
]

CANCEL_REASON = "venue-check: leaving the venue as it found it"


def status_name(status: int) -> str:
    return tf.OrderStatus.Name(status).removeprefix("ORDER_STATUS_")  # type: ignore[arg-type]


async def reference(kit: Kit) -> Decimal:
    """The market's price the kit's resting orders keep far from: the best bid, else the last price,
    else the best ask."""
    bid, ask, last = reference_prices(await kit.observation())
    found = bid or last or ask
    if found is None:
        fail(
            f"the market of {kit.symbol} showed no price (no book, ticker, trade or candle) to "
            "place orders by"
        )
    return found


async def resting_request(
    kit: Kit, ticks_lower: int = 0, client_order_id: str | None = None
) -> tf.PlaceOrderRequest:
    """A GTC limit buy of the smallest size at half the market's price (`ticks_lower` ticks below)."""
    terms = Terms(kit.instrument)
    price = max(terms.tick, terms.resting_buy(await reference(kit)) - ticks_lower * terms.tick)
    return tf.PlaceOrderRequest(
        symbol=kit.symbol,
        side=common.SIDE_BUY,
        type=tf.ORDER_TYPE_LIMIT,
        time_in_force=tf.TIME_IN_FORCE_GTC,
        size=str(terms.smallest(price)),
        price=str(price),
        client_order_id=client_order_id or kit.client_order_id(),
    )


async def round_trip(kit: Kit) -> tuple[tf.PlaceOrderRequest, tf.PlaceOrderRequest]:
    """A buy and a sell, each an IOC limit crossing the market at the smallest size (Terms.round_trip):
    two fills that leave the account as it was, up to the fees."""
    terms = Terms(kit.instrument)
    bid, ask, last = reference_prices(await kit.observation())
    best_bid, best_ask = bid or last or ask, ask or last or bid
    if best_bid is None or best_ask is None:
        fail(f"the market of {kit.symbol} showed no price to cross for a fill")
    buy_price, sell_price = terms.crossing(best_bid, best_ask)
    buy_size, sell_size = terms.round_trip(sell_price)
    return _ioc(kit, common.SIDE_BUY, buy_size, buy_price), _ioc(kit, common.SIDE_SELL, sell_size, sell_price)


def _ioc(kit: Kit, side: common.Side.ValueType, size: Decimal, price: Decimal) -> tf.PlaceOrderRequest:
    return tf.PlaceOrderRequest(
        symbol=kit.symbol,
        side=side,
        type=tf.ORDER_TYPE_LIMIT,
        time_in_force=tf.TIME_IN_FORCE_IOC,
        size=str(size),
        price=str(price),
        client_order_id=kit.client_order_id(),
    )


async def place(kit: Kit, request: tf.PlaceOrderRequest, role: Role = Role.TRADE) -> tf.PlaceOrderResponse:
    placed = await answer("PlaceOrder", kit.stubs(role).tf.PlaceOrder(request))
    kit.saw(placed.order)
    return placed


async def place_resting(kit: Kit, ticks_lower: int = 0) -> tf.Order:
    """A resting order of the kit, checked to be what was asked and OPEN."""
    request = await resting_request(kit, ticks_lower)
    order = (await place(kit, request)).order
    check_echo(kit, request, order)
    if order.status != tf.ORDER_STATUS_OPEN:
        fail(
            f"a limit buy at {request.price}, far below the market, came back "
            f"{status_name(order.status)}, not OPEN"
        )
    return order


def check_echo(kit: Kit, request: tf.PlaceOrderRequest, order: tf.Order) -> None:
    """The answer names the order that was asked for."""
    wrong = []
    if not order.order_id:
        wrong.append("no order_id")
    if order.symbol != request.symbol:
        wrong.append(f"symbol {order.symbol!r}")
    if order.side != request.side:
        wrong.append(f"side {common.Side.Name(order.side)}")
    if order.client_order_id != request.client_order_id:
        wrong.append(f"client_order_id {order.client_order_id!r}")
    if decimal_of(order.size) != Decimal(request.size):
        wrong.append(f"size {order.size!r}")
    if request.price and decimal_of(order.price) != Decimal(request.price):
        wrong.append(f"price {order.price!r}")
    if order.venue != kit.venue:
        wrong.append(f"venue {order.venue!r}")
    if wrong:
        fail(
            f"PlaceOrder of {request.size} {request.symbol} at {request.price or 'market'} "
            f"({request.client_order_id}) answered an order with {', '.join(wrong)}"
        )


async def cancel(kit: Kit, order_id: str, reason: str = CANCEL_REASON) -> tf.Order:
    answered = await answer(
        f"CancelOrder of {order_id}",
        kit.trade.tf.CancelOrder(tf.CancelOrderRequest(order_id=order_id, reason=reason)),
    )
    kit.saw(answered.order)
    return answered.order


async def leave_flat(kit: Kit) -> list[str]:
    """Cancels every order of the kit not known to have ended; the ids it could not cancel."""
    left = []
    for order_id in kit.open_orders():
        try:
            ended = await kit.trade.tf.CancelOrder(
                tf.CancelOrderRequest(order_id=order_id, reason=CANCEL_REASON)
            )
            kit.saw(ended.order)
        except grpc.aio.AioRpcError:
            with contextlib.suppress(grpc.aio.AioRpcError):
                found = await kit.trade.tf.GetOrder(tf.GetOrderRequest(order_id=order_id))
                kit.saw(found.order)
        if order_id in kit.open_orders():
            left.append(order_id)
    return left


class ExecutionReader:
    """A StreamExecutions call read in the background into `responses`, with when each came."""

    def __init__(self, kit: Kit, resume: tf.StreamExecutionsRequest.Resume | None = None) -> None:
        request = tf.StreamExecutionsRequest()
        if resume is not None:
            request.resume.CopyFrom(resume)
        self._call = kit.mesh.tf.StreamExecutions(request)
        self.responses: list[tuple[float, tf.StreamExecutionsResponse]] = []
        self.ended = ""
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._read(), name="venue-check-executions")

    async def _read(self) -> None:
        try:
            async for response in self._call:
                self.responses.append((time.monotonic(), response))
                self._changed.set()
            self.ended = "the venue ended the stream"
        except grpc.aio.AioRpcError as error:
            self.ended = f"the stream ended with {describe(error)}"
        self._changed.set()

    def executions(self) -> list[tuple[float, tf.Execution]]:
        return [(at, e) for at, r in self.responses for e in r.executions]

    async def opened(self, timeout_s: float) -> None:
        """Waits for the stream's headers: from then on, nothing the venue does goes unseen."""
        try:
            await asyncio.wait_for(self._call.initial_metadata(), timeout_s)
        except TimeoutError:
            fail(f"StreamExecutions sent no headers within {timeout_s:g} s")
        except grpc.aio.AioRpcError as error:
            fail(f"StreamExecutions answered {describe(error)}")

    async def wait_for(
        self, found: Callable[[tf.Execution], bool], timeout_s: float, what: str
    ) -> tuple[float, tf.Execution]:
        """The first execution `found` accepts, with when it came; fails after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._changed.clear()
            for at, execution in self.executions():
                if found(execution):
                    return at, execution
            left = deadline - time.monotonic()
            if self.ended:
                fail(f"{what}: not on the executions stream before {self.ended}")
            if left <= 0:
                fail(f"{what}: not on the executions stream within {timeout_s:g} s")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def first(self, timeout_s: float) -> tf.StreamExecutionsResponse:
        """The stream's first response (a resumed stream's header); fails after timeout_s."""
        deadline = time.monotonic() + timeout_s
        while True:
            self._changed.clear()
            if self.responses:
                return self.responses[0][1]
            left = deadline - time.monotonic()
            if self.ended or left <= 0:
                fail(
                    f"StreamExecutions sent no response within {timeout_s:g} "
                    f"s{': ' + self.ended if self.ended else ''}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def end(self, timeout_s: float) -> str:
        """Empty when the venue ends the stream cleanly within timeout_s; else what happened."""
        await asyncio.wait({self._task}, timeout=timeout_s)
        if not self._task.done():
            return f"was still open {timeout_s:g} s later"
        return "" if self.ended == "the venue ended the stream" else self.ended.replace("the stream ", "")

    async def close(self) -> None:
        self._call.cancel()
        await cancel_and_wait(self._task)
