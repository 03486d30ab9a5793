"""TradeFlow's orders: validation answers, idempotency by client_order_id, cancel, cancel-all and
amend. Every order rests far from the market at the smallest size, and is cancelled before the
check ends."""

from __future__ import annotations

from decimal import Decimal

import grpc

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.venue_check.kit import Kit
from trademesh.core.venue_check.orders import (
    cancel,
    leave_flat,
    place,
    place_resting,
    resting_request,
    status_name,
)
from trademesh.core.venue_check.registry import check
from trademesh.core.venue_check.results import fail, skip
from trademesh.core.venue_check.sizing import Terms
from trademesh.core.venue_check.wire import answer, describe, field_violations
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

_UNKNOWN = "VENUECHECK/NOSUCH"


async def _invalid(kit: Kit, request: tf.PlaceOrderRequest, fields: set[str], what: str) -> None:
    """The request must be refused INVALID_ARGUMENT with a field violation on each of `fields`.
    An order placed by mistake is cancelled before the check fails."""
    try:
        placed = await kit.trade.tf.PlaceOrder(request)
    except grpc.aio.AioRpcError as error:
        if error.code() is not grpc.StatusCode.INVALID_ARGUMENT:
            fail(f"PlaceOrder {what} answered {describe(error)}, not INVALID_ARGUMENT")
        named = {field for field, _ in field_violations(error)}
        missing = sorted(fields - named)
        if missing:
            fail(
                f"PlaceOrder {what} was refused without a field violation on {', '.join(missing)} "
                f"(named: {sorted(named) or 'none'})"
            )
        return
    kit.saw(placed.order)
    await leave_flat(kit)
    fail(f"PlaceOrder {what} was accepted ({status_name(placed.order.status)}), not refused")


@check(
    "orders.validation",
    (
        "PlaceOrder refuses a bad order with INVALID_ARGUMENT and a field violation "
        "naming each bad field; nothing is placed"
    ),
)
async def orders_validation(kit: Kit) -> str:
    good = await resting_request(kit)
    terms = Terms(kit.instrument)
    price, size = Decimal(good.price), Decimal(good.size)

    def changed(**fields: object) -> tf.PlaceOrderRequest:
        request = tf.PlaceOrderRequest()
        request.CopyFrom(good)
        request.client_order_id = kit.client_order_id()
        for name, value in fields.items():
            setattr(request, name, value)
        return request

    await _invalid(kit, tf.PlaceOrderRequest(), {"symbol", "side", "type", "size"}, "with no field set")
    cases: list[tuple[tf.PlaceOrderRequest, str, str]] = [
        (changed(symbol=_UNKNOWN), "symbol", f"of the unknown symbol {_UNKNOWN}"),
        (changed(size="0"), "size", "of size 0"),
        (changed(size="-1"), "size", "of a negative size"),
        (changed(size=str(size + terms.lot / 2)), "size", "of a size between two lots"),
        (changed(size="abc"), "size", "of a size that is not a decimal"),
        (changed(price=""), "price", "of a limit order without a price"),
        (changed(price=str(price + terms.tick / 2)), "price", "of a price between two ticks"),
        (changed(price="abc"), "price", "of a price that is not a decimal"),
        (changed(side=common.SIDE_UNSPECIFIED), "side", "without a side"),
        (changed(type=tf.ORDER_TYPE_UNSPECIFIED), "type", "without a type"),
    ]
    for request, field, what in cases:
        await _invalid(kit, request, {field}, what)
    return f"{len(cases) + 1} bad orders refused, each naming its field; none placed"


