"""The server edge (trademesh.core.platform.rpc.edge) around a real grpc.aio server: an abort whose status
cannot be sent because the client went away meanwhile (grpc's health servicer's NOT_FOUND met a
fuzz client's deadline this way) is the end of the call, not a bug: nothing is logged as an
error and no second abort is tried."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from prometheus_client import REGISTRY

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.core.platform.rpc.server import ServerOptions, Service, create_server

GET_STATUS = {"grpc_service": "trademesh.admin.v1.Admin", "grpc_method": "GetStatus", "grpc_type": "unary"}


class LateAbort:
    """GetStatus holds the loop past the client's deadline, then aborts NOT_FOUND (as grpc's
    health servicer does for a service it does not know)."""

    def __init__(self) -> None:
        self.raised: list[str] = []

    async def GetStatus(
        self, request: admin.GetStatusRequest, context: grpc.aio.ServicerContext[object, object]
    ) -> admin.GetStatusResponse:
        time.sleep(0.4)  # noqa: ASYNC251 (the loop blocked on purpose: the deadline passes meanwhile)
        try:
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        except BaseException as exc:
            self.raised.append(type(exc).__name__)
            raise
        raise AssertionError("abort returned")


def _add_late_abort(servicer: LateAbort, server: Any) -> None:
    """Admin with GetStatus only (the edge wraps it as it wraps any generated service's)."""
    handler = grpc.unary_unary_rpc_method_handler(
        servicer.GetStatus,
        request_deserializer=admin.GetStatusRequest.FromString,
        response_serializer=admin.GetStatusResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("trademesh.admin.v1.Admin", {"GetStatus": handler}),)
    )


def _handled(code: str) -> float:
    return REGISTRY.get_sample_value("grpc_server_handled_total", {**GET_STATUS, "grpc_code": code}) or 0.0


async def _until(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout_s} s")
        await asyncio.sleep(0.02)


async def test_an_abort_the_client_left_before_is_the_calls_end_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    servicer = LateAbort()
    service = Service("trademesh.admin.v1.Admin", servicer, _add_late_abort)
    served = await create_server([service], ServerOptions())
    before = _handled("NOT_FOUND")
    caplog.set_level(logging.DEBUG)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await admin_grpc.AdminStub(channel).GetStatus(admin.GetStatusRequest(), timeout=0.1)
            assert refused.value.code() is grpc.StatusCode.DEADLINE_EXCEEDED
            await _until(lambda: _handled("NOT_FOUND") > before, 5, "the call counted")
    finally:
        await served.server.stop(None)
    assert servicer.raised == ["ExecuteBatchError"]  # the send failed: the client was gone
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
