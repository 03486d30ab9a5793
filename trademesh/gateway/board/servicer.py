"""trademesh.services.v1.Services over the board's snapshot (served on the gateway's gRPC port,
and over gRPC-web through its own registry entry)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.rpc.context import Context
from trademesh.core.platform.rpc.server import Service
from trademesh.gateway.board.board import Board
from trademesh.services.v1 import services_pb2 as pb
from trademesh.services.v1 import services_pb2_grpc as pb_grpc

__all__ = [
    "DEFAULT_INTERVAL_MS",
    "MAX_INTERVAL_MS",
    "MIN_INTERVAL_MS",
    "SERVICES_SERVICE",
    "ServicesServicer",
    "services_service",
    "watch_interval_ms",
]

SERVICES_SERVICE = "trademesh.services.v1.Services"

DEFAULT_INTERVAL_MS = 2000
MIN_INTERVAL_MS = 500
MAX_INTERVAL_MS = 60_000


class ServicesServicer(pb_grpc.ServicesServicer):
    def __init__(self, board: Board) -> None:
        self._board = board

    async def List(
        self, request: pb.ListRequest, context: Context[pb.ListRequest, pb.ListResponse]
    ) -> pb.ListResponse:
        return pb.ListResponse(snapshot=await self._board.fresh())

    async def Watch(
        self, request: pb.WatchRequest, context: Context[pb.WatchRequest, pb.WatchResponse]
    ) -> AsyncIterator[pb.WatchResponse]:
        interval_s = watch_interval_ms(request.interval_ms) / 1000
        yield pb.WatchResponse(snapshot=await self._board.fresh())
        while True:
            await asyncio.sleep(interval_s)
            self._board.touch()
            yield pb.WatchResponse(snapshot=self._board.snapshot())


def watch_interval_ms(interval_ms: int) -> int:
    if interval_ms == 0:
        return DEFAULT_INTERVAL_MS
    if MIN_INTERVAL_MS <= interval_ms <= MAX_INTERVAL_MS:
        return interval_ms
    raise InvalidArgument.field(
        "interval_ms", f"{interval_ms} is not {MIN_INTERVAL_MS}..{MAX_INTERVAL_MS} (0: {DEFAULT_INTERVAL_MS})"
    )


def services_service(board: Board) -> Service:
    return Service(SERVICES_SERVICE, ServicesServicer(board), pb_grpc.add_ServicesServicer_to_server)
