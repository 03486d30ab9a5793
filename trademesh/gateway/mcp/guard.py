"""Bearer auth in front of /mcp: no valid API key or Studio session token holding the `read`
scope, no MCP (every tool reads: trademesh.core.tools.upstream refuses any other method, but for what a
permission of the caller's own key covers: the close_all tool).

The request's ASGI scope carries the caller (PRINCIPAL, a
trademesh.core.platform.access.contracts.Principal) for the tools that act for it.

The refusal is an HTTP status with a JSON-RPC error body, so both an HTTP client and an MCP
client show why; the credential itself is never echoed or logged.
"""

from __future__ import annotations

import logging

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from trademesh.core.platform.access.contracts import Authenticator
from trademesh.core.platform.access.contracts import Scope as KeyScope  # starlette.types has a Scope too
from trademesh.core.platform.errors import Unauthenticated, Unavailable

__all__ = ["PRINCIPAL", "BearerGuard"]

log = logging.getLogger(__name__)

# JSON-RPC's implementation-defined server error range; MCP servers commonly use it for auth.
_UNAUTHORIZED = -32001
_UNAVAILABLE = -32000
_FORBIDDEN = -32003
# The ASGI scope key of the authenticated caller (an extension key; no ASGI server sets it).
PRINCIPAL = "trademesh.principal"


class BearerGuard:
    """An ASGI app (a class, not a function, so Starlette's Route treats it as one)."""

    def __init__(self, app: ASGIApp, authenticator: Authenticator) -> None:
        self._app = app
        self._authenticator = authenticator

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        try:
            principal = await self._authenticator.authenticate(Headers(scope=scope).get("authorization"))
        except Unauthenticated as exc:
            await _refuse(401, _UNAUTHORIZED, str(exc), scope, receive, send)
            return
        except Unavailable as exc:
            await _refuse(503, _UNAVAILABLE, str(exc), scope, receive, send)
            return
        if KeyScope.READ not in principal.scopes:
            message = f"API key {principal.key_name!r} lacks the 'read' scope every MCP tool needs"
            await _refuse(403, _FORBIDDEN, message, scope, receive, send)
            return
        log.debug("mcp request", extra={"key_name": principal.key_name})
        await self._app({**scope, PRINCIPAL: principal}, receive, send)


async def _refuse(status: int, code: int, message: str, scope: Scope, receive: Receive, send: Send) -> None:
    body = {"jsonrpc": "2.0", "id": None, "error": {"code": code, "message": message}}
    headers = {"WWW-Authenticate": 'Bearer realm="trademesh"'} if status == 401 else None
    await JSONResponse(body, status_code=status, headers=headers)(scope, receive, send)
