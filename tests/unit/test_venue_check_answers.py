"""The conformance kit against venues that answer wrongly: a tiny venue served in the test over
real gRPC (grpc.aio; a stand-in for a venue of the outside world, not one of ours) that keeps the
contract, or breaks one rule of it. The matching check must fail, its reason naming the problem;
the same check passes when the rule is kept. And the command's exit codes: 0 conforms, 1 does
not, 2 for what is no venue at all (nothing listening, an HTTP server, a gRPC server that is no
venue, a bad option), each one line, never a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import socket
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import grpc
from google.protobuf import any_pb2, message_factory
from google.protobuf.descriptor import ServiceDescriptor
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_health.v1 import health, health_pb2_grpc
from grpc_status import rpc_status

from tests.forked_services import run_command
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.venue_check.kit import KitOptions
from trademesh.core.venue_check.registry import select
from trademesh.core.venue_check.results import CheckOutcome, CheckResult
from trademesh.core.venue_check.runner import run_kit
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

MESH, TRADE = "fake-mesh-token", "fake-trade-token"
TOKENS = {"TRADEMESH_TOKEN": MESH, "TRADEMESH_TRADE_TOKEN": TRADE}
SYMBOL = "BTC/USDT"
EPOCH = 1_700_000_000_000_000_000
INSTRUMENT = common.Instrument(
    venue="fake", symbol=SYMBOL, native_symbol="BTCUSDT", kind=common.INSTRUMENT_KIND_SPOT,
    base_asset="BTC", quote_asset="USDT", settle_asset="USDT", tick_size="0.1", lot_size="0.001",
    min_size="0.001", min_notional="0", contract_size="1", active=True, contract_value="1",
    contract_value_asset="BTC",
)  # fmt: skip
_PLACE = "/trademesh.tradeflow.v1.TradeFlow/PlaceOrder"


@dataclass(frozen=True)
class Faults:
    """The one rule a fake venue breaks (none: it keeps them all)."""

    hole: bool = False  # a book delta skips a sequence number
    bare_refusal: bool = False  # a bad price refused INVALID_ARGUMENT without its field violation
    open_door: bool = False  # every call taken, with a token or without
    hang_health: bool = False  # Health/Check never answers


async def _abort_invalid(context: Any, violations: list[tuple[str, str]]) -> None:
    detail = any_pb2.Any()
    detail.Pack(
        error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=f, description=d) for f, d in violations
            ]
        )
    )
    status = status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="bad request", details=[detail])
    await context.abort_with_status(rpc_status.to_status(status))


class FakeAdmin:
    async def GetStatus(self, request: admin.GetStatusRequest, context: Any) -> admin.GetStatusResponse:
        book = admin.StreamStatus(symbol=SYMBOL, channel=md.CHANNEL_BOOK, state=admin.STREAM_STATE_CONNECTED)
        capabilities = admin.VenueCapabilities(
            amend=admin.AMEND_MODE_NATIVE, account_feed=admin.ACCOUNT_FEED_PUSH
        )
        return admin.GetStatusResponse(
            venue="fake", exchange="fake", state=admin.VENUE_STATE_RUNNING, started_ns=time.time_ns() - 10**9,
            streams=[book], capabilities=capabilities, dead_man=admin.DeadManStatus(keeps_reduce_only=True),
        )  # fmt: skip


class FakeMarketData:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    async def ListInstruments(
        self, request: md.ListInstrumentsRequest, context: Any
    ) -> md.ListInstrumentsResponse:
        unknown = [(f"symbols[{i}]", "unknown symbol") for i, s in enumerate(request.symbols) if s != SYMBOL]
        if unknown:
            await _abort_invalid(context, unknown)
        return md.ListInstrumentsResponse(instruments=[INSTRUMENT])

    async def Subscribe(
        self, request: md.SubscribeRequest, context: Any
    ) -> AsyncIterator[md.SubscribeResponse]:
        level = md.BookLevel
        snapshot = md.BookSnapshot(
            sequence=10, bids=[level(price="100", size="1")], asks=[level(price="101", size="1")]
        )
        yield md.SubscribeResponse(events=[_event(book_snapshot=snapshot)], position=1, epoch=EPOCH)
        sequences = [11, 12, 14] if self.faults.hole else [11, 12, 13]
        for position, sequence in enumerate(sequences, start=2):
            delta = md.BookDelta(sequence=sequence, bids=[level(price="100", size=str(sequence))])
            yield md.SubscribeResponse(events=[_event(book_delta=delta)], position=position, epoch=EPOCH)
        await asyncio.Event().wait()  # then quiet, until the subscriber leaves


def _event(**payload: Any) -> md.MarketEvent:
    now = time.time_ns()
    return md.MarketEvent(venue="fake", symbol=SYMBOL, ts_event_ns=now, ts_recv_ns=now, **payload)


def _multiple(text: str, step: Decimal) -> bool:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return False
    return value.is_finite() and value > 0 and value % step == 0


class FakeTradeFlow:
    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    async def PlaceOrder(self, request: tf.PlaceOrderRequest, context: Any) -> tf.PlaceOrderResponse:
        found = [(f, why) for f, why in self._violations(request)]
        if found:
            if self.faults.bare_refusal and all(f == "price" for f, _ in found):
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "bad price")
            await _abort_invalid(context, found)
        order = tf.Order(
            venue="fake", order_id="1", client_order_id=request.client_order_id, symbol=request.symbol,
            side=request.side, type=request.type, price=request.price, size=request.size,
            status=tf.ORDER_STATUS_OPEN,
        )  # fmt: skip
        return tf.PlaceOrderResponse(order=order)

    def _violations(self, request: tf.PlaceOrderRequest) -> list[tuple[str, str]]:
        found = []
        if request.symbol != SYMBOL:
            found.append(("symbol", "unknown symbol"))
        if request.side == common.SIDE_UNSPECIFIED:
            found.append(("side", "is required"))
        if request.type == tf.ORDER_TYPE_UNSPECIFIED:
            found.append(("type", "is required"))
        if not _multiple(request.size, Decimal(INSTRUMENT.lot_size)):
            found.append(("size", "must be a positive multiple of the lot"))
        if request.type == tf.ORDER_TYPE_LIMIT and not _multiple(
            request.price, Decimal(INSTRUMENT.tick_size)
        ):
            found.append(("price", "must be a positive multiple of the tick"))
        return found

    async def CancelOrder(self, request: tf.CancelOrderRequest, context: Any) -> tf.CancelOrderResponse:
        return tf.CancelOrderResponse(
            order=tf.Order(venue="fake", order_id="1", status=tf.ORDER_STATUS_CANCELED)
        )


class HangingHealth(health.aio.HealthServicer):  # type: ignore[misc]  # grpc_health ships no stubs
    async def Check(self, request: Any, context: Any) -> Any:
        await asyncio.Event().wait()


def _denied(code: grpc.StatusCode, handler: Any) -> Any:
    """A handler of the same kind as `handler` that refuses the call with `code`."""

    async def unary(request: Any, context: Any) -> None:
        await context.abort(code, "refused by the fake venue")

    async def stream(request: Any, context: Any) -> AsyncIterator[None]:
        await context.abort(code, "refused by the fake venue")
        yield None

    if handler is not None and handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(
            stream, handler.request_deserializer, handler.response_serializer
        )
    deserializer = None if handler is None else handler.request_deserializer
    return grpc.unary_unary_rpc_method_handler(unary, deserializer)


class BearerAuth(grpc.aio.ServerInterceptor):
    """The contract's auth: a token on every venue call, the trading credential for PlaceOrder."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults

    async def intercept_service(self, continuation: Callable[[Any], Awaitable[Any]], details: Any) -> Any:
        handler = await continuation(details)
        if self.faults.open_door or details.method.startswith("/grpc."):
            return handler
        token = dict(details.invocation_metadata).get("authorization", "")
        if token not in (f"Bearer {MESH}", f"Bearer {TRADE}"):
            return _denied(grpc.StatusCode.UNAUTHENTICATED, handler)
        if details.method == _PLACE and token != f"Bearer {TRADE}":
            return _denied(grpc.StatusCode.PERMISSION_DENIED, handler)
        return handler


