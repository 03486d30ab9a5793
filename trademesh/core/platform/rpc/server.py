"""Create, run and gracefully stop a grpc.aio server with health, reflection, auth and metrics."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from prometheus_client import start_http_server

from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.rpc import metrics
from trademesh.core.platform.rpc.auth import BearerAuth, Privileged, check_distinct
from trademesh.core.platform.rpc.edge import Gate, Registrar
from trademesh.core.platform.rpc.health import HealthServicer

__all__ = [
    "LIVENESS_SERVICE",
    "MAX_REQUEST_BYTES",
    "READINESS_SERVICE",
    "Served",
    "ServerOptions",
    "Service",
    "create_server",
]

log = logging.getLogger(__name__)

# Hot streams send large batches; the default 4 MiB is tight for a full book snapshot batch.
_SEND_LIMIT_BYTES = 64 * 1024 * 1024
# The largest request a service takes by default: far above any legitimate one (a Subscribe
# or AddSubscriptions naming thousands of symbols is a few hundred KiB), far below what
# would let a handful of calls take the process's memory (grpc buffers a whole message).
MAX_REQUEST_BYTES = 1024 * 1024
# The health service name a liveness probe asks: SERVING once the process is up, as a leader or
# a standby (trademesh.core.platform.replicas.leader), while "" (readiness) says whether it serves its API.
LIVENESS_SERVICE = "trademesh.liveness"
# The health service name a readiness probe asks: SERVING while the process is of use where it
# stands, a leader serving its API or a standby able to take over (trademesh.core.platform.service.lifecycle);
# NOT_SERVING while it starts and once it stops. "" stays "this one serves the API": a standby's
# is NOT_SERVING, and a readiness probe on "" never passed for one (issue 56).
READINESS_SERVICE = "trademesh.readiness"


@dataclass(frozen=True)
class Service:
    """One gRPC service to serve: its full name, the servicer and the generated add function."""

    name: str
    servicer: Any
    # Called with a Registrar standing in for the server (see trademesh.core.platform.rpc.edge).
    add_to_server: Callable[[Any, Any], None]


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = 0
    # Prometheus exporter port; None for no exporter.
    metrics_port: int | None = None
    # Bearer token (the mesh token); None turns auth off (logged loudly).
    token: str | None = field(default=None, repr=False)
    # Methods that take only a stronger credential (a venue's order RPCs;
    # trademesh.core.platform.rpc.auth), and that credential: None refuses them while `token` is
    # set, and leaves them open when it is not.
    privileged: Privileged | None = None
    privileged_token: str | None = field(default=None, repr=False)
    # After SIGTERM: how long health says NOT_SERVING before the server stops taking calls.
    drain_delay_s: float = 0.5
    # Then: how long in-flight calls get to finish.
    grace_s: float = 5.0
    # A request over this is refused (RESOURCE_EXHAUSTED) before it is decoded.
    max_request_bytes: int = MAX_REQUEST_BYTES
    service_label: str = "service"

    def __post_init__(self) -> None:
        check_distinct(self.token, self.privileged, self.privileged_token)


@dataclass
class Served:
    """A started server and what it takes to stop it."""

    server: grpc.aio.Server
    port: int
    health: HealthServicer
    service_names: list[str]
    gate: Gate
    options: ServerOptions
    metrics_port: int | None = None
    # Set once the process stops (`leave`): its readiness stays NOT_SERVING from then on.
    leaving: bool = False

    async def open(self) -> None:
        """Take calls: the gate opens, health says SERVING (and a server without auth says so)."""
        _warn_if_open(self.options)
        self.gate.open = True
        await self.set_alive(True)
        await self.set_ready(True)
        await self.set_serving(True)

    async def set_ready(self, ready: bool) -> None:
        """The readiness answer (READINESS_SERVICE); never SERVING again once leaving."""
        await self.health.set(READINESS_SERVICE, _status(ready and not self.leaving))

    async def leave(self) -> None:
        """The process stops: readiness NOT_SERVING for good (a standby's too, which has no API
        to drain), so a load balancer or a rollout counts it out at once."""
        self.leaving = True
        await self.set_ready(False)

    async def set_alive(self, alive: bool) -> None:
        """The liveness answer (LIVENESS_SERVICE): the process is up, whether or not it serves."""
        await self.health.set(LIVENESS_SERVICE, _status(alive))

    async def set_serving(self, serving: bool) -> None:
        status = _status(serving)
        for name in ["", *self.service_names]:
            await self.health.set(name, status)

    async def stop(self, options: ServerOptions) -> None:
        """NOT_SERVING, then stop: in-flight calls get the grace period (the service shape drains
        first)."""
        await self.leave()
        await self.set_serving(False)
        await self.set_alive(False)
        await self.server.stop(options.grace_s)


def _status(serving: bool) -> int:
    status: int = (
        health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    return status


def _bind(server: grpc.aio.Server, options: ServerOptions) -> int:
    """The bound port; Unavailable naming host and port when it cannot be had (in use, no such
    host), so the process ends with one line, not a traceback."""
    address = f"{options.host}:{options.port}"
    _check_bindable(options.host, options.port)
    try:
        port = server.add_insecure_port(address)
    except RuntimeError:
        port = 0
    if port == 0:
        raise Unavailable(f"cannot listen on {address}: the port is in use or the host is not this machine's")
    return port


def _check_bindable(host: str, port: int) -> None:
    """Unavailable with the system's reason (no such host, port in use) before grpc tries and
    logs its own lines."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (socket.gaierror, UnicodeError) as exc:
        raise Unavailable(f"cannot listen on {host}:{port}: {getattr(exc, 'strerror', exc)}") from None
    if port == 0:
        return
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise Unavailable(f"cannot listen on {host}:{port}: {exc.strerror}") from None


