"""The gateway as a service (trademesh.core.platform.service.lifecycle):
the HTTP app (uvicorn) beside the native gRPC server.

The gRPC side (Registry, Logs, Health) is the service's server, up first, so services can register
at once; then auth (keys from PostgreSQL), then HTTP; the serving line names both ports
(`port`: HTTP, `grpc_port`), so tests and supervisors can use port 0. Stopping
(trademesh.core.platform.service.lifecycle): health NOT_SERVING, the drain delay, then open
gRPC-web streams end with UNAVAILABLE, HTTP stops (in-flight unary calls get the grace period),
then the gRPC server.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib
import logging
import socket
from collections.abc import Generator, Sequence

import uvicorn

from trademesh.core.history.servicer import HISTORY_SERVICE, history_service
from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.logs.redact import redact_url
from trademesh.core.platform.rpc.channels import Upstreams
from trademesh.core.platform.rpc.registration import advertised_address, package_version
from trademesh.core.platform.rpc.server import Service
from trademesh.core.platform.service.lifecycle import ServiceContext
from trademesh.core.tools.recorded import RecorderDatabase
from trademesh.gateway.app import DEFAULT_STUDIO_DIR, Mcp, build_app
from trademesh.gateway.auth.authenticator import GatewayAuth
from trademesh.gateway.auth.sessions import session_secret_from_env
from trademesh.gateway.board.board import Board
from trademesh.gateway.board.servicer import SERVICES_SERVICE, services_service
from trademesh.gateway.config import GatewayConfig
from trademesh.gateway.grpcweb import Cors, GrpcWebBridge, GrpcWebOptions
from trademesh.gateway.logs import LOGS_SERVICE, LogsServicer, logs_service
from trademesh.gateway.mcp import LazyMcp
from trademesh.gateway.mux import MUX_SERVICE, Multiplexer
from trademesh.gateway.registry import REGISTRY_SERVICE, RegistryState, SharedRegistry, registry_service
from trademesh.gateway.registry.http_sd import targets_route
from trademesh.gateway.registry.state import TICK_S
from trademesh.registry.v1 import registry_pb2 as pb

__all__ = ["GATEWAY_NAME", "GatewayConfig", "GatewayService"]

log = logging.getLogger(__name__)

# The gateway's own entry in its registry.
GATEWAY_NAME = "gateway"
_HEALTH_SERVICE = "grpc.health.v1.Health"
_WILDCARDS = {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}
# Deadline of each History query (coverage: one scan of a series' key; bars: a page of one range).
_HISTORY_TIMEOUT_S = 30.0


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # trademesh.core.platform.service.lifecycle handles SIGTERM/SIGINT: it stops the gRPC side
        # too, in order.
        yield


class GatewayService:
    name = GATEWAY_NAME

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.state = RegistryState(config.registry_ttl_s, lost_s=config.registry_lost_s)
        # The client connects on its first command, on the service's loop.
        self.redis = None if config.redis_url is None else open_redis(config.redis_url)
        self.stopping = asyncio.Event()
        # With --shared-registry (the CLI refuses it without a bus), the replicas share the registry.
        self.shared: SharedRegistry | None = None
        if config.shared_registry and self.redis is not None:
            self.shared = SharedRegistry(self.state, self.redis)
        self.board = Board(self.state, config.board)
        # The Tails' own client: however many tails read, the shared registry keeps its connections.
        self.logs_redis = None if config.redis_url is None else open_redis(config.redis_url)
        where = "" if config.redis_url is None else redact_url(config.redis_url)
        self.logs = LogsServicer(self.logs_redis, where, self.stopping)
        # History/GetCoverage's pool: made at its first call, so a database that is down
        # stops nothing else (trademesh.core.tools.recorded).
        self.history = RecorderDatabase(config.database_url, _HISTORY_TIMEOUT_S)

    def grpc_services(self) -> Sequence[Service]:
        return [
            registry_service(self.state, self.config.heartbeat_interval_s, self.shared),
            logs_service(self.logs),
            services_service(self.board),
            history_service(self.history),
        ]

    async def run(self, ctx: ServiceContext) -> None:
        config = self.config
        sock = _bind(config.host, config.port)  # first: its port is the gateway's metrics port
        _configure(self.state, config, ctx.port, sock.getsockname()[1])
        async with contextlib.AsyncExitStack() as stack:
            stack.callback(sock.close)
            if self.redis is not None:
                stack.push_async_callback(self.redis.aclose)
            if self.logs_redis is not None:
                stack.push_async_callback(self.logs_redis.aclose)
            stack.push_async_callback(self.logs.close)  # the tails' reader, before its client closes
            stack.push_async_callback(self.history.close)
            stack.callback(self.stopping.set)  # following tails end (UNAVAILABLE) before Redis closes
            ticking = asyncio.create_task(_tick(self.state), name="registry ticks")
            stack.push_async_callback(_ended, ticking)
            if self.shared is not None:
                await self.shared.sync()  # the other replicas' instances before the first call
                sharing = asyncio.create_task(self.shared.run(ctx.stop), name="registry sharing")
                stack.push_async_callback(_ended, sharing)
            auth = await GatewayAuth.open(
                config.database_url, session_secret_from_env(), config.session_ttl_s
            )
            stack.push_async_callback(auth.close)
            await stack.enter_async_context(self.board.running(ctx.stop))
            upstreams = Upstreams()
            stack.push_async_callback(upstreams.close)
            mux = Multiplexer(self.state, upstreams, auth, config.mux)
            stack.push_async_callback(mux.close)  # before the upstreams close
            cors = GrpcWebOptions(Cors(config.allow_origins))
            bridge = GrpcWebBridge(self.state, upstreams, auth, cors, {MUX_SERVICE: mux})
            mcp = LazyMcp(functools.partial(_mcp_app, self.state, auth, config.database_url, self.board))
            studio_dir = config.studio_dir or DEFAULT_STUDIO_DIR
            app = build_app(bridge, auth.routes(), studio_dir, mcp, [targets_route(self.state, auth)])
            await _serve_http(app, sock, config, ctx, bridge)


async def _tick(state: RegistryState) -> None:
    """The registry's ticks: a pause of the gateway's own is not its instances' silence."""
    while True:
        await asyncio.sleep(TICK_S)
        state.tick()


