"""The kit's side of the wire: channels that carry a bearer token and a deadline on every call,
and the readings of an answer (status code, field violations) that checks rely on.

Nothing here knows how a venue is built: only the contract's protocol (gRPC, google.rpc.Status
details in `grpc-status-details-bin`).
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2_grpc

from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.core.venue_check.results import fail, one_line
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

__all__ = [
    "Role",
    "Stubs",
    "answer",
    "describe",
    "field_violations",
    "open_stubs",
    "refusal",
]

T = TypeVar("T")

# A Subscribe answer may join many dispatches (up to about 4 MiB when resumed).
_MAX_RECEIVE_BYTES = 64 * 1024 * 1024
_STATUS_DETAILS = "grpc-status-details-bin"


class Role(enum.Enum):
    """Who the kit calls as: nobody (no token), a mesh service (the mesh token), or the inspector
    (the trading credential)."""

    NONE = "no token"
    MESH = "the mesh token"
    TRADE = "the trading credential"


def _with(details: Any, token: str | None, timeout_s: float) -> grpc.aio.ClientCallDetails:
    metadata = grpc.aio.Metadata(*(details.metadata or ()))
    if token is not None:
        metadata.add("authorization", f"Bearer {token}")
    timeout = details.timeout if details.timeout is not None else timeout_s
    return grpc.aio.ClientCallDetails(
        details.method, timeout, metadata, details.credentials, details.wait_for_ready
    )


# grpc.aio files an interceptor under its first matching kind only: one class per call kind.
class _Unary(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self, token: str | None, timeout_s: float) -> None:
        self._token, self._timeout_s = token, timeout_s

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with(details, self._token, self._timeout_s), request)


class _ServerStream(grpc.aio.UnaryStreamClientInterceptor):
    def __init__(self, token: str | None, timeout_s: float) -> None:
        self._token, self._timeout_s = token, timeout_s

    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await continuation(_with(details, self._token, self._timeout_s), request)


class _BidiStream(grpc.aio.StreamStreamClientInterceptor):
    def __init__(self, token: str | None, timeout_s: float) -> None:
        self._token, self._timeout_s = token, timeout_s

    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await continuation(_with(details, self._token, self._timeout_s), requests)


@dataclass
class Stubs:
    """The venue's services on one channel, every call carrying one role's token."""

    channel: grpc.aio.Channel
    md: md_grpc.MarketDataAsyncStub
    tf: tf_grpc.TradeFlowAsyncStub
    admin: admin_grpc.AdminAsyncStub
    health: Any  # grpc_health ships no type stubs

    async def close(self) -> None:
        await self.channel.close()


def open_stubs(address: str, token: str | None, call_timeout_s: float, stream_timeout_s: float) -> Stubs:
    """A channel to `address`: unary calls get `call_timeout_s` unless they set their own
    deadline, streams `stream_timeout_s`."""
    interceptors = [
        _Unary(token, call_timeout_s),
        _ServerStream(token, stream_timeout_s),
        _BidiStream(token, stream_timeout_s),
    ]
    channel = grpc.aio.insecure_channel(
        address,
        interceptors=interceptors,
        options=[
            ("grpc.max_receive_message_length", _MAX_RECEIVE_BYTES),
            # A refused connection is retried at once by the next call, not after grpc's backoff.
            ("grpc.initial_reconnect_backoff_ms", 100),
            ("grpc.max_reconnect_backoff_ms", 1000),
        ],
    )
    return Stubs(
        channel,
        md_grpc.MarketDataStub(channel),
        tf_grpc.TradeFlowStub(channel),
        admin_grpc.AdminStub(channel),
        health_pb2_grpc.HealthStub(channel),
    )


def describe(error: grpc.aio.AioRpcError) -> str:
    """An error answer in a line: its code and message."""
    code = error.code()
    if code is grpc.StatusCode.DEADLINE_EXCEEDED:
        return "no answer within its deadline (DEADLINE_EXCEEDED)"
    details = error.details() or ""
    return one_line(f"{code.name}" + (f" ({details})" if details else ""))


async def answer(what: str, call: Awaitable[T]) -> T:
    """The call's answer; an error answer fails the check, naming `what` was asked."""
    try:
        return await call
    except grpc.aio.AioRpcError as error:
        fail(f"{what} answered {describe(error)}")


async def refusal(what: str, call: Awaitable[Any], code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    """The error answer of a call that must be refused with `code`; anything else fails."""
    try:
        await call
    except grpc.aio.AioRpcError as error:
        if error.code() is not code:
            fail(f"{what} answered {describe(error)}, not {code.name}")
        return error
    fail(f"{what} was accepted, not refused with {code.name}")


def field_violations(error: grpc.aio.AioRpcError) -> list[tuple[str, str]]:
    """The (field, description) pairs of a google.rpc.BadRequest in the answer's status details."""
    found: list[tuple[str, str]] = []
    for key, value in error.trailing_metadata() or ():
        if key != _STATUS_DETAILS or not isinstance(value, bytes):
            continue
        status = status_pb2.Status()
        try:
            status.ParseFromString(value)
        except Exception:  # a venue's malformed details: no violations to read
            continue
        for detail in status.details:
            request = error_details_pb2.BadRequest()
            if detail.Unpack(request):
                found += [(v.field, v.description) for v in request.field_violations]
    return found
