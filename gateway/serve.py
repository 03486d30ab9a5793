"""Run the gateway process: the native gRPC server (Registry, Health) and the HTTP app (uvicorn).

Start: gRPC first (services can register at once), then auth (keys from PostgreSQL), then
HTTP; the serving line names both ports, so tests and supervisors can use port 0.
SIGTERM/SIGINT: health NOT_SERVING, open gRPC-web streams end with UNAVAILABLE, HTTP stops
(in-flight unary calls get the grace period), then the gRPC server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import uvicorn

from core.errors import Unavailable
from core.rpc.server import Served, ServerOptions, create_server
from gateway.app import DEFAULT_STUDIO_DIR, build_app
from gateway.auth import GatewayAuth, session_secret_from_env
from gateway.grpcweb import BridgeOptions, Cors, GrpcWebBridge
from gateway.mcp import GatewayMcp
from gateway.mux import MUX_SERVICE, Multiplexer, MuxLimits
from gateway.registry import REGISTRY_SERVICE, RegistryState, registry_service
from gateway.upstream import Upstreams
from trademesh.registry.v1 import registry_pb2 as pb

__all__ = ["GATEWAY_NAME", "GatewayOptions", "serve_gateway"]

log = logging.getLogger(__name__)

# The gateway's own entry in its registry.
GATEWAY_NAME = "gateway"
_HEALTH_SERVICE = "grpc.health.v1.Health"
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}


@dataclass(frozen=True)
class GatewayOptions:
    database_url: str
    host: str = "127.0.0.1"
    port: int = 8081
    grpc_port: int = 8082
    token: str | None = None
    # Fixed routes: (name, services, "host:port").
    upstreams: tuple[tuple[str, tuple[str, ...], str], ...] = ()
    studio_dir: Path | None = None
    session_ttl_s: float = 12 * 3600.0
    heartbeat_interval_s: float = 5.0
    registry_ttl_s: float = 15.0
    allow_origins: frozenset[str] = frozenset()
    mux: MuxLimits = field(default_factory=MuxLimits)
    # After SIGTERM: how long health says NOT_SERVING before the gateway stops taking calls.
    drain_delay_s: float = 0.5
    grace_s: float = 5.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The gateway handles SIGTERM/SIGINT itself: it stops its gRPC side too, in order.
        yield


async def serve_gateway(options: GatewayOptions) -> None:
    state = RegistryState(options.registry_ttl_s)
    grpc_options = ServerOptions(
        host=options.host,
        port=options.grpc_port,
        token=options.token,
        drain_delay_s=0.0,
        grace_s=options.grace_s,
        service_label="gateway",
    )
    served = await create_server([registry_service(state, options.heartbeat_interval_s)], grpc_options)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(served.stop, grpc_options)
        _configure(state, options, served.port)
        auth = await GatewayAuth.open(options.database_url, session_secret_from_env(), options.session_ttl_s)
        stack.push_async_callback(auth.close)
        upstreams = Upstreams()
        stack.push_async_callback(upstreams.close)
        mux = Multiplexer(state, upstreams, auth, options.mux)
        stack.push_async_callback(mux.close)
        cors = BridgeOptions(Cors(options.allow_origins))
        bridge = GrpcWebBridge(state, upstreams, auth, cors, {MUX_SERVICE: mux})
        mcp = GatewayMcp(state, auth, options.database_url)
        app = build_app(bridge, auth.routes(), options.studio_dir or DEFAULT_STUDIO_DIR, mcp)
        await _serve_http(app, options, served, bridge)


def _configure(state: RegistryState, options: GatewayOptions, grpc_port: int) -> None:
    host = _WILDCARDS.get(options.host, options.host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    state.configure(
        GATEWAY_NAME, pb.KIND_GATEWAY, f"{host}:{grpc_port}", [REGISTRY_SERVICE, _HEALTH_SERVICE], own=True
    )
    for name, services, address in options.upstreams:
        state.configure(name, pb.KIND_UNSPECIFIED, address, services)


async def _serve_http(app: object, options: GatewayOptions, served: Served, bridge: GrpcWebBridge) -> None:
    sock = _bind(options.host, options.port)
    config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        lifespan="on",
        log_config=None,
        access_log=False,
        ws="none",
        server_header=False,
        timeout_graceful_shutdown=int(options.grace_s),
    )
    server = _Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="gateway http")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await _until_started(server, serving)
    _announce(options.host, sock.getsockname()[1], served.port)
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
    log.info("gateway: stopping")
    await served.set_serving(False)
    await asyncio.sleep(options.drain_delay_s)
    bridge.stop_streams()
    server.should_exit = True
    await serving
    log.info("gateway: HTTP stopped")


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family)
    except OSError as exc:
        raise Unavailable(f"cannot listen on {host}:{port}: {exc.strerror}") from None


async def _until_started(server: uvicorn.Server, serving: asyncio.Task[None]) -> None:
    while not server.started:
        if serving.done():
            serving.result()  # raises what stopped it
            raise Unavailable("the gateway's HTTP server stopped while starting")
        await asyncio.sleep(0.02)


def _announce(host: str, port: int, grpc_port: int) -> None:
    # Machine-readable (core.process): /metrics is on the HTTP port.
    line = {
        "event": "serving",
        "service": "gateway",
        "host": host,
        "port": port,
        "grpc_port": grpc_port,
        "metrics_port": port,
    }
    print(json.dumps(line), flush=True)
    log.info(
        "gateway serving HTTP (gRPC-web, Studio, /mcp, /metrics) on %s:%d, gRPC on port %d",
        host,
        port,
        grpc_port,
    )
    sys.stdout.flush()