def _served(service: ServiceDescriptor, servicer: object) -> grpc.GenericRpcHandler:
    """The methods `servicer` defines, served as the contract declares them (the others UNIMPLEMENTED)."""
    handlers = {}
    for method in service.methods:
        behaviour = getattr(servicer, method.name, None)
        if behaviour is None:
            continue
        request = message_factory.GetMessageClass(method.input_type)
        response = message_factory.GetMessageClass(method.output_type)
        make = (
            grpc.unary_stream_rpc_method_handler
            if method.server_streaming
            else grpc.unary_unary_rpc_method_handler
        )
        handlers[method.name] = make(behaviour, request.FromString, response.SerializeToString)
    return grpc.method_handlers_generic_handler(service.full_name, handlers)


@contextlib.asynccontextmanager
async def fake_venue(faults: Faults = Faults(), venue: bool = True) -> AsyncIterator[str]:
    """A fake venue's address (`venue` False: a gRPC server with health alone, no venue)."""
    server = grpc.aio.server(interceptors=[BearerAuth(faults)])
    health_servicer = HangingHealth() if faults.hang_health else health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if venue:
        server.add_generic_rpc_handlers(
            (
                _served(admin.DESCRIPTOR.services_by_name["Admin"], FakeAdmin()),
                _served(md.DESCRIPTOR.services_by_name["MarketData"], FakeMarketData(faults)),
                _served(tf.DESCRIPTOR.services_by_name["TradeFlow"], FakeTradeFlow(faults)),
            )
        )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(0)


