"""Create, run and gracefully stop a grpc.aio server with health, reflection, auth and metrics."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from prometheus_client import start_http_server

from core.rpc.edge import BearerAuth, Registrar

__all__ = ["Served", "ServerOptions", "Service", "create_server", "serve_until_stopped"]

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
    metrics_port: int | None = None
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    async def set_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def stop(self, options: ServerOptions) -> None:
        """Graceful: NOT_SERVING, let streams end, then stop with a grace period."""
        await self.set_serving(False)
        for hook in self.on_stop:
            await hook()
        await asyncio.sleep(options.drain_delay_s)
        await self.server.stop(options.grace_s)


def _auth(options: ServerOptions) -> BearerAuth | None:
    if options.token is None:
        log.warning(
            "AUTH IS OFF for %s: no token configured (set TRADEMESH_TOKEN); anyone who can reach "
            "this port can call every RPC",
            options.service_label,
        )
        return None
    return BearerAuth(options.token)


async def create_server(services: Sequence[Service], options: ServerOptions) -> Served:
    """Build and start the server; options.port 0 binds a free port (returned in Served.port)."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", _MESSAGE_LIMIT_BYTES),
            ("grpc.max_receive_message_length", _MESSAGE_LIMIT_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )
    registrar = Registrar(server, _auth(options))
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
    served = Served(server, port, health_servicer, names, metrics_port)
    await served.set_serving(True)
    return served


async def serve_until_stopped(served: Served, options: ServerOptions) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("%s: stopping (signal received)", options.service_label)
    await served.stop(options)
    log.info("%s: stopped", options.service_label)
