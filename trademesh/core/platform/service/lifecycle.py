"""The one lifecycle of every trademesh process: venues, mesh services and the gateway.

A service is a ServiceApp: its instance name, the gRPC services it serves and its work.
run_service serves them (with health, reflection, auth and metrics: trademesh.core.platform.rpc.server) and
runs the work:
- Until the work calls `ctx.ready()`, health says NOT_SERVING and the app's own RPCs answer
  UNAVAILABLE ("starting"), so no call meets a half-built service.
- `ctx.ready()`: health SERVING, one machine-readable serving line on stdout
  (trademesh.core.platform.service.process reads it, so tests and supervisors can use
  port 0), and, with TRADEMESH_GATEWAY set, registration with the gateway under the
  service's kind (trademesh.core.platform.service.registry).
- SIGTERM/SIGINT: unregister first (the gateway stops routing here), health NOT_SERVING, the
  app's `on_stopping` hooks (e.g. end open streams), a drain delay for load balancers, then
  `ctx.stop` is set and the work gets grace_s to return, then the server stops with grace_s.
- A work that fails ends the process: our own errors (TrademeshError: an unreachable
  database, a bad config) propagate, so the CLI prints them as one line (exit 2); anything
  else is logged with its traceback (exit 1). Either way a supervisor restarts it.
- `ctx.standby(reason)` (a single writer waiting for its leader lease,
  trademesh.core.platform.replicas.leader): alive, not serving its API (health ""
  NOT_SERVING, its RPCs UNAVAILABLE with the reason), a standby line on stdout; ready as a
  standby (READINESS_SERVICE SERVING) while it is able to take over.
- Three health answers: LIVENESS_SERVICE (the process is up), READINESS_SERVICE (of use where it
  stands: serving, or a standby able to take over; NOT_SERVING while starting and once stopping)
  and "" (it serves its API): trademesh.core.platform.rpc.server.
- SIGUSR1: every asyncio task's stack to the log (trademesh.core.platform.service.tasks):
  where a stuck service waits.
- On Kubernetes, with a service account token mounted (the leader/standby services): the pod's
  deletion cost says leader (`ready()`) or standby (`standby()`), so a rollout replaces the
  standby first (trademesh.core.platform.replicas.pod_cost).
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, Protocol, TypeVar

from trademesh.core.platform.errors import TrademeshError
from trademesh.core.platform.replicas.pod_cost import LEADER_COST, STANDBY_COST, PodCost
from trademesh.core.platform.rpc.registration import GatewayRegistration, start_registration
from trademesh.core.platform.rpc.server import Served, ServerOptions, Service, create_server
from trademesh.core.platform.service.registry import Kind, ServiceEntry
from trademesh.core.platform.service.tasks import tasks_text

__all__ = ["ServiceApp", "ServiceContext", "WorkerApp", "label_of", "run_service"]

log = logging.getLogger(__name__)

Hook = Callable[[], Awaitable[None]]
C = TypeVar("C")


class ServiceApp(Protocol):
    """What a service package gives this lifecycle (built by its command.ServiceCommand)."""

    @property
    def name(self) -> str:
        """The instance name: registration, serving line, logs ("ingest", a venue's "sim")."""
        ...

    def grpc_services(self) -> Sequence[Service]:
        """The gRPC services it serves besides health and reflection (may be none)."""
        ...

    async def run(self, ctx: ServiceContext) -> None:
        """The work: connect, `await ctx.ready()`, serve until `ctx.stop` is set, clean up."""
        ...


class WorkerApp(Generic[C]):
    """A ServiceApp that serves no gRPC service of its own (health and reflection only): a worker
    on the bus or a database, made of its config; a subclass sets `name` and writes `run`."""

    name: str

    def __init__(self, config: C) -> None:
        self.config = config

    def grpc_services(self) -> Sequence[Service]:
        return ()


class ServiceContext:
    """What the lifecycle gives a running app."""

    def __init__(self, label: str, entry: ServiceEntry, served: Served, options: ServerOptions) -> None:
        self.label = label
        self.entry = entry
        self.options = options
        self.stop = asyncio.Event()
        self.registration: GatewayRegistration | None = None
        self._served = served
        self._stopping: list[Hook] = []
        self._ready = False
        self._standing_by = False
        self.pod_cost = PodCost.from_env()  # None outside Kubernetes (or without a token)

    @property
    def port(self) -> int:
        """The gRPC port the server is bound to (options.port 0 picks one)."""
        return self._served.port

    @property
    def metrics_port(self) -> int | None:
        return self._served.metrics_port

    @property
    def is_ready(self) -> bool:
        return self._ready

    async def ready(self, *, paper: bool = False, **announce: Any) -> None:
        """Up: SERVING, the serving line (extra fields from `announce`), the gateway registration.
        `paper`: a paper venue, said on the serving line and in its registration."""
        if paper:
            announce["paper"] = True
        if self._ready:
            return
        self._ready = True
        self._served.gate.reason = None
        await self._served.open()
        if self.pod_cost is not None:
            self.pod_cost.want(LEADER_COST)
        _announce(self.label, self.options.host, self._served.port, self._served.metrics_port, announce)
        if self.entry.kind is not Kind.GATEWAY:  # the gateway is the registry
            served = self._served
            self.registration = start_registration(
                self.name,
                self.entry.kind,
                self.options.host,
                served.port,
                served.service_names,
                served.metrics_port,
                paper=paper,
            )

    async def standby(self, reason: str, *, able: bool = True, **announce: Any) -> None:
        """A standby (trademesh.core.platform.replicas.leader): alive (the liveness health answer SERVING),
        not serving its API: health "" NOT_SERVING, not registered with the gateway, its own
        RPCs UNAVAILABLE with `reason`. Ready as a standby (READINESS_SERVICE) while `able` to
        take over: a Kubernetes rollout waits on that, and a standby that never passed its
        readiness blocked every rollout. The first call prints a standby line on stdout (as the
        serving line, with "event": "standby"); `ready()` later makes it serve."""
        self._served.gate.reason = reason
        if self._ready:
            return
        await self._served.set_ready(able)
        if self._standing_by:
            return
        self._standing_by = True
        if self.pod_cost is not None:
            self.pod_cost.want(STANDBY_COST)
        await self._served.set_alive(True)
        served = self._served
        _announce(self.label, self.options.host, served.port, served.metrics_port, announce, "standby")

    @property
    def name(self) -> str:
        """The instance name ("ingest", "sim"): what it registers under."""
        return self.label.rpartition("/")[2]

    async def set_serving(self, serving: bool) -> None:
        """Health SERVING or NOT_SERVING (e.g. a venue told to drain says NOT_SERVING)."""
        await self._served.set_serving(serving)

    def on_stopping(self, hook: Hook) -> None:
        """Run `hook` when the process starts stopping: after NOT_SERVING, before the drain delay."""
        self._stopping.append(hook)

    async def stopping(self) -> None:
        """Run the stopping hooks once (NOT_SERVING first)."""
        await self._served.set_serving(False)
        hooks, self._stopping = self._stopping, []
        for hook in hooks:
            await hook()


def label_of(entry: ServiceEntry, app: ServiceApp) -> str:
    """ "ingest" for a service that is its own instance; "venue/sim" for an instance of a kind."""
    return entry.name if app.name == entry.name else f"{entry.name}/{app.name}"


async def run_service(entry: ServiceEntry, app: ServiceApp, options: ServerOptions) -> None:
    served = await create_server(app.grpc_services(), options, starting=True)
    ctx = ServiceContext(label_of(entry, app), entry, served, options)
    signalled = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, signalled.set)
    loop.add_signal_handler(signal.SIGUSR1, lambda: log.warning("%s: SIGUSR1\n%s", ctx.label, tasks_text()))
    work = asyncio.create_task(app.run(ctx), name=ctx.label)
    waiter = asyncio.create_task(signalled.wait())
    try:
        await asyncio.wait({work, waiter}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
        await _stop(ctx, work, served, options)
    error = work.exception() if work.done() and not work.cancelled() else None
    if isinstance(error, TrademeshError):
        raise error
    if error is not None:
        raise SystemExit(1)


async def _stop(
    ctx: ServiceContext, work: asyncio.Task[None], served: Served, options: ServerOptions
) -> None:
    await served.leave()  # first of all: a rollout or a load balancer counts it out
    if ctx.registration is not None:
        await ctx.registration.stop()  # first: the gateway stops routing here
    failed = work.done() and not work.cancelled() and work.exception() is not None
    if failed:
        _log_failure(ctx, work.exception())
    elif ctx.is_ready:
        log.info("%s: stopping", ctx.label)
        await ctx.stopping()
        await asyncio.sleep(options.drain_delay_s)
    ctx.stop.set()
    if not work.done():
        try:
            await asyncio.wait_for(work, options.grace_s)
        except TimeoutError:
            log.warning("%s: work did not stop within %.1f s; cancelled", ctx.label, options.grace_s)
        except Exception:  # reported below by the caller, from the task
            pass
    await served.stop(options)
    if ctx.pod_cost is not None:
        await ctx.pod_cost.close()
    if ctx.is_ready:
        log.info("%s: stopped", ctx.label)


def _log_failure(ctx: ServiceContext, error: BaseException | None) -> None:
    if not isinstance(error, TrademeshError):
        log.error("%s: stopped by an error: %s", ctx.label, error, exc_info=error)
    elif ctx.is_ready:  # before it was ready, the CLI's one line says it
        log.error("%s: stopped: %s", ctx.label, error)


def _announce(
    label: str, host: str, port: int, metrics_port: int | None, extra: dict[str, Any], event: str = "serving"
) -> None:
    line: dict[str, Any] = {"event": event, "service": label, "host": host, "port": port}
    line["metrics_port"] = metrics_port if metrics_port is not None else 0
    line.update(extra)
    print(json.dumps(line), flush=True)
    log.info("%s %s gRPC on %s:%d, metrics on port %s", label, event, host, port, line["metrics_port"])
    sys.stdout.flush()
