"""/mcp made on its first request rather than at the gateway's start.

The MCP SDK and the tools' schemas were most of a gateway's start (1.2 s of CPU and 113 MB of
memory against 0.45 s and 71 MB without them), and a gateway may serve no agent at all. The
first request to /mcp makes the app (`make`: the SDK imported on a thread, so the loop serves
on meanwhile) and enters its lifespan in a task of its own, which the gateway's lifespan ends;
the requests that came meanwhile wait for the one app together.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from starlette.types import ASGIApp, Receive, Scope, Send

from trademesh.gateway.app import Mcp

__all__ = ["LazyMcp"]

log = logging.getLogger(__name__)


class LazyMcp:
    """An Mcp (trademesh.gateway.app) that makes the real one (trademesh.gateway.mcp.app.GatewayMcp) with
    `make` on its first request."""

    def __init__(self, make: Callable[[], Awaitable[Mcp]]) -> None:
        self._make = make
        self._ready: asyncio.Future[Mcp] | None = None
        self._running: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    def asgi(self) -> ASGIApp:
        return self._call

    async def _call(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._ready is None:
            self._ready = asyncio.get_running_loop().create_future()
            self._running = asyncio.create_task(self._run(self._ready), name="gateway mcp")
        # Shielded: a client that leaves while the app is made does not stop its making.
        app = await asyncio.shield(self._ready)
        await app.asgi()(scope, receive, send)

    async def _run(self, ready: asyncio.Future[Mcp]) -> None:
        try:
            app = await self._make()
            async with app.lifespan():
                ready.set_result(app)
                log.info("gateway: MCP ready at /mcp")
                await self._stop.wait()
        except Exception as exc:
            if ready.done():
                raise
            # The requests waiting get the error (HTTP 500); the next request tries again.
            self._ready = None
            ready.set_exception(exc)

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """The gateway's lifespan: nothing to start; at its end, the app's lifespan if it began."""
        try:
            yield
        finally:
            self._stop.set()
            if self._running is not None:
                await self._running
