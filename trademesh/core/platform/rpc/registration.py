"""Register a serving process with the gateway's app registry, keep it alive, leave on shutdown.

When TRADEMESH_GATEWAY names the gateway's gRPC address, a service registers once it serves
(name, kind, the address others reach it at, the gRPC services it serves, the port of its
Prometheus exporter on that address's host), then heartbeats at the interval the gateway
asked for. A heartbeat answered NOT_FOUND (the gateway restarted or let the entry expire)
registers again; an unreachable gateway is retried with backoff. None of it ever blocks or
fails the service: it runs in a task of its own, and the service serves on whether or not
the gateway knows it.

A registration needs the mesh token: a service given TRADEMESH_GATEWAY without TRADEMESH_TOKEN
does not start (check_gateway_token: the gateway would refuse it forever, and it would serve with
auth off). A registration the gateway refuses (a wrong token, a name or address it does not
take) is an error logged at every attempt, naming the cause, tried again with backoff up to
_REFUSED_MAX_S, and counted (trademesh_registration_refusals_total{code}); while the service is
not registered trademesh_registration_registered is 0.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata

import grpc
from prometheus_client import Counter, Gauge

from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.core.platform.config.env import ADVERTISE_HOST, GATEWAY, TOKEN
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.rpc.client import auth_metadata
from trademesh.core.platform.rpc.status import call_failure
from trademesh.core.platform.service.registry import Kind
from trademesh.registry.v1 import registry_pb2 as pb
from trademesh.registry.v1 import registry_pb2_grpc as pb_grpc

__all__ = [
    "HEALTH_SERVICE",
    "GatewayRegistration",
    "Registration",
    "advertised_address",
    "check_gateway_token",
    "package_version",
    "start_registration",
]

log = logging.getLogger(__name__)

# The registry's kind of each kind of service (trademesh.core.platform.service.registry.Kind).
_KINDS = {Kind.VENUE: pb.KIND_VENUE, Kind.CORE: pb.KIND_CORE, Kind.GATEWAY: pb.KIND_GATEWAY}
# Every trademesh server serves health; listing it lets the gateway route health checks.
HEALTH_SERVICE = "grpc.health.v1.Health"

_CALL_TIMEOUT_S = 3.0
_UNREGISTER_TIMEOUT_S = 1.0
_WILDCARD_HOSTS = frozenset({"", "0.0.0.0", "::", "[::]"})
# Until the gateway says otherwise (its Register answer carries the interval).
_DEFAULT_INTERVAL_S = 5.0
_MIN_INTERVAL_S = 0.1
# A refused registration is tried again (the operator may fix the gateway's side: a key, a
# configured name) at most this far apart, an error line each time.
_REFUSED_MAX_S = 30.0

# Answers to a registration that trying again as it is will not change: each one an error.
_REFUSALS = {
    grpc.StatusCode.UNAUTHENTICATED: f"{TOKEN} is not the mesh token the gateway holds",
    grpc.StatusCode.PERMISSION_DENIED: "the credential may not register (registering takes the mesh token)",
    grpc.StatusCode.INVALID_ARGUMENT: f"the gateway does not take the registration as sent "
    f"(its name, or its address: {ADVERTISE_HOST}, --host)",
    grpc.StatusCode.ALREADY_EXISTS: "the name is configured at the gateway itself (--upstream)",
    grpc.StatusCode.FAILED_PRECONDITION: "the gateway does not take the registration now",
}

REGISTERED = Gauge(
    "trademesh_registration_registered",
    "1 while the gateway answered this process's last registration or heartbeat "
    "(TRADEMESH_GATEWAY); 0 while it is not registered (refused, the gateway away, or no gateway).",
)
REFUSALS = Counter(
    "trademesh_registration_refusals_total",
    "Registrations and heartbeats the gateway refused, by status code (UNAUTHENTICATED: "
    "TRADEMESH_TOKEN is not the gateway's mesh token).",
    ["code"],
)


@dataclass(frozen=True)
class Registration:
    name: str
    kind: pb.Kind.ValueType
    address: str
    services: tuple[str, ...]
    # Its Prometheus exporter's port on the host of `address`; 0 when it exports none.
    metrics_port: int = 0
    # The trademesh release it runs (package_version()).
    version: str = ""
    # A paper venue (registry.v1.Instance.paper).
    paper: bool = False

    def request(self) -> pb.RegisterRequest:
        return pb.RegisterRequest(
            name=self.name,
            kind=self.kind,
            address=self.address,
            services=list(self.services),
            metrics_port=self.metrics_port,
            version=self.version,
            paper=self.paper,
        )


def package_version() -> str:
    """The installed trademesh package's version ("" when it runs from a tree not installed)."""
    try:
        return metadata.version("trademesh")
    except metadata.PackageNotFoundError:
        return ""


def advertised_address(bind_host: str, port: int) -> str:
    """host:port other services dial: TRADEMESH_ADVERTISE_HOST, else the bind host unless a wildcard."""
    host = os.environ.get(ADVERTISE_HOST, "").strip()
    if not host:
        host = socket.gethostname() if bind_host in _WILDCARD_HOSTS else bind_host
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


