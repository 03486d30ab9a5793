"""`trademesh up`: the whole local mesh as supervised processes.

The gateway first (services register with it as they start), then a sim venue, ingest,
recorder, bars and bridge, each started once the one before is healthy; logs prefixed by
service; a crashed service is restarted; Ctrl-C stops them all in reverse order, then the
embedded Redis and PostgreSQL if it started them. Every so often it prints what the mesh has
done: trades on the bus, recorded, bars closed. The first start makes an API key for Studio
and local agents in <data-dir>/api-key (mode 600); it is never printed.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import signal
import sys
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from core.env import DATABASE_URL, GATEWAY, REDIS_URL, SESSION_SECRET, TOKEN, read_secret
from core.mesh.embedded import Backing, start_backing
from core.mesh.progress import Progress
from core.mesh.supervisor import Child, ChildSpec

__all__ = ["UpOptions", "run_up"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    # Every service on a free port (tests; several meshes on one machine) instead of its own.
    free_ports: bool = False
    sim_config: Path | None = None
    status_every_s: float = 10.0


_PORTS = {"sim": 5070, "ingest": 5100, "recorder": 5101, "bars": 5102, "bridge": 5103}
_GATEWAY_PORTS = (8081, 8082)  # HTTP (gRPC-web, Studio, /mcp, /metrics), native gRPC (registry)
# The API key Studio and local agents log in with; made on first start, kept mode 600.
API_KEY_FILE = "api-key"
API_KEY_NAME = "local"


def _secret(variable: str, data_dir: Path, file_name: str) -> str:
    """The variable's value, else one made for this mesh and kept in <data-dir>/<file> (mode 600)."""
    value = read_secret(variable)
    if value is not None:
        return value
    path = data_dir / file_name
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32)
    path.touch(mode=0o600)
    path.write_text(value + "\n")
    return value


def _ports(name: str, options: UpOptions) -> list[str]:
    if options.free_ports:
        return ["--port", "0", "--metrics-port", "0"]
    return ["--port", str(_PORTS[name])]


def _specs(options: UpOptions, venue: Child | None, env: dict[str, str]) -> list[ChildSpec]:
    def mesh_args(name: str, *extra: str) -> ChildSpec:
        def args() -> list[str]:
            assert venue is not None
            return [name, *_ports(name, options), "--venue", f"sim={venue.address}", *extra]

        return ChildSpec(name, args, env)

    return [mesh_args("ingest"), mesh_args("recorder"), mesh_args("bars"), mesh_args("bridge")]


def _gateway_spec(options: UpOptions, env: dict[str, str], gateway: list[Child]) -> ChildSpec:
    def args() -> list[str]:
        if gateway and gateway[0].info:  # a restart keeps its ports: services know them
            http, grpc = gateway[0].info["port"], gateway[0].info["grpc_port"]
        else:
            http, grpc = (0, 0) if options.free_ports else _GATEWAY_PORTS
        return ["gateway", "--port", str(http), "--grpc-port", str(grpc)]

    return ChildSpec("gateway", args, env)


def _venue_spec(options: UpOptions, env: dict[str, str]) -> ChildSpec:
    extra = ["--config", str(options.sim_config)] if options.sim_config else []
    return ChildSpec("sim", lambda: ["venue", "sim", *_ports("sim", options), *extra], env)


async def _start_gateway(options: UpOptions, env: dict[str, str], children: list[Child]) -> dict[str, str]:
    """Starts the gateway; the environment the other services get (where to register)."""
    holder: list[Child] = []
    gateway = Child(_gateway_spec(options, env, holder), _WIDTH)
    holder.append(gateway)
    children.append(gateway)
    await gateway.start()
    _say(f"gateway serving on {gateway.address} (pid {gateway.pid}), registry on {gateway.grpc_address}")
    return {**env, GATEWAY: gateway.grpc_address}


async def _start_all(options: UpOptions, env: dict[str, str], children: list[Child]) -> None:
    env = await _start_gateway(options, env, children)
    width = _WIDTH
    venue = Child(_venue_spec(options, env), width)
    children.append(venue)
    await venue.start()
    _say(f"sim serving on {venue.address} (pid {venue.pid})")
    for spec in _specs(options, venue, env):
        child = Child(spec, width)
        children.append(child)
        await child.start()
        _say(f"{spec.name} serving on {child.address} (pid {child.pid})")


async def _stop_all(children: list[Child]) -> None:
    for child in reversed(children):
        code = await child.stop()
        _say(f"{child.spec.name} stopped ({code})")


async def _login_key(options: UpOptions, backing: Backing) -> Path:
    from gateway.auth import ensure_key_file

    path = options.data_dir / API_KEY_FILE
    await ensure_key_file(backing.database_url, API_KEY_NAME, path)
    return path


async def _mesh(options: UpOptions, backing: Backing) -> None:
    env = {
        REDIS_URL: backing.redis_url,
        DATABASE_URL: backing.database_url,
        TOKEN: _secret(TOKEN, options.data_dir, "token"),
        SESSION_SECRET: _secret(SESSION_SECRET, options.data_dir, "session-secret"),
    }
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    children: list[Child] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        key_file = await _login_key(options, backing)
        await _start_all(options, env, children)
        _say("all services healthy; Ctrl-C stops the mesh")
        _say(f"Studio: http://{children[0].address}/ (log in with the key in {key_file})")
        tasks = [asyncio.create_task(child.supervise(stop)) for child in children]
        progress = Progress(backing.redis_url, backing.database_url)
        tasks.append(asyncio.create_task(progress.run(stop, options.status_every_s, _say)))
        await stop.wait()
        _say("stopping")
    finally:
        stop.set()
        await _stop_all(children)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def run_up(options: UpOptions) -> None:
    import uvloop

    with ExitStack() as stack:
        backing = start_backing(options.data_dir, stack)
        if backing.embedded:
            _say(f"embedded {' and '.join(backing.embedded)} in {options.data_dir}")
        uvloop.run(_mesh(options, backing))
    _say("stopped")


_WIDTH = max(len(n) for n in [*_PORTS, "gateway"])


def _say(text: str) -> None:
    sys.stdout.write(f"{'mesh':<8} | {text}\n")
    sys.stdout.flush()
