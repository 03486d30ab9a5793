"""MCP tools at the gateway's /mcp (docs/gateway.md, "MCP"). The app (trademesh.gateway.mcp.app) imports
the MCP SDK; the gateway makes it on the first /mcp request (trademesh.gateway.mcp.lazy), and importing
this package (its body limit, its guard) does not import the SDK."""

from typing import TYPE_CHECKING, Any

from trademesh.gateway.mcp.lazy import LazyMcp

if TYPE_CHECKING:
    from trademesh.gateway.mcp.app import GatewayMcp

__all__ = ["GatewayMcp", "LazyMcp"]


def __getattr__(name: str) -> Any:
    if name == "GatewayMcp":
        from trademesh.gateway.mcp.app import GatewayMcp

        return GatewayMcp
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