class GatewayRegistration:
    """The registration of one process; start() once it serves, stop() when it stops."""

    def __init__(self, gateway: str, registration: Registration) -> None:
        self.gateway = gateway
        self.registration = registration
        self.instance_id: str | None = None
        self._channel = grpc.aio.insecure_channel(gateway)
        self._stub = pb_grpc.RegistryStub(self._channel)
        self._metadata = auth_metadata()
        self._task: asyncio.Task[None] | None = None
        self._failing = False

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"registration {self.registration.name}")

    async def stop(self) -> None:
        """Stops heartbeating and unregisters (briefly: a gone gateway must not delay shutdown)."""
        if self._task is not None:
            await cancel_and_wait(self._task)
            self._task = None
        if self.instance_id is not None:
            request = pb.UnregisterRequest(instance_id=self.instance_id)
            try:
                await self._stub.Unregister(request, timeout=_UNREGISTER_TIMEOUT_S, metadata=self._metadata)
                log.info("unregistered %s from the gateway at %s", self.registration.name, self.gateway)
            except grpc.aio.AioRpcError as exc:
                log.info("could not unregister from the gateway at %s: %s", self.gateway, exc.code().name)
            self.instance_id = None
        REGISTERED.set(0)
        await self._channel.close()

    async def _run(self) -> None:
        backoff = Backoff(0.5, 10.0)
        refused = Backoff(1.0, _REFUSED_MAX_S)
        interval_s = _DEFAULT_INTERVAL_S
        while True:
            try:
                interval_s = await self._register_or_heartbeat(interval_s)
            except grpc.aio.AioRpcError as exc:
                REGISTERED.set(0)
                if exc.code() == grpc.StatusCode.NOT_FOUND and self.instance_id is not None:
                    log.info(
                        "the gateway at %s does not know us (restarted?): registering again", self.gateway
                    )
                    self.instance_id = None
                    continue
                if exc.code() in _REFUSALS:
                    await asyncio.sleep(self._refused(exc, refused.next()))
                    continue
                self._report(call_failure(exc))
                await asyncio.sleep(min(backoff.next(), interval_s))
                continue
            except Exception as exc:  # a bug here must not take the service down
                REGISTERED.set(0)
                log.exception("registration with the gateway at %s failed", self.gateway)
                self._report(str(exc))
                await asyncio.sleep(backoff.next())
                continue
            REGISTERED.set(1)
            backoff.reset()
            refused.reset()
            self._failing = False
            await asyncio.sleep(interval_s)

    def _refused(self, exc: grpc.aio.AioRpcError, delay_s: float) -> float:
        """An error line naming the gateway's reason, at every attempt (a service that cannot
        join the mesh must say so until it can); the delay before the next."""
        REFUSALS.labels(exc.code().name).inc()
        log.error(
            "the gateway at %s refused to register %s: %s (%s); not in the mesh, trying again in %.1f s",
            self.gateway,
            self.registration.name,
            call_failure(exc),
            _REFUSALS[exc.code()],
            delay_s,
        )
        return delay_s

    async def _register_or_heartbeat(self, interval_s: float) -> float:
        if self.instance_id is not None:
            heartbeat = pb.HeartbeatRequest(instance_id=self.instance_id)
            await self._stub.Heartbeat(heartbeat, timeout=_CALL_TIMEOUT_S, metadata=self._metadata)
            return interval_s
        reply = await self._stub.Register(
            self.registration.request(), timeout=_CALL_TIMEOUT_S, metadata=self._metadata
        )
        self.instance_id = reply.instance.instance_id
        log.info(
            "registered %s (%s) with the gateway at %s",
            self.registration.name,
            self.registration.address,
            self.gateway,
        )
        return max(_MIN_INTERVAL_S, reply.heartbeat_interval_ms / 1000)

    def _report(self, reason: str) -> None:
        # Once per outage: a gateway down for an hour must not write a line per retry.
        if not self._failing:
            self._failing = True
            log.warning("gateway at %s: %s; retrying in the background", self.gateway, reason)


def check_gateway_token(token: str | None) -> None:
    """A service told to register (TRADEMESH_GATEWAY) must hold the mesh token: without it the
    gateway refuses every registration and the service would serve with auth off, out of the
    mesh and open. InvalidArgument naming the missing variable (the CLI: one line, exit 2)."""
    gateway = os.environ.get(GATEWAY, "").strip()
    if gateway and token is None:
        raise InvalidArgument.field(
            TOKEN,
            f"not set, and {GATEWAY} is ({gateway}): the gateway refuses a registration without "
            "the mesh token, and this service would serve with auth off; set it to the mesh's "
            'token (docs/scaling.md, "Runbook: a venue started by hand")',
        )


def start_registration(
    name: str,
    kind: Kind,
    bind_host: str,
    port: int,
    services: Sequence[str],
    metrics_port: int | None = None,
    *,
    paper: bool = False,
) -> GatewayRegistration | None:
    """Registers in the background when TRADEMESH_GATEWAY is set; None (no registration) otherwise."""
    gateway = os.environ.get(GATEWAY, "").strip()
    if not gateway:
        return None
    names = tuple(dict.fromkeys([*services, HEALTH_SERVICE]))
    address = advertised_address(bind_host, port)
    registration = GatewayRegistration(
        gateway,
        Registration(name, _KINDS[kind], address, names, metrics_port or 0, package_version(), paper),
    )
    registration.start()
    return registration