async def _ended(task: asyncio.Task[None]) -> None:
    await cancel_and_wait(task)


async def _mcp_app(resolver: RegistryState, auth: GatewayAuth, database_url: str, board: Board) -> Mcp:
    """The MCP app (its first request's): the SDK imported on a thread, so that the loop serves
    the other calls meanwhile; the app made on the loop."""
    await asyncio.to_thread(importlib.import_module, "trademesh.gateway.mcp.app")
    from trademesh.gateway.mcp.app import GatewayMcp

    return GatewayMcp(resolver, auth, database_url, board=board)


def _configure(state: RegistryState, config: GatewayConfig, grpc_port: int, http_port: int) -> None:
    host = _WILDCARDS.get(config.host, config.host)
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    # It dials itself at the loopback; Prometheus reaches its /metrics where services reach it.
    metrics_host = advertised_address(config.host, http_port).rpartition(":")[0]
    state.configure(
        GATEWAY_NAME,
        pb.KIND_GATEWAY,
        f"{host}:{grpc_port}",
        [REGISTRY_SERVICE, LOGS_SERVICE, SERVICES_SERVICE, HISTORY_SERVICE, _HEALTH_SERVICE],
        own=True,
        metrics=(metrics_host, http_port),
        version=package_version(),
    )
    for name, services, address in config.upstreams:
        state.configure(name, pb.KIND_UNSPECIFIED, address, services)


async def _serve_http(
    app: object, sock: socket.socket, config: GatewayConfig, ctx: ServiceContext, bridge: GrpcWebBridge
) -> None:
    uvicorn_config = uvicorn.Config(
        app,  # type: ignore[arg-type]
        lifespan="on",
        log_config=None,
        access_log=False,
        ws="none",
        server_header=False,
        timeout_graceful_shutdown=int(config.grace_s),
        # uvicorn believes X-Forwarded-For from 127.0.0.1 by default: a local client could then
        # name any address and spread its failed logins over as many throttle buckets.
        proxy_headers=bool(config.trusted_proxies),
        forwarded_allow_ips=list(config.trusted_proxies) or None,
    )
    server = _Server(uvicorn_config)
    serving = asyncio.create_task(server.serve(sockets=[sock]), name="gateway http")
    await _until_started(server, serving)
    http_port = sock.getsockname()[1]
    # /metrics is on the HTTP port; the supervisor asks gRPC health on grpc_port.
    await ctx.ready(port=http_port, grpc_port=ctx.port, metrics_port=http_port)
    log.info("gateway: HTTP (gRPC-web, Studio, /mcp, /metrics) on %s:%d", config.host, http_port)
    stopper = asyncio.create_task(ctx.stop.wait())
    await asyncio.wait({serving, stopper}, return_when=asyncio.FIRST_COMPLETED)
    stopper.cancel()
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
