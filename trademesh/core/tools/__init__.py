"""The mesh's tools: one implementation of each, served to LLM agents by the gateway's MCP
server (trademesh.gateway.mcp) and called by the advisor's context stage and its LLM synthesis. Every
tool reads, but Inspector's close_all (trademesh.core.tools.inspector), which acts only for a caller
whose key holds the `close_all` permission."""
