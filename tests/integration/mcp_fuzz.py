"""MCP calls for the fuzz tests: tool calls with arguments built from each tool's input schema
(pooled values often: tests.integration.fuzz_pools), posted to the gateway's /mcp, and what
became of each (an answer, a refusal the model can read, or a crash)."""

from __future__ import annotations

import json
import re
from typing import Any

import aiohttp
from hypothesis import strategies as st

from tests.integration.fuzz_pools import Pools
from trademesh.gateway.mcp.body import MCP_REQUEST_BYTES

__all__ = ["mcp_post", "tool_arguments", "tool_call", "tool_outcome"]

Json = dict[str, Any]


def tool_call(name: str, arguments: Any) -> Json:
    return {
        "jsonrpc": "2.0",
        "id": 2,
        "method": "tools/call",
        "params": {"name": name, "arguments": arguments},
    }


def tool_arguments(tool: Json, pools: Pools) -> st.SearchStrategy[Any]:
    """Arguments for `tool`: each of its own often there with a value of its type (pooled by its
    name), sometimes missing or of another type; now and then a name it does not take, or no
    object at all."""
    schema = tool.get("inputSchema", {})
    own = {name: pools.json_argument(name, spec) for name, spec in schema.get("properties", {}).items()}
    required = set(schema.get("required", []))
    fixed = {name: value for name, value in own.items() if name in required}
    optional = {name: value for name, value in own.items() if name not in required}
    arguments = st.fixed_dictionaries(fixed, optional=optional)
    extra = st.dictionaries(st.sampled_from(["x", "venue\x00", "__class__", ""]), st.just(1), max_size=1)
    odd: st.SearchStrategy[Any] = st.sampled_from([None, [], "sim", 1])
    return st.one_of(
        arguments, arguments, arguments, st.builds(lambda a, b: {**a, **b}, arguments, extra), odd
    )


def tool_outcome(reply: Json) -> str:
    """ "answer", "unanswered" (the service behind did not answer in time: unavailable or
    deadline exceeded, as on a loaded machine), "refused" (a tool or argument error), or "crash"
    (an internal error: the SDK's bare "Error executing tool <name>" for an exception a tool let
    out, or JSON-RPC's)."""
    error = reply.get("error")
    if error is not None:
        return "crash" if error.get("code") == -32603 else "refused"
    result = reply["result"]
    if not result.get("isError"):
        return "answer"
    text = " ".join(part.get("text", "") for part in result.get("content", [])).strip()
    if re.fullmatch(r"Error executing tool \S+", text):
        return "crash"
    return "unanswered" if _UNANSWERED.match(text) else "refused"


# trademesh/gateway/mcp/tools.py words our errors "<kind>: <message>" (Unavailable, DeadlineExceeded).
_UNANSWERED = re.compile(r"Error executing tool \S+: (unavailable|deadline exceeded): ")


async def mcp_post(session: aiohttp.ClientSession, url: str, key: str, message: Any) -> tuple[int, bytes]:
    """POST one JSON-RPC message to /mcp: the HTTP status and the body. A body over the gateway's
    limit may be refused before it is all sent (the connection closed): status 413 then."""
    headers = {
        "authorization": f"Bearer {key}",
        "accept": "application/json, text/event-stream",
        "content-type": "application/json",
    }
    body = json.dumps(message).encode()
    try:
        async with session.post(f"{url}/mcp", data=body, headers=headers) as answer:
            return answer.status, await answer.read()
    except aiohttp.ClientError:
        if len(body) <= MCP_REQUEST_BYTES:
            raise
        return 413, b""
