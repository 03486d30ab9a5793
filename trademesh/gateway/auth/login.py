"""POST /api/login: Studio trades an API key for a session token, so no key is ever baked into
the bundle or kept by the browser.

    {"key": "tmk_..."}  ->  200 {"token": "tms_...", "expires_at_ms": ..., "key_name": "..."}
                            400 {"error": ...}  the body is not that JSON (nested too deep:
                                                trademesh.core.platform.parsing); counted as a failure
                            401 {"error": ...}  unknown or revoked key
                            429 {"error": ...}  too many failed logins from this address (Retry-After)

The client address is the TCP peer's: X-Forwarded-For, which anyone can send, is believed only
from the proxies named with `trademesh gateway --trusted-proxy` (uvicorn resolves it then).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route

from trademesh.core.platform.errors import InvalidArgument, Unauthenticated
from trademesh.core.platform.parsing import loads_json
from trademesh.gateway.auth.sessions import Session
from trademesh.gateway.auth.throttle import LoginThrottle

__all__ = ["LOGIN_PATH", "Login", "login_routes"]

log = logging.getLogger(__name__)

LOGIN_PATH = "/api/login"
_MAX_BODY_BYTES = 4096
_NO_STORE = {"Cache-Control": "no-store"}

# Checks a key and makes a session from it; Unauthenticated for a key that does not log in.
Login = Callable[[str], Awaitable[tuple[str, Session]]]


def login_routes(login: Login, throttle: LoginThrottle) -> list[BaseRoute]:
    async def endpoint(request: Request) -> JSONResponse:
        return await _answer(request, login, throttle)

    return [Route(LOGIN_PATH, endpoint, methods=["POST"], name="login")]


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers={**_NO_STORE, **(headers or {})})


async def _answer(request: Request, login: Login, throttle: LoginThrottle) -> JSONResponse:
    client = "unknown" if request.client is None else request.client.host
    now = time.monotonic()
    wait_s = throttle.retry_after_s(client, now)
    if wait_s is not None:
        message = f"too many failed logins from this address: retry in {wait_s} s"
        return _error(429, message, {"Retry-After": str(wait_s)})
    try:
        key = _key_of(await _body(request))
    except InvalidArgument as exc:
        # Counted: a body that is not a login is as much a failed attempt as a wrong key, and
        # a sender of malformed ones is probing (an uncounted 400 was free to repeat).
        throttle.failed(client, now)
        log.info("gateway auth: malformed login from %s", client)
        return _error(400, str(exc))
    try:
        token, session = await login(key)
    except Unauthenticated as exc:
        throttle.failed(client, now)
        log.info("gateway auth: login refused from %s", client)
        return _error(401, str(exc))
    throttle.succeeded(client)
    log.info("gateway auth: login with key %s from %s", session.key_name, client)
    body = {"token": token, "expires_at_ms": session.expires_at_ms, "key_name": session.key_name}
    return JSONResponse(body, headers=_NO_STORE)


async def _body(request: Request) -> bytes:
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > _MAX_BODY_BYTES:
            raise InvalidArgument.field("body", f"larger than {_MAX_BODY_BYTES} bytes")
    return bytes(received)


def _key_of(body: bytes) -> str:
    try:
        parsed: Any = loads_json(body, "body")
    except InvalidArgument as exc:
        why = exc.violations[0].description
        raise InvalidArgument.field("body", f'{why}: send {{"key": "<API key>"}}') from None
    key = parsed.get("key") if isinstance(parsed, dict) else None
    if not isinstance(key, str) or key == "":
        raise InvalidArgument.field("key", 'missing: send {"key": "<API key>"} (a non-empty string)')
    return key