def _start_metrics(options: ServerOptions) -> int | None:
    if options.metrics_port is None:
        return None
    try:
        http_server, _ = start_http_server(options.metrics_port, addr=options.host)
    except (OSError, OverflowError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise Unavailable(
            f"cannot serve metrics on {options.host}:{options.metrics_port}: {reason}"
        ) from None
    port: int = http_server.server_port
    return port


def _warn_if_open(options: ServerOptions) -> None:
    privileged = options.privileged
    if options.token is None:
        guarded = ""
        if privileged is not None and options.privileged_token is not None:
            guarded = f" but {_names(privileged)} (they need {privileged.variable})"
        log.warning(
            "AUTH IS OFF for %s: no token configured (set TRADEMESH_TOKEN); anyone who can reach "
            "this port can call every RPC%s",
            options.service_label,
            guarded,
        )
    elif privileged is not None and options.privileged_token is None:
        log.warning(
            "%s has no %s (set %s): it refuses %s to every caller",
            options.service_label,
            privileged.credential,
            privileged.variable,
            _names(privileged),
        )


def _names(privileged: Privileged) -> str:
    return ", ".join(sorted(method.rsplit("/", 1)[-1] for method in privileged.methods))


async def create_server(
    services: Sequence[Service], options: ServerOptions, starting: bool = False
) -> Served:
    """Build and start the server; options.port 0 binds a free port (returned in Served.port).

    `starting`: health NOT_SERVING and the services' own RPCs UNAVAILABLE until the caller opens
    `Served.gate` (trademesh.core.platform.service.lifecycle does, once the service is ready).
    """
    # First: a bad pair of tokens (the same for both) ends the start before anything is bound.
    auth = BearerAuth(options.token, options.privileged, options.privileged_token, options.service_label)
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", _SEND_LIMIT_BYTES),
            ("grpc.max_receive_message_length", options.max_request_bytes),
            ("grpc.so_reuseport", 0),
            # Callers keep quiet streams alive with pings (the gateway every 30 s): allow them
            # without data, or grpc answers GOAWAY "too_many_pings" and the stream dies.
            ("grpc.http2.min_ping_interval_without_data_ms", 20_000),
            ("grpc.keepalive_permit_without_calls", 1),
        ],
    )
    gate = Gate(options.service_label, open=not starting)
    registrar = Registrar(server, None if auth.is_off else auth, gate)
    for service in services:
        service.add_to_server(service.servicer, registrar)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, registrar)
    names = [s.name for s in services]
    reflected = [*names, health.SERVICE_NAME, reflection.SERVICE_NAME]
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
        reflection.aio.ReflectionServicer(reflected), registrar
    )
    port = _bind(server, options)
    await server.start()
    metrics.count_loop_tasks(asyncio.get_running_loop())
    try:
        metrics_port = _start_metrics(options)
    except Unavailable:
        await server.stop(None)
        raise
    served = Served(server, port, health_servicer, names, gate, options, metrics_port)
    if not starting:
        await served.open()
    else:
        await served.set_serving(False)
        await served.set_ready(False)
        await served.set_alive(False)
    return served