@check(
    "orders.idempotency",
    (
        "PlaceOrder again with a client_order_id answers the first order (duplicate), "
        "open or cancelled, and never places a second"
    ),
)
async def orders_idempotency(kit: Kit) -> str:
    request = await resting_request(kit)
    first = await place_resting_request(kit, request)
    try:
        again = await place(kit, request)
        if not again.duplicate or again.order.order_id != first.order_id:
            fail(
                f"PlaceOrder again with client_order_id {request.client_order_id} answered order "
                f"{again.order.order_id} (duplicate {again.duplicate}), not {first.order_id} as a "
                "duplicate"
            )
        listed = await answer(
            "ListOpenOrders", kit.mesh.tf.ListOpenOrders(tf.ListOpenOrdersRequest(symbol=kit.symbol))
        )
        mine = [o.order_id for o in listed.orders if o.client_order_id == request.client_order_id]
        if mine != [first.order_id]:
            fail(
                f"ListOpenOrders holds {len(mine)} orders of client_order_id "
                f"{request.client_order_id}, not one"
            )
        found = await answer(
            "GetOrder by client_order_id",
            kit.mesh.tf.GetOrder(tf.GetOrderRequest(client_order_id=request.client_order_id)),
        )
        if found.order.order_id != first.order_id:
            fail(
                f"GetOrder by client_order_id {request.client_order_id} answered order "
                f"{found.order.order_id}, not {first.order_id}"
            )
        await cancel(kit, first.order_id)
        later = await place(kit, request)
        if (
            not later.duplicate
            or later.order.order_id != first.order_id
            or later.order.status != tf.ORDER_STATUS_CANCELED
        ):
            fail(
                "PlaceOrder with the client_order_id of a cancelled order answered order "
                f"{later.order.order_id} {status_name(later.order.status)} (duplicate "
                f"{later.duplicate}), not the cancelled one"
            )
    finally:
        await leave_flat(kit)
    return (
        f"a repeated client_order_id answered order {first.order_id} (duplicate), open and "
        "once cancelled; one order held"
    )


async def place_resting_request(kit: Kit, request: tf.PlaceOrderRequest) -> tf.Order:
    placed = await place(kit, request)
    if placed.duplicate or placed.order.status != tf.ORDER_STATUS_OPEN:
        fail(
            f"a new resting order came back {status_name(placed.order.status)} (duplicate "
            f"{placed.duplicate}), not a new OPEN one"
        )
    return placed.order


@check(
    "orders.cancel",
    (
        "CancelOrder by order_id and by client_order_id: CANCELED, with the reason given "
        '(else "canceled by request"); GetOrder agrees; an unknown order is NOT_FOUND'
    ),
)
async def orders_cancel(kit: Kit) -> str:
    reason = "venue-check: cancel by order id"
    try:
        first = await place_resting(kit)
        canceled = await cancel(kit, first.order_id, reason)
        if canceled.status != tf.ORDER_STATUS_CANCELED or canceled.status_reason != reason:
            fail(
                f"CancelOrder answered {status_name(canceled.status)} with status_reason "
                f"{canceled.status_reason!r}, not CANCELED with {reason!r}"
            )
        found = await answer("GetOrder", kit.mesh.tf.GetOrder(tf.GetOrderRequest(order_id=first.order_id)))
        if found.order.status != tf.ORDER_STATUS_CANCELED:
            fail(f"GetOrder of a cancelled order answered {status_name(found.order.status)}")
        second = await place_resting(kit)
        by_client = await answer(
            "CancelOrder by client_order_id",
            kit.trade.tf.CancelOrder(tf.CancelOrderRequest(client_order_id=second.client_order_id)),
        )
        kit.saw(by_client.order)
        if by_client.order.order_id != second.order_id or by_client.order.status != tf.ORDER_STATUS_CANCELED:
            fail(
                f"CancelOrder by client_order_id answered order {by_client.order.order_id} "
                f"{status_name(by_client.order.status)}"
            )
        if by_client.order.status_reason != "canceled by request":
            fail(
                "CancelOrder without a reason gave status_reason "
                f"{by_client.order.status_reason!r}, not 'canceled by request'"
            )
        unknown = kit.client_order_id()
        try:
            await kit.trade.tf.CancelOrder(tf.CancelOrderRequest(client_order_id=unknown))
        except grpc.aio.AioRpcError as error:
            if error.code() is not grpc.StatusCode.NOT_FOUND:
                fail(f"CancelOrder of an order never placed answered {describe(error)}, not NOT_FOUND")
        else:
            fail("CancelOrder of an order never placed was accepted, not NOT_FOUND")
    finally:
        await leave_flat(kit)
    return "cancelled by order_id (its reason kept) and by client_order_id; an unknown order NOT_FOUND"


