"""The mesh's read-only tools: one implementation of each, served to LLM agents by the gateway's
MCP server (gateway.mcp) and called by the advisor's context stage and its LLM synthesis."""
