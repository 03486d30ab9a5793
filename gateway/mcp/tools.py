"""The MCP server's tools: the mesh's read-only tools (core.tools: market and account data, the
detector's strategies, the advisor's decisions), each registered under its function's name with
its docstring as the description the model reads. Our errors become MCP tool errors (is_error
results the model can read), never crashes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from core.errors import TrademeshError
from core.tools.advisor import AdvisorTools
from core.tools.market import MarketTools
from core.tools.strategies import StrategyTools

__all__ = ["register", "tool_functions"]

Json = dict[str, Any]
P = ParamSpec("P")


def tool_functions(
    market: MarketTools, strategies: StrategyTools, advisor: AdvisorTools
) -> list[Callable[..., Awaitable[Json]]]:
    """Every tool the gateway serves, in the order tools/list shows them."""
    return [
        market.list_venues,
        market.venue_status,
        market.instruments,
        market.latest_bars,
        market.gap_markers,
        market.recent_signals,
        market.order_book_top,
        market.open_orders,
        market.positions,
        market.balances,
        strategies.list_strategies,
        strategies.strategy_status,
        advisor.advisor_decide,
        advisor.advisor_decision,
        advisor.advisor_decisions,
        advisor.advisor_watch,
        advisor.advisor_calibration,
        advisor.advisor_model,
    ]


def _as_tool_errors(tool: Callable[P, Awaitable[Json]]) -> Callable[P, Awaitable[Json]]:
    """Our errors as MCP ToolErrors: the model reads the message; anything else stays a crash."""

    @functools.wraps(tool)
    async def run(*args: P.args, **kwargs: P.kwargs) -> Json:
        try:
            return await tool(*args, **kwargs)
        except TrademeshError as exc:
            raise ToolError(f"{_kind(exc)}: {exc}") from exc

    return run


def _kind(error: TrademeshError) -> str:
    """InvalidArgument -> "invalid argument", so the model can tell its own mistakes from outages."""
    name = type(error).__name__
    return "".join(f" {c.lower()}" if c.isupper() else c for c in name).strip()


_READ_ONLY = ToolAnnotations(
    read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False
)


def register(server: MCPServer[Any], tools: list[Callable[..., Awaitable[Json]]]) -> None:
    for tool in tools:
        # The docstring is what the model reads; without its source indentation.
        description = inspect.cleandoc(tool.__doc__ or "")
        server.add_tool(_as_tool_errors(tool), description=description, annotations=_READ_ONLY)
