"""Create, run and gracefully stop a grpc.aio server with health, reflection, auth and metrics."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from prometheus_client import start_http_server

from core.rpc.edge import BearerAuth, Gate, Registrar

__all__ = ["Served", "ServerOptions", "Service", "create_server"]

log = logging.getLogger(__name__)

# Hot streams send large batches; the default 4 MiB is tight for a full book snapshot batch.
_MESSAGE_LIMIT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Service:
    """One gRPC service to serve: its full name, the servicer and the generated add function."""

    name: str
    servicer: Any
    # Called with a Registrar standing in for the server (see core.rpc.edge).
    add_to_server: Callable[[Any, Any], None]


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 0
    # Prometheus exporter port; None for no exporter.
    metrics_port: int | None = None
    # Bearer token; None turns auth off (logged loudly).
    token: str | None = None
    # After SIGTERM: how long health says NOT_SERVING before the server stops taking calls.
    drain_delay_s: float = 0.5
    # Then: how long in-flight calls get to finish.
    grace_s: float = 5.0
    service_label: str = "service"


@dataclass
class Served:
    """A started server and what it takes to stop it."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    service_names: list[str]
    gate: Gate
    options: ServerOptions
    metrics_port: int | None = None

    async def open(self) -> None:
        """Take calls: the gate opens, health says SERVING (and a server without auth says so)."""
        _warn_if_open(self.options)
        self.gate.open = True
        await self.set_serving(True)

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def stop(self, options: ServerOptions) -> None:
        """NOT_SERVING, then stop: in-flight calls get the grace period (core.service drains first)."""
        await self.set_serving(False)
        await self.server.stop(options.grace_s)


def _warn_if_open(options: ServerOptions) -> None:
    if options.token is None:
        log.warning(
            "AUTH IS OFF for %s: no token configured (set TRADEMESH_TOKEN); anyone who can reach "
            "this port can call every RPC",
            options.service_label,
        )


async def create_server(
    services: Sequence[Service], options: ServerOptions, starting: bool = False
) -> Served:
    """Build and start the server; options.port 0 binds a free port (returned in Served.port).

    `starting`: health NOT_SERVING and the services' own RPCs UNAVAILABLE until the caller opens
    `Served.gate` (core.service does, once the service is ready).
    """
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", _MESSAGE_LIMIT_BYTES),
            ("grpc.max_receive_message_length", _MESSAGE_LIMIT_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    gate = Gate(options.service_label, open=not starting)
    auth = None if options.token is None else BearerAuth(options.token)
    registrar = Registrar(server, auth, gate)
    for service in services:
        service.add_to_server(service.servicer, registrar)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registrar)
    names = [s.name for s in services]
    reflected = [*names, health.SERVICE_NAME, reflection.SERVICE_NAME]
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        reflection.aio.ReflectionServicer(reflected), registrar
    )
    port = server.add_insecure_port(f"{options.host}:{options.port}")
    if port == 0:
        raise OSError(f"cannot bind {options.host}:{options.port}")
    await server.start()
    metrics_port = None
    if options.metrics_port is not None:
        http_server, _ = start_http_server(options.metrics_port, addr=options.host)
        metrics_port = http_server.server_port
    served = Served(server, port, health_servicer, names, gate, options, metrics_port)
    if not starting:
        await served.open()
    else:
        await served.set_serving(False)
    return served
