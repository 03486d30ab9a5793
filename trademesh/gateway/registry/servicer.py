"""trademesh.registry.v1.Registry over the registry's state (served on the gateway's gRPC port)."""

from __future__ import annotations

from trademesh.core.platform.rpc.context import Context
from trademesh.gateway.registry.shared import SharedRegistry
from trademesh.gateway.registry.state import RegistryState
from trademesh.gateway.registry.validate import check_instance_id, check_register
from trademesh.registry.v1 import registry_pb2 as pb
from trademesh.registry.v1 import registry_pb2_grpc as pb_grpc

__all__ = ["RegistryServicer"]


class RegistryServicer(pb_grpc.RegistryServicer):
    def __init__(
        self, state: RegistryState, heartbeat_interval_s: float, shared: SharedRegistry | None = None
    ) -> None:
        self._state = state
        self._interval_ms = round(heartbeat_interval_s * 1000)
        # With a bus: every change written through for the gateway's other replicas.
        self._shared = shared

    async def Register(
        self, request: pb.RegisterRequest, context: Context[pb.RegisterRequest, pb.RegisterResponse]
    ) -> pb.RegisterResponse:
        check_register(request)
        services = list(dict.fromkeys(request.services))
        replaced = self._state.occupants(request.name, request.address)
        entry = self._state.register(
            request.name,
            request.kind,
            request.address,
            services,
            request.metrics_port,
            request.version,
            paper=request.paper,
        )
        if self._shared is not None:
            await self._shared.wrote(entry, replaced)
        return pb.RegisterResponse(
            instance=entry.to_proto(),
            heartbeat_interval_ms=self._interval_ms,
            ttl_ms=round(self._state.ttl_s * 1000),
        )

    async def Heartbeat(
        self, request: pb.HeartbeatRequest, context: Context[pb.HeartbeatRequest, pb.HeartbeatResponse]
    ) -> pb.HeartbeatResponse:
        check_instance_id(request.instance_id)
        entry = self._state.heartbeat(request.instance_id)
        if self._shared is not None:
            await self._shared.wrote(entry)
        return pb.HeartbeatResponse(instance=entry.to_proto())

    async def Unregister(
        self, request: pb.UnregisterRequest, context: Context[pb.UnregisterRequest, pb.UnregisterResponse]
    ) -> pb.UnregisterResponse:
        check_instance_id(request.instance_id)
        self._state.unregister(request.instance_id)
        if self._shared is not None:
            await self._shared.removed(request.instance_id)
        return pb.UnregisterResponse()

    async def ListServices(
        self,
        request: pb.ListServicesRequest,
        context: Context[pb.ListServicesRequest, pb.ListServicesResponse],
    ) -> pb.ListServicesResponse:
        entries = self._state.instances(request.kind, request.service)
        return pb.ListServicesResponse(instances=[entry.to_proto() for entry in entries])
