"""MCP tools at the gateway's /mcp (docs/gateway.md, "MCP")."""

from gateway.mcp.app import GatewayMcp

__all__ = ["GatewayMcp"]