@check(
    "orders.cancel_all",
    (
        "CancelAllOrders of a symbol cancels every open order of it, each with "
        'status_reason "cancel-all: <reason>"'
    ),
)
async def orders_cancel_all(kit: Kit) -> str:
    try:
        orders = [await place_resting(kit), await place_resting(kit, ticks_lower=1)]
        answered = await answer(
            "CancelAllOrders",
            kit.trade.tf.CancelAllOrders(tf.CancelAllOrdersRequest(symbol=kit.symbol, reason="venue-check")),
        )
        for order in answered.orders:
            kit.saw(order)
        by_id = {o.order_id: o for o in answered.orders}
        for order in orders:
            got = by_id.get(order.order_id)
            if got is None:
                fail(f"CancelAllOrders of {kit.symbol} did not answer order {order.order_id}")
            if got.status != tf.ORDER_STATUS_CANCELED or got.status_reason != "cancel-all: venue-check":
                fail(
                    f"CancelAllOrders answered order {order.order_id} {status_name(got.status)} with "
                    f"status_reason {got.status_reason!r}"
                )
        listed = await answer(
            "ListOpenOrders", kit.mesh.tf.ListOpenOrders(tf.ListOpenOrdersRequest(symbol=kit.symbol))
        )
        left = [o.order_id for o in listed.orders if o.order_id in by_id]
        if left:
            fail(f"orders {', '.join(left)} are still open after CancelAllOrders")
    finally:
        await leave_flat(kit)
    return f"CancelAllOrders cancelled both orders of {kit.symbol}, reason kept; none left open"


@check(
    "orders.amend",
    (
        "AmendOrder as the capabilities say: in place (same order_id) or "
        "cancel-and-replace (replaced, the original CANCELED); an ended order "
        "FAILED_PRECONDITION"
    ),
)
async def orders_amend(kit: Kit) -> str:
    mode = kit.status.capabilities.amend
    if mode == admin.AMEND_MODE_UNSPECIFIED:
        skip("GetStatus capabilities.amend is AMEND_MODE_UNSPECIFIED: the venue does not amend")
    terms = Terms(kit.instrument)
    try:
        order = await place_resting(kit)
        price = Decimal(order.price) + terms.tick  # a tick nearer, still far from the market
        amended = await answer(
            "AmendOrder",
            kit.trade.tf.AmendOrder(tf.AmendOrderRequest(order_id=order.order_id, price=str(price))),
        )
        kit.saw(amended.order)
        if amended.HasField("canceled"):
            kit.saw(amended.canceled)
        _judge_amend(mode, order, amended, price)
        canceled = await cancel(kit, amended.order.order_id)
        try:
            await kit.trade.tf.AmendOrder(tf.AmendOrderRequest(order_id=canceled.order_id, price=str(price)))
        except grpc.aio.AioRpcError as error:
            if error.code() is not grpc.StatusCode.FAILED_PRECONDITION:
                fail(f"AmendOrder of a cancelled order answered {describe(error)}, not FAILED_PRECONDITION")
        else:
            fail("AmendOrder of a cancelled order was accepted, not FAILED_PRECONDITION")
    finally:
        await leave_flat(kit)
    how = "in place" if mode == admin.AMEND_MODE_NATIVE else "by cancel and replace"
    return f"amended {how} to {price}; a cancelled order refused FAILED_PRECONDITION"


def _judge_amend(mode: int, order: tf.Order, amended: tf.AmendOrderResponse, price: Decimal) -> None:
    new = amended.order
    if Decimal(new.price or "0") != price or new.status not in (
        tf.ORDER_STATUS_OPEN,
        tf.ORDER_STATUS_PARTIALLY_FILLED,
    ):
        fail(f"AmendOrder to {price} answered an order at {new.price!r}, {status_name(new.status)}")
    if mode == admin.AMEND_MODE_NATIVE:
        if amended.replaced or new.order_id != order.order_id:
            fail(
                f"a venue that amends in place (AMEND_MODE_NATIVE) answered order {new.order_id} "
                f"(replaced {amended.replaced}), not {order.order_id}"
            )
        return
    if not amended.replaced or amended.canceled.order_id != order.order_id:
        fail(
            "a cancel-and-replace amend (AMEND_MODE_CANCEL_REPLACE) answered without replaced "
            "and the cancelled original"
        )
    if amended.canceled.status != tf.ORDER_STATUS_CANCELED or new.order_id == order.order_id:
        fail(
            f"the replaced original is {status_name(amended.canceled.status)} and the "
            f"replacement's id {new.order_id}"
        )
