"""Who may call what: no token (or a wrong one) is UNAUTHENTICATED; the mesh token reads but may
not trade (PERMISSION_DENIED); the trading credential does both. And bounded request sizes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.core.venue_check.kit import Kit
from trademesh.core.venue_check.orders import cancel, leave_flat, place, resting_request, status_name
from trademesh.core.venue_check.registry import check
from trademesh.core.venue_check.results import fail
from trademesh.core.venue_check.wire import (
    Role,
    Stubs,
    answer,
    describe,
    field_violations,
    open_stubs,
    refusal,
)
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

_WRONG_TOKEN = "venue-check-not-a-token"
_OVER_LIMIT_BYTES = 3 * 512 * 1024  # 1.5 MiB: past the 1 MiB a request may hold
_LONG_CHARS = 300  # past the 256 characters a string field may hold


async def _first_message(call: Any) -> Any:
    try:
        return await call.read()
    finally:
        call.cancel()


def _reads(kit: Kit, stubs: Stubs) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    return [
        ("ListInstruments", lambda: stubs.md.ListInstruments(md.ListInstrumentsRequest())),
        ("Admin/GetStatus", lambda: stubs.admin.GetStatus(admin.GetStatusRequest())),
        ("GetBalances", lambda: stubs.tf.GetBalances(tf.GetBalancesRequest())),
        ("ListOpenOrders", lambda: stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest())),
    ]


def _streams(kit: Kit, stubs: Stubs) -> list[tuple[str, Callable[[], Awaitable[Any]]]]:
    subscribe = md.SubscribeRequest(
        symbols=[kit.symbol], channels=kit.streamed_channels(kit.symbol) or [md.CHANNEL_TRADES]
    )
    return [
        (
            "Subscribe",
            lambda: _first_message(stubs.md.Subscribe(subscribe, timeout=kit.options.call_timeout_s)),
        ),
        (
            "StreamExecutions",
            lambda: _first_message(
                stubs.tf.StreamExecutions(tf.StreamExecutionsRequest(), timeout=kit.options.call_timeout_s)
            ),
        ),
    ]


async def _place_refused(kit: Kit, stubs: Stubs, code: grpc.StatusCode, who: str) -> None:
    """PlaceOrder of a good resting order as `who` must be refused with `code`; an order placed
    by mistake is cancelled (with the trading credential) before the check fails."""
    request = await resting_request(kit)
    try:
        placed = await stubs.tf.PlaceOrder(request)
    except grpc.aio.AioRpcError as error:
        if error.code() is not code:
            fail(f"PlaceOrder with {who} answered {describe(error)}, not {code.name}")
        return
    kit.saw(placed.order)
    await leave_flat(kit)
    fail(f"PlaceOrder with {who} was accepted ({status_name(placed.order.status)}), not {code.name}")


@check(
    "auth.no_token",
    (
        "every venue RPC (reads, streams, orders) refuses a call without a token, or with "
        "a wrong one: UNAUTHENTICATED"
    ),
)
async def auth_no_token(kit: Kit) -> str:
    wrong = open_stubs(
        kit.options.address, _WRONG_TOKEN, kit.options.call_timeout_s, kit.options.call_timeout_s
    )
    try:
        for stubs, who in ((kit.open, "no token"), (wrong, "a wrong token")):
            for name, call in _reads(kit, stubs) + _streams(kit, stubs):
                await refusal(f"{name} with {who}", call(), grpc.StatusCode.UNAUTHENTICATED)
            await _place_refused(kit, stubs, grpc.StatusCode.UNAUTHENTICATED, who)
    finally:
        await wrong.close()
    return "reads, streams and PlaceOrder: UNAUTHENTICATED without a token and with a wrong one"


@check(
    "auth.mesh_token",
    (
        "the mesh token reads, but PlaceOrder, CancelOrder, CancelAllOrders, AmendOrder, "
        "Heartbeat and Drain with cancel_open_orders are PERMISSION_DENIED"
    ),
)
async def auth_mesh_token(kit: Kit) -> str:
    mesh, nobody = kit.mesh, kit.client_order_id()
    for name, call in _reads(kit, mesh):
        await answer(f"{name} with the mesh token", call())
    await _place_refused(kit, mesh, grpc.StatusCode.PERMISSION_DENIED, "the mesh token")
    denied: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
        ("CancelOrder", lambda: mesh.tf.CancelOrder(tf.CancelOrderRequest(client_order_id=nobody))),
        ("CancelAllOrders", lambda: mesh.tf.CancelAllOrders(tf.CancelAllOrdersRequest(symbol=kit.symbol))),
        ("AmendOrder", lambda: mesh.tf.AmendOrder(tf.AmendOrderRequest(client_order_id=nobody, size="1"))),
        ("Admin/Heartbeat", lambda: mesh.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=0))),
        (
            "Admin/Drain with cancel_open_orders",
            lambda: mesh.admin.Drain(admin.DrainRequest(cancel_open_orders=True)),
        ),
    ]
    for name, call in denied:
        await refusal(f"{name} with the mesh token", call(), grpc.StatusCode.PERMISSION_DENIED)
    return (
        "reads answered; PlaceOrder, cancels, amend, Heartbeat and Drain with "
        "cancel_open_orders PERMISSION_DENIED"
    )


@check("auth.trade_token", "the trading credential reads, places and cancels orders")
async def auth_trade_token(kit: Kit) -> str:
    for name, call in _reads(kit, kit.trade):
        await answer(f"{name} with the trading credential", call())
    try:
        placed = await place(kit, await resting_request(kit), Role.TRADE)
        await cancel(kit, placed.order.order_id)
    finally:
        await leave_flat(kit)
    return "reads answered; an order placed and cancelled with the trading credential"


@check(
    "limits.request_size",
    (
        "a request over 1 MiB is RESOURCE_EXHAUSTED, a string field over 256 characters "
        "INVALID_ARGUMENT naming it; the venue answers on"
    ),
)
async def limits_request_size(kit: Kit) -> str:
    huge = md.ListInstrumentsRequest(symbols=["X" * _OVER_LIMIT_BYTES])
    await refusal(
        "ListInstruments of 1.5 MiB", kit.mesh.md.ListInstruments(huge), grpc.StatusCode.RESOURCE_EXHAUSTED
    )
    long = md.ListInstrumentsRequest(symbols=["X" * _LONG_CHARS])
    error = await refusal(
        f"ListInstruments of a {_LONG_CHARS}-character symbol",
        kit.mesh.md.ListInstruments(long),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    if not any(f.startswith("symbols") for f, _ in field_violations(error)):
        fail(
            f"ListInstruments of a {_LONG_CHARS}-character symbol was refused without a field "
            "violation on symbols"
        )
    await answer("Admin/GetStatus after the refusals", kit.mesh.admin.GetStatus(admin.GetStatusRequest()))
    return "1.5 MiB RESOURCE_EXHAUSTED, 300 characters INVALID_ARGUMENT on symbols, the venue answers on"