async def check_result(address: str, check: str, call_timeout_s: float = 5.0) -> CheckResult:
    report = await run_kit(KitOptions(address, MESH, TRADE, call_timeout_s=call_timeout_s), select([check]))
    (result,) = report.results
    return result


# ---- a check fails, naming the problem, where the venue breaks its rule


async def test_book_deltas_in_sequence_pass_subscribe_book() -> None:
    async with fake_venue() as address:
        result = await check_result(address, "subscribe.book")
    assert result.outcome is CheckOutcome.PASS, result.reason
    assert "3 deltas in sequence" in result.reason


async def test_a_sequence_hole_fails_subscribe_book_naming_the_hole() -> None:
    async with fake_venue(Faults(hole=True)) as address:
        result = await check_result(address, "subscribe.book")
    assert result.outcome is CheckOutcome.FAIL
    assert "sequence 14 does not follow the book's 12 (a hole)" in result.reason, result.reason


async def test_field_violations_naming_each_bad_field_pass_order_validation() -> None:
    async with fake_venue() as address:
        result = await check_result(address, "orders.validation")
    assert result.outcome is CheckOutcome.PASS, result.reason


async def test_a_refusal_without_its_field_violation_fails_order_validation() -> None:
    async with fake_venue(Faults(bare_refusal=True)) as address:
        result = await check_result(address, "orders.validation")
    assert result.outcome is CheckOutcome.FAIL
    assert "without a field violation on price" in result.reason, result.reason


async def test_calls_without_a_token_refused_pass_auth_no_token() -> None:
    async with fake_venue() as address:
        result = await check_result(address, "auth.no_token")
    assert result.outcome is CheckOutcome.PASS, result.reason


async def test_a_venue_that_takes_calls_without_a_token_fails_auth_no_token() -> None:
    async with fake_venue(Faults(open_door=True)) as address:
        result = await check_result(address, "auth.no_token")
    assert result.outcome is CheckOutcome.FAIL
    assert result.reason == "ListInstruments with no token was accepted, not refused with UNAUTHENTICATED"


