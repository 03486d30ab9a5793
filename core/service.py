"""Run a mesh service (ingest, recorder, bars, bridge, ...) as a process.

Every service serves gRPC health and reflection (plus its own services, if any) and
Prometheus metrics, prints the machine-readable serving line once it is ready (see
core.process), runs its work until SIGTERM/SIGINT, then stops gracefully. Health says
SERVING only while the work runs; a work task that fails ends the process with exit 1, so a
supervisor restarts it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

from core.rpc.registration import KIND_CORE, GatewayRegistration, start_registration
from core.rpc.server import ServerOptions, Service, create_server

__all__ = ["Ready", "Work", "run_service"]

log = logging.getLogger(__name__)

# The service's work: runs until `stop` is set; awaits `ready()` once it is up (connected).
Ready = Callable[[], Awaitable[None]]
Work = Callable[[asyncio.Event, Ready], Coroutine[Any, Any, None]]


async def run_service(
    name: str, options: ServerOptions, work: Work, services: Sequence[Service] = ()
) -> None:
    served = await create_server(services, options)
    await served.set_serving(False)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    announced = False
    # Holds the gateway registration once ready() made it (a list: ready() is a closure).
    registrations: list[GatewayRegistration] = []

    async def ready() -> None:
        nonlocal announced
        if not announced:
            announced = True
            await served.set_serving(True)
            _announce(name, options.host, served.port, served.metrics_port)
            # With TRADEMESH_GATEWAY set: found by the gateway from now on (in the background).
            registration = start_registration(
                name, KIND_CORE, options.host, served.port, served.service_names
            )
            if registration is not None:
                registrations.append(registration)

    task = asyncio.create_task(work(stop, ready), name=name)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    for registration in registrations:
        # First: the gateway stops routing here before the service stops answering.
        await registration.stop()
    failed = task.done() and not task.cancelled() and task.exception() is not None
    if failed:
        log.error("%s: stopped by an error: %s", name, task.exception(), exc_info=task.exception())
    else:
        log.info("%s: stopping", name)
        stop.set()
        try:
            await asyncio.wait_for(task, options.grace_s)
        except TimeoutError:
            log.warning("%s: work did not stop within %.1f s; cancelled", name, options.grace_s)
    stopper.cancel()
    await served.stop(options)
    if failed:
        raise SystemExit(1)


def _announce(name: str, host: str, port: int, metrics_port: int | None) -> None:
    line = {"event": "serving", "service": name, "host": host, "port": port}
    line["metrics_port"] = metrics_port if metrics_port is not None else 0
    print(json.dumps(line), flush=True)
    log.info("%s serving gRPC on %s:%d, metrics on port %s", name, host, port, metrics_port)
    sys.stdout.flush()
