"""LogHub's reading side: trademesh.logs.v1.Logs over the bus's `logs` stream (docs/logs.md)."""

from __future__ import annotations

import asyncio

from core.foundations.bus.redis import BusRedis
from core.foundations.rpc.server import Service
from gateway.logs.servicer import LogsServicer
from trademesh.logs.v1 import logs_pb2_grpc as pb_grpc

__all__ = ["LOGS_SERVICE", "LogsServicer", "logs_service"]

LOGS_SERVICE = "trademesh.logs.v1.Logs"


def logs_service(redis: BusRedis | None, where: str, stopping: asyncio.Event) -> Service:
    return Service(LOGS_SERVICE, LogsServicer(redis, where, stopping), pb_grpc.add_LogsServicer_to_server)