async def test_a_venue_that_hangs_fails_the_check_and_never_holds_the_kit() -> None:
    async with fake_venue(Faults(hang_health=True)) as address:
        started = time.monotonic()
        result = await check_result(address, "health", call_timeout_s=0.5)
    assert result.outcome is CheckOutcome.FAIL
    assert "no answer within its deadline" in result.reason, result.reason
    assert time.monotonic() - started < 5.0


# ---- the command's exit codes: 0, 1, 2


def _kit(*args: str, tokens: bool = True) -> Any:
    """`python -m trademesh.core.cli venue-check ...` run to its end (the real command, a process of its
    own)."""
    import os

    environment = {k: v for k, v in os.environ.items() if k not in TOKENS}
    return run_command(
        ["venue-check", *args], env={**environment, **(TOKENS if tokens else {})}, timeout_s=60
    )


def _one_line(stderr: str) -> str:
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@contextlib.contextmanager
def http_server() -> Iterator[str]:
    """An HTTP/1.1 server: it answers, but not gRPC."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def test_an_address_where_nothing_listens_is_one_line_and_exit_2() -> None:
    address = f"127.0.0.1:{_free_port()}"
    done = await asyncio.to_thread(_kit, address)
    assert done.returncode == 2 and done.stdout == ""
    assert (
        _one_line(done.stderr) == f"trademesh venue-check: nothing listens at {address} (connection refused)"
    )


async def test_an_http_server_is_one_line_and_exit_2() -> None:
    with http_server() as address:
        done = await asyncio.to_thread(_kit, address)
    assert done.returncode == 2 and done.stdout == ""
    assert _one_line(done.stderr).startswith(
        f"trademesh venue-check: {address} does not answer as a gRPC server ("
    )


async def test_a_grpc_server_that_is_no_venue_is_one_line_and_exit_2() -> None:
    async with fake_venue(venue=False) as address:
        done = await asyncio.to_thread(_kit, address)
    assert done.returncode == 2
    assert _one_line(done.stderr) == (
        f"trademesh venue-check: {address} answers gRPC but serves no trademesh.admin.v1.Admin: "
        "not a trademesh venue"
    )


async def test_bad_usage_is_one_line_and_exit_2() -> None:
    async with fake_venue() as address:
        unknown = await asyncio.to_thread(_kit, address, "--only", "health,nosuch")
        tokenless = await asyncio.to_thread(_kit, address, tokens=False)
        no_port = await asyncio.to_thread(_kit, "localhost")
    assert (unknown.returncode, tokenless.returncode, no_port.returncode) == (2, 2, 2)
    assert _one_line(unknown.stderr).startswith(
        "trademesh venue-check: --only: no check named 'nosuch'; checks: health,"
    )
    assert _one_line(tokenless.stderr) == (
        "trademesh venue-check: the kit needs the venue's mesh token: set TRADEMESH_TOKEN (or name the "
        "variable that holds it with --token-env)"
    )
    assert _one_line(no_port.stderr) == "trademesh venue-check: 'localhost' is not HOST:PORT"


async def test_a_venue_that_breaks_a_rule_exits_1_naming_the_check() -> None:
    async with fake_venue(Faults(hole=True)) as address:
        done = await asyncio.to_thread(_kit, address, "--only", "health,subscribe.book")
    assert done.returncode == 1, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].split() == [
        "PASS",
        "health",
        "Health/Check",
        "answers",
        "SERVING",
        "without",
        "a",
        "token",
    ]
    assert lines[1].startswith("FAIL  subscribe.book  book: a delta's sequence 14 does not follow")
    assert lines[-1].startswith(
        f"venue fake at {address} does not conform to the venue contract (1 passed, 1 failed"
    )


async def test_a_venue_that_keeps_the_rules_checked_exits_0() -> None:
    async with fake_venue() as address:
        done = await asyncio.to_thread(
            _kit, address, "--only", "health,subscribe.book,auth.no_token", "--json"
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert '"conforms": true' in done.stdout and '"failed": 0' in done.stdout
