"""The app registry: which instances are alive and where
(trademesh.core.platform.access.contracts.Resolver)."""

from __future__ import annotations

from trademesh.core.platform.rpc.server import Service
from trademesh.gateway.registry.servicer import RegistryServicer
from trademesh.gateway.registry.shared import SharedRegistry
from trademesh.gateway.registry.state import Entry, RegistryState
from trademesh.registry.v1 import registry_pb2_grpc as pb_grpc

__all__ = [
    "REGISTRY_SERVICE",
    "Entry",
    "RegistryServicer",
    "RegistryState",
    "SharedRegistry",
    "registry_service",
]

REGISTRY_SERVICE = "trademesh.registry.v1.Registry"


def registry_service(
    state: RegistryState, heartbeat_interval_s: float, shared: SharedRegistry | None = None
) -> Service:
    return Service(
        REGISTRY_SERVICE,
        RegistryServicer(state, heartbeat_interval_s, shared),
        pb_grpc.add_RegistryServicer_to_server,
    )
