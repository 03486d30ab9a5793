"""The mesh's tools as a client service calls them (the Telegram bot, the Supervisor): the
gateway's MCP endpoint with the service's own API key, so it does what that key's scope allows
and no more (docs/telegram.md, docs/supervisor.md). Each call is a client of its own (connect,
call, close): calls are rare, and a gateway restarted between two of them is met fresh."""

from __future__ import annotations

from typing import Any

import httpx2
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from trademesh.core.platform.errors import FailedPrecondition, Unauthenticated, Unavailable
from trademesh.core.platform.logs.redact import redact_url

__all__ = ["MeshTools"]

Json = dict[str, Any]


class MeshTools:
    def __init__(self, gateway_url: str, key: str, timeout_s: float = 30.0) -> None:
        self._url = f"{gateway_url.rstrip('/')}/mcp"
        # What errors name: the URL may hold a password (user:password@), and errors are logged
        # and said in a chat.
        self._shown = redact_url(self._url)
        self._key = key
        self._timeout_s = timeout_s

    async def call(self, tool: str, **arguments: Any) -> Json:
        """The tool's answer; FailedPrecondition with the tool's own error (a refusal: a scope,
        a strategy not run anywhere), Unavailable when the gateway cannot be reached."""
        headers = {"Authorization": f"Bearer {self._key}"}
        try:
            async with (
                httpx2.AsyncClient(headers=headers, timeout=self._timeout_s) as http,
                Client(streamable_http_client(self._url, http_client=http)) as client,
            ):
                result = await client.call_tool(tool, arguments)
        except Exception as exc:  # the transport's many errors (in groups, from its task group)
            refused = _refusal(exc)
            if refused is not None:  # the gateway answered: the key is unknown or may not call tools
                raise Unauthenticated(f"the gateway at {self._shown} refused the key: {refused}") from None
            raise Unavailable(f"the gateway's tools at {self._shown}: {type(exc).__name__}") from None
        if result.is_error:
            text = " ".join(getattr(part, "text", "") for part in result.content)
            raise FailedPrecondition(text.strip() or f"{tool} refused")
        return dict(result.structured_content or {})


def _refusal(exc: BaseException) -> str | None:
    """The gateway's own refusal (an MCP error it answered with: an unknown key, a key without
    `read`), looked for through the transport's exception groups; None when it did not answer."""
    if isinstance(exc, MCPError):
        return str(exc)[:200]
    if isinstance(exc, BaseExceptionGroup):
        return next((r for r in map(_refusal, exc.exceptions) if r is not None), None)
    return None
