"""Run one venue as a process: runtime + gRPC server + graceful shutdown."""

from __future__ import annotations

import json
import logging
import sys

from core.rpc.registration import KIND_VENUE, start_registration
from core.rpc.server import ServerOptions, create_server, serve_until_stopped
from venues.runtime.runtime import RuntimeOptions, VenueRuntime
from venues.runtime.services import venue_services
from venues.runtime.venue import Venue

__all__ = ["serve_venue"]

log = logging.getLogger(__name__)


async def serve_venue(
    venue: Venue, options: ServerOptions, runtime_options: RuntimeOptions | None = None
) -> None:
    """Serve until SIGTERM/SIGINT. Prints one JSON line on stdout once it is serving."""
    runtime = VenueRuntime(venue, runtime_options)
    await runtime.start()
    served = await create_server(venue_services(runtime), options)

    async def not_serving() -> None:
        await served.set_serving(False)

    async def end_streams() -> None:
        runtime.end_streams()

    runtime.on_drain = not_serving
    served.on_stop.append(end_streams)
    _announce(venue.name, options.host, served.port, served.metrics_port)
    # With TRADEMESH_GATEWAY set: found by the gateway; unregistered first thing on SIGTERM.
    registration = start_registration(venue.name, KIND_VENUE, options.host, served.port, served.service_names)
    if registration is not None:
        served.on_stop.insert(0, registration.stop)
    try:
        await serve_until_stopped(served, options)
    finally:
        await runtime.stop()


def _announce(name: str, host: str, port: int, metrics_port: int | None) -> None:
    # Machine-readable, so supervisors and tests can use --port 0.
    line = {"event": "serving", "service": f"venue/{name}", "host": host, "port": port}
    line["metrics_port"] = metrics_port if metrics_port is not None else 0
    print(json.dumps(line), flush=True)
    log.info("venue %s serving gRPC on %s:%d, metrics on port %s", name, host, port, metrics_port)
    sys.stdout.flush()
