"""The app registry: which instances are alive and where (core.foundations.access.contracts.Resolver)."""

from __future__ import annotations

from core.foundations.rpc.server import Service
from gateway.registry.servicer import RegistryServicer
from gateway.registry.shared import SharedRegistry
from gateway.registry.state import Entry, RegistryState
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
