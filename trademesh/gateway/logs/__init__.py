"""LogHub's reading side: trademesh.logs.v1.Logs over the bus's `logs` stream (docs/logs.md)."""

from __future__ import annotations

from trademesh.core.platform.rpc.server import Service
from trademesh.gateway.logs.servicer import LogsServicer
from trademesh.logs.v1 import logs_pb2_grpc as pb_grpc

__all__ = ["LOGS_SERVICE", "LogsServicer", "logs_service"]

LOGS_SERVICE = "trademesh.logs.v1.Logs"


def logs_service(servicer: LogsServicer) -> Service:
    return Service(LOGS_SERVICE, servicer, pb_grpc.add_LogsServicer_to_server)
