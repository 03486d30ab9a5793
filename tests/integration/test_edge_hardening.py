"""Every server's gRPC edge under hostile input (issue 12, items 1, 3, 4): a venue process.

A malformed body is INVALID_ARGUMENT naming the body (UNAUTHENTICATED first when the token
is wrong), with no traceback in the log; an oversized body is refused before it is decoded;
Health/List answers; methods no servicer implements are UNIMPLEMENTED.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.support import TEST_TOKEN, TEST_TRADE_TOKEN, Venue
from trademesh.core.platform.rpc.server import MAX_REQUEST_BYTES
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = pytest.mark.integration

PLACE_ORDER = "/trademesh.tradeflow.v1.TradeFlow/PlaceOrder"
# A length-delimited field whose length runs past the end of the body.
MALFORMED = b"\x0a\xff\xff\xff\x0f"


@pytest.fixture
async def raw(venue: Venue) -> AsyncIterator[grpc.aio.Channel]:
    """A channel that sends bytes as they are (no token added)."""
    async with grpc.aio.insecure_channel(
        venue.address, options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]
    ) as channel:
        yield channel


async def _call(
    channel: grpc.aio.Channel, method: str, body: bytes, token: str | None
) -> grpc.aio.AioRpcError:
    metadata = () if token is None else (("authorization", f"Bearer {token}"),)
    call = channel.unary_unary(method, request_serializer=lambda b: b, response_deserializer=lambda b: b)
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await call(body, metadata=metadata, timeout=10)
    return refused.value


async def test_a_malformed_body_is_invalid_argument_naming_the_body_and_logs_no_traceback(
    venue: Venue, raw: grpc.aio.Channel
) -> None:
    error = await _call(raw, PLACE_ORDER, MALFORMED, TEST_TRADE_TOKEN)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_violations(error) == [
        ("(request body)", "is not a valid trademesh.tradeflow.v1.PlaceOrderRequest message")
    ]
    assert "Traceback" not in venue.log() and "DecodeError" not in venue.log()


async def test_a_malformed_body_with_a_wrong_token_is_unauthenticated_first(raw: grpc.aio.Channel) -> None:
    for token in (None, "wrong"):
        assert (await _call(raw, PLACE_ORDER, MALFORMED, token)).code() == grpc.StatusCode.UNAUTHENTICATED
    # The mesh token is no trading credential: refused before the body is decoded too.
    assert (await _call(raw, PLACE_ORDER, MALFORMED, TEST_TOKEN)).code() == grpc.StatusCode.PERMISSION_DENIED


async def test_a_body_over_the_request_limit_is_refused_before_it_is_decoded(
    venue: Venue, raw: grpc.aio.Channel
) -> None:
    request = tf.PlaceOrderRequest(symbol="BTC/USDT", client_order_id="x" * (MAX_REQUEST_BYTES + 1))
    for token in (None, TEST_TOKEN):
        error = await _call(raw, PLACE_ORDER, request.SerializeToString(), token)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    health = health_pb2_grpc.HealthStub(raw)
    reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_health_list_answers_every_service_serving(raw: grpc.aio.Channel) -> None:
    reply = await health_pb2_grpc.HealthStub(raw).List(health_pb2.HealthListRequest(), timeout=5)
    assert reply.statuses["trademesh.tradeflow.v1.TradeFlow"].status == health_pb2.HealthCheckResponse.SERVING
    assert set(reply.statuses) >= {"", "trademesh.marketdata.v1.MarketData", "trademesh.admin.v1.Admin"}


async def test_a_malformed_health_request_is_invalid_argument_too(raw: grpc.aio.Channel) -> None:
    error = await _call(raw, "/grpc.health.v1.Health/Check", MALFORMED, None)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_long_string_is_a_field_violation_and_many_bad_values_stay_one_small_answer(
    venue: Venue,
) -> None:
    stubs = venue.stubs()
    with pytest.raises(grpc.aio.AioRpcError) as long:
        await stubs.tf.GetOrder(tf.GetOrderRequest(client_order_id="x" * 5000), timeout=10)
    assert long.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert bad_request_violations(long.value) == [("client_order_id", "is 5000 characters long; at most 256")]
    unknown = [f"NOPE{i}/{'Q' * 200}" for i in range(4000)]  # about 800 KB of unknown symbols
    with pytest.raises(grpc.aio.AioRpcError) as many:
        await stubs.md.ListInstruments(md.ListInstrumentsRequest(symbols=unknown), timeout=10)
    assert many.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    ((field, description),) = bad_request_violations(many.value)
    assert field == "symbols[0]" and description.startswith("unknown symbol 'NOPE0/QQQ")
    assert "... (206 characters)" in description and len(description) < 200
