"""A limit on MCP request bodies: the MCP library reads a whole body into memory, so it gets
at most `limit` bytes (a tool call is a few hundred). Behind the bearer guard, so a caller
without a token never gets a byte read. Over the limit: 413 with a JSON-RPC error body; nested
deeper than trademesh.core.platform.parsing's bound (tool arguments thousands deep), 400 with one: the
bound is checked here, where the JSON enters, before any parser or tool walks it.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from trademesh.core.platform.parsing import MAX_DEPTH, text_depth

__all__ = ["MCP_REQUEST_BYTES", "BodyLimit"]

MCP_REQUEST_BYTES = 256 * 1024
_INVALID_REQUEST = -32600  # JSON-RPC


class BodyLimit:
    """Reads the body first (refusing it past the limit), then hands the app a replay of it."""

    def __init__(self, app: ASGIApp, limit: int = MCP_REQUEST_BYTES) -> None:
        self._app = app
        self._limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self._limit:
            await self._too_large(scope, receive, send)
            return
        body = await self._read(receive)
        if body is None:
            await self._too_large(scope, receive, send)
            return
        if text_depth(body.decode("utf-8", "replace")) > MAX_DEPTH:
            await _refuse(scope, receive, send, 400, f"request body nested deeper than {MAX_DEPTH} levels")
            return
        await self._app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The body; None past the limit. A client gone mid-body leaves an empty one (the app
        then sees the disconnect on its next receive)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return b""
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self._limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        await _refuse(scope, receive, send, 413, f"request body larger than {self._limit} bytes")


async def _refuse(scope: Scope, receive: Receive, send: Send, status: int, message: str) -> None:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": _INVALID_REQUEST, "message": message}}
    await JSONResponse(body, status_code=status)(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
