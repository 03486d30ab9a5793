"""The gateway's HTTP app: gRPC-web, login, /metrics, /mcp and Studio's static files on one origin.

Routes are matched in order: auth's routes (POST /api/login), /metrics, the given routes
(GET /prometheus/targets: trademesh.gateway.registry.http_sd), /mcp, then every
POST/OPTIONS /<package.Service>/<Method> goes to the gRPC-web bridge, and the rest is Studio
(a single-page app: unknown paths without a file extension get index.html).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path, PurePosixPath
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from trademesh.gateway.grpcweb import GrpcWebBridge

__all__ = ["DEFAULT_STUDIO_DIR", "Mcp", "StudioFiles", "build_app"]

# Studio's build beside this module: trademesh/gateway/studio/dist in a checkout (npm's output), and the same
# path under site-packages in an installed wheel (package data of `gateway`; docs/install.md).
DEFAULT_STUDIO_DIR = Path(__file__).resolve().parent / "studio" / "dist"


class Mcp(Protocol):
    """What the app needs of trademesh.gateway.mcp.GatewayMcp."""

    def asgi(self) -> ASGIApp: ...

    def lifespan(self) -> AbstractAsyncContextManager[None]: ...


class StudioFiles(StaticFiles):
    """Studio's build; a path that names no file (a client-side route) gets index.html."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404 or "." in PurePosixPath(path).name:
                raise
            return await super().get_response("index.html", scope)


def _no_studio(directory: Path) -> Callable[[Request], Awaitable[Response]]:
    async def answer(request: Request) -> Response:
        return PlainTextResponse(
            f"Studio is not built: no {directory}/index.html. In a checkout, build it (./dev up does, "
            "or cd trademesh/gateway/studio && npm ci && npm run build); a wheel carries it when built by "
            "./dev wheel (docs/install.md); or pass --studio-dir.\n",
            status_code=404,
        )

    return answer


async def _metrics(request: Request) -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)


class _PostOnly:
    """`app` for POSTs; 405 for the rest. Stateless MCP has no server-to-client SSE stream for a
    GET to open (it stayed open for ever, or was HTTP 500 with Last-Event-ID: the SDK has no
    event store to replay) and no session for a DELETE to end; the MCP spec asks for 405.

    A class, not a function: Starlette would take a function for a request-response endpoint.
    """

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] == "POST":
            await self._app(scope, receive, send)
            return
        refused = PlainTextResponse("/mcp takes POST only (stateless MCP)\n", 405, {"Allow": "POST"})
        await refused(scope, receive, send)


def build_app(
    bridge: GrpcWebBridge,
    auth_routes: Sequence[BaseRoute],
    studio_dir: Path,
    mcp: Mcp | None = None,
    more_routes: Sequence[BaseRoute] = (),
) -> Starlette:
    routes: list[BaseRoute] = [*auth_routes, Route("/metrics", _metrics, methods=["GET"]), *more_routes]
    if mcp is not None:
        # Every method, so that none falls through to Studio's files; _PostOnly answers the rest.
        routes.append(Route("/mcp", _PostOnly(mcp.asgi())))
    routes.append(Route("/{service}/{method}", bridge, methods=["POST", "OPTIONS"]))
    if (studio_dir / "index.html").is_file():
        routes.append(Mount("/", StudioFiles(directory=studio_dir, html=True)))
    else:
        routes.append(Route("/{path:path}", _no_studio(studio_dir), methods=["GET"]))
    return Starlette(routes=routes, lifespan=_lifespan(mcp))


def _lifespan(mcp: Mcp | None) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if mcp is None:
            yield
            return
        async with mcp.lifespan():
            yield

    return lifespan
