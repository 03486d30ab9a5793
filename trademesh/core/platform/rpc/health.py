"""grpc.health.v1.Health of every server: grpc's servicer, plus List.

grpcio-health-checking's asyncio servicer does not implement List (added to the protocol
later): it answered INTERNAL with a traceback. This one keeps the statuses it was told and
lists them.
"""

from __future__ import annotations

from grpc_health.v1 import health, health_pb2

from trademesh.core.platform.rpc.context import Context

__all__ = ["HealthServicer"]

# A HealthCheckResponse.ServingStatus value (grpc_health ships no type stubs).
Status = int


class HealthServicer(health.aio.HealthServicer):  # type: ignore[misc]  # grpc_health has no stubs
    def __init__(self) -> None:
        super().__init__()
        self._statuses: dict[str, Status] = {"": health_pb2.HealthCheckResponse.SERVING}

    async def set(self, service: str, status: Status) -> None:
        self._statuses[service] = status
        await super().set(service, status)

    async def List(
        self,
        request: health_pb2.HealthListRequest,
        context: Context[health_pb2.HealthListRequest, health_pb2.HealthListResponse],
    ) -> health_pb2.HealthListResponse:
        statuses = {name: health_pb2.HealthCheckResponse(status=s) for name, s in self._statuses.items()}
        return health_pb2.HealthListResponse(statuses=statuses)
