"""`trademesh health ADDRESS`: ask a service's grpc.health.v1.Health whether it is serving."""

from __future__ import annotations

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from trademesh.core.platform.rpc.status import calling

__all__ = ["check_health"]


async def check_health(address: str, service: str = "", timeout_s: float = 3.0) -> str:
    """The serving status name (SERVING, NOT_SERVING, ...); Unavailable when it cannot be asked."""
    async with grpc.aio.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        with calling(f"{address}: health check failed"):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout_s)
    name: str = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    return name
