"""Bearer-token auth: every venue RPC needs the token; health and reflection do not."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.integration.support import CALL_TIMEOUT_S, Stubs, Venue, limit_order
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = pytest.mark.integration

Call = Callable[[Stubs], Awaitable[Any]]


async def _first(call: Any) -> Any:
    return await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)


# One unary and, where the service has one, one streaming RPC of each service.
CALLS: dict[str, Call] = {
    "MarketData/ListInstruments": lambda s: s.md.ListInstruments(
        md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S
    ),
    "MarketData/Subscribe": lambda s: _first(
        s.md.Subscribe(md.SubscribeRequest(symbols=["BTC/USDT"], channels=[md.CHANNEL_BOOK]))
    ),
    "MarketData/GetCandles": lambda s: s.md.GetCandles(
        md.GetCandlesRequest(symbol="BTC/USDT", timeframe=common.TIMEFRAME_1_SECOND), timeout=CALL_TIMEOUT_S
    ),
    "TradeFlow/GetBalances": lambda s: s.tf.GetBalances(tf.GetBalancesRequest(), timeout=CALL_TIMEOUT_S),
    "TradeFlow/PlaceOrder": lambda s: s.tf.PlaceOrder(
        limit_order("BTC/USDT", common.SIDE_BUY, "0.001", "10000", client_order_id="auth-never-placed"),
        timeout=CALL_TIMEOUT_S,
    ),
    "TradeFlow/CancelAllOrders": lambda s: s.tf.CancelAllOrders(
        tf.CancelAllOrdersRequest(), timeout=CALL_TIMEOUT_S
    ),
    "TradeFlow/StreamExecutions": lambda s: _first(s.tf.StreamExecutions(tf.StreamExecutionsRequest())),
    "Admin/GetStatus": lambda s: s.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S),
    "Admin/Heartbeat": lambda s: s.admin.Heartbeat(admin.HeartbeatRequest(ttl_ms=1), timeout=CALL_TIMEOUT_S),
    "Admin/Drain": lambda s: s.admin.Drain(
        admin.DrainRequest(cancel_open_orders=True), timeout=CALL_TIMEOUT_S
    ),
}


@pytest.mark.parametrize("token", [None, "wrong-token", ""], ids=["no-token", "wrong-token", "empty-token"])
@pytest.mark.parametrize("rpc", sorted(CALLS))
async def test_calls_without_the_right_token_are_unauthenticated(
    venue: Venue, rpc: str, token: str | None
) -> None:
    stubs = venue.stubs(token)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await CALLS[rpc](stubs)
    assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert "bearer token" in (error.value.details() or "")


async def test_refused_calls_have_no_effect(venue: Venue, stubs: Stubs) -> None:
    intruder = venue.stubs("wrong-token")
    for rpc in ("TradeFlow/PlaceOrder", "Admin/Heartbeat", "Admin/Drain"):
        with pytest.raises(grpc.aio.AioRpcError):
            await CALLS[rpc](intruder)
    with pytest.raises(grpc.aio.AioRpcError) as error:
        await stubs.tf.GetOrder(
            tf.GetOrderRequest(client_order_id="auth-never-placed"), timeout=CALL_TIMEOUT_S
        )
    assert error.value.code() == grpc.StatusCode.NOT_FOUND
    status = await stubs.admin.GetStatus(admin.GetStatusRequest(), timeout=CALL_TIMEOUT_S)
    assert status.state == admin.VENUE_STATE_RUNNING and not status.dead_man.armed


async def test_the_token_must_be_sent_as_a_bearer_credential(venue: Venue) -> None:
    channel = venue.channel(token=None)
    get_status = channel.unary_unary(
        "/trademesh.admin.v1.Admin/GetStatus",
        request_serializer=admin.GetStatusRequest.SerializeToString,
        response_deserializer=admin.GetStatusResponse.FromString,
    )
    for value in (venue.token, f"Basic {venue.token}", f"Bearer{venue.token}", f"Bearer {venue.token}x"):
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await get_status(
                admin.GetStatusRequest(), metadata=[("authorization", value)], timeout=CALL_TIMEOUT_S
            )
        assert error.value.code() == grpc.StatusCode.UNAUTHENTICATED, value
    status = await get_status(
        admin.GetStatusRequest(),
        metadata=[("authorization", f"Bearer {venue.token}")],
        timeout=CALL_TIMEOUT_S,
    )
    assert status.venue == "sim"
    # The scheme is case-insensitive (RFC 6750), the token is not.
    lower = await get_status(
        admin.GetStatusRequest(),
        metadata=[("authorization", f"bearer {venue.token}")],
        timeout=CALL_TIMEOUT_S,
    )
    assert lower.venue == "sim"


async def test_health_answers_without_a_token(venue: Venue) -> None:
    health = health_pb2_grpc.HealthStub(venue.channel(token=None))
    for service in (
        "",
        "trademesh.marketdata.v1.MarketData",
        "trademesh.tradeflow.v1.TradeFlow",
        "trademesh.admin.v1.Admin",
    ):
        response = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=CALL_TIMEOUT_S)
        assert response.status == health_pb2.HealthCheckResponse.SERVING, service


async def test_reflection_answers_without_a_token(venue: Venue) -> None:
    reflection = reflection_pb2_grpc.ServerReflectionStub(venue.channel(token=None))
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="trademesh.tradeflow.v1.TradeFlow"),
    ]
    responses = [r async for r in reflection.ServerReflectionInfo(iter(requests), timeout=CALL_TIMEOUT_S)]
    names = {s.name for s in responses[0].list_services_response.service}
    assert {
        "trademesh.marketdata.v1.MarketData",
        "trademesh.tradeflow.v1.TradeFlow",
        "trademesh.admin.v1.Admin",
        "grpc.health.v1.Health",
    } <= names
    assert responses[1].file_descriptor_response.file_descriptor_proto, "no descriptor for TradeFlow"
