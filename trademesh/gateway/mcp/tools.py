"""The MCP server's tools: the mesh's read-only tools (trademesh.core.tools: market and account data, the
detector's strategies, Overwatch's market regimes, the Screener's screens, the AI Supervisor's
state, the advisor's decisions, the inspector's risk state, the ledger's books, the backtest
hub's runs, the mesh's log lines), each registered under its function's name with its docstring
as the description the model reads; and those that act for the caller's own key
(trademesh.gateway.mcp.guard puts it in the request), each only when that key holds its scope: close_all
(`close_all`), backtest_start, pause_strategy, resume_strategy, inspector_resume and
supervisor_decide (`trade`), set_capital and tighten_policy (`admin`). Our errors become MCP
tool errors (is_error results the model can read), never crashes.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable
from typing import Any, ParamSpec

from mcp.server import MCPServer
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import ToolAnnotations

from trademesh.core.platform.access.contracts import Principal
from trademesh.core.platform.errors import TrademeshError
from trademesh.core.tools.advisor import AdvisorTools
from trademesh.core.tools.backtest import BacktestTools, BarsText, LatencyText
from trademesh.core.tools.inspector import Amount, InspectorTools, Limit, PolicyKey, Reason, Why
from trademesh.core.tools.ledger import LedgerTools, TimeText
from trademesh.core.tools.logs import LogTools
from trademesh.core.tools.market import MarketTools
from trademesh.core.tools.regimes import RegimeTools
from trademesh.core.tools.screens import ScreenTools
from trademesh.core.tools.strategies import StrategyId, StrategyTools
from trademesh.core.tools.supervisor import Decision, ProposalId, SupervisorTools, Verdict
from trademesh.gateway.mcp.guard import PRINCIPAL

__all__ = ["register", "tool_functions"]

Json = dict[str, Any]
P = ParamSpec("P")


def tool_functions(
    market: MarketTools,
    strategies: StrategyTools,
    regimes: RegimeTools,
    screens: ScreenTools,
    supervisor: SupervisorTools,
    advisor: AdvisorTools,
    inspector: InspectorTools,
    ledger: LedgerTools,
    backtest: BacktestTools,
    logs: LogTools,
) -> list[Callable[..., Awaitable[Json]]]:
    """Every tool the gateway serves, in the order tools/list shows them."""
    return [
        market.list_venues,
        market.venue_status,
        market.instruments,
        market.market_prices,
        market.latest_bars,
        market.gap_markers,
        market.recent_signals,
        market.order_book_top,
        market.open_orders,
        market.positions,
        market.leverage,
        market.balances,
        market.account,
        strategies.list_strategies,
        strategies.strategy_status,
        *_strategy_switches(strategies),
        regimes.regimes,
        screens.screen,
        supervisor.supervisor_state,
        _supervisor_decide(supervisor),
        advisor.advisor_decide,
        advisor.advisor_decision,
        advisor.advisor_decisions,
        advisor.advisor_watch,
        advisor.advisor_calibration,
        advisor.advisor_model,
        inspector.inspector_state,
        inspector.inspector_positions,
        inspector.inspector_events,
        inspector.inspector_audit,
        inspector.inspector_policies,
        _inspector_resume(inspector),
        _set_capital(inspector),
        _tighten_policy(inspector),
        _close_all(inspector),
        ledger.ledger_balances,
        ledger.ledger_transfers,
        ledger.ledger_pnl,
        ledger.ledger_verify,
        ledger.ledger_trace,
        backtest.backtest_strategies,
        _backtest_start(backtest),
        backtest.backtest_progress,
        backtest.backtest_runs,
        backtest.backtest_result,
        logs.logs_tail,
    ]


def _close_all(inspector: InspectorTools) -> Callable[..., Awaitable[Json]]:
    """The close_all tool: the inspector's, called for the key that made the MCP request."""

    async def close_all(reason: Reason, ctx: Context) -> Json:
        return await inspector.close_all(reason, caller=_caller(ctx))

    close_all.__doc__ = inspector.close_all.__doc__
    return close_all


def _strategy_switches(strategies: StrategyTools) -> list[Callable[..., Awaitable[Json]]]:
    """pause_strategy and resume_strategy, each for the key that made the MCP request."""

    async def pause_strategy(strategy: StrategyId, ctx: Context) -> Json:
        return await strategies.pause_strategy(strategy, caller=_caller(ctx))

    async def resume_strategy(strategy: StrategyId, ctx: Context) -> Json:
        return await strategies.resume_strategy(strategy, caller=_caller(ctx))

    pause_strategy.__doc__ = strategies.pause_strategy.__doc__
    resume_strategy.__doc__ = strategies.resume_strategy.__doc__
    return [pause_strategy, resume_strategy]


def _inspector_resume(inspector: InspectorTools) -> Callable[..., Awaitable[Json]]:
    async def inspector_resume(reason: Why, ctx: Context) -> Json:
        return await inspector.inspector_resume(reason, caller=_caller(ctx))

    inspector_resume.__doc__ = inspector.inspector_resume.__doc__
    return inspector_resume


def _supervisor_decide(supervisor: SupervisorTools) -> Callable[..., Awaitable[Json]]:
    async def supervisor_decide(
        proposal_id: ProposalId, decision: Decision, reason: Verdict, ctx: Context
    ) -> Json:
        return await supervisor.supervisor_decide(proposal_id, decision, reason, caller=_caller(ctx))

    supervisor_decide.__doc__ = supervisor.supervisor_decide.__doc__
    return supervisor_decide


def _set_capital(inspector: InspectorTools) -> Callable[..., Awaitable[Json]]:
    async def set_capital(strategy: StrategyId, amount: Amount, reason: Why, ctx: Context) -> Json:
        return await inspector.set_capital(strategy, amount, reason, caller=_caller(ctx))

    set_capital.__doc__ = inspector.set_capital.__doc__
    return set_capital


def _tighten_policy(inspector: InspectorTools) -> Callable[..., Awaitable[Json]]:
    async def tighten_policy(policy: PolicyKey, limit: Limit, reason: Why, ctx: Context) -> Json:
        return await inspector.tighten_policy(policy, limit, reason, caller=_caller(ctx))

    tighten_policy.__doc__ = inspector.tighten_policy.__doc__
    return tighten_policy


def _backtest_start(backtest: BacktestTools) -> Callable[..., Awaitable[Json]]:
    """The backtest_start tool, for the key that made the MCP request (it needs `trade`)."""

    async def backtest_start(
        strategies: list[str],
        start: TimeText,
        end: TimeText,
        ctx: Context,
        symbols: list[str] | None = None,
        llm: str = "off",
        latency: LatencyText = "model",
        bars: BarsText = "",
    ) -> Json:
        return await backtest.backtest_start(
            strategies, start, end, symbols, llm, latency, bars, caller=_caller(ctx)
        )

    backtest_start.__doc__ = backtest.backtest_start.__doc__
    return backtest_start


def _caller(ctx: Context) -> Principal | None:
    request = ctx.request_context.request
    scope = getattr(request, "scope", None) or {}
    found = scope.get(PRINCIPAL)
    return found if isinstance(found, Principal) else None


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


def _acting(title: str, idempotent: bool = True, emergency: bool = False) -> ToolAnnotations:
    """A tool that acts: not read-only; an emergency one destroys and reaches the venues."""
    return ToolAnnotations(
        title=title,
        read_only_hint=False,
        destructive_hint=emergency,
        idempotent_hint=idempotent,
        open_world_hint=emergency,
    )


# Tools that act (each behind a permission its caller's key must hold), by name.
_ACTING = {
    "backtest_start": _acting("Start a backtest"),
    "pause_strategy": _acting("Pause a strategy"),
    "resume_strategy": _acting("Resume a strategy"),
    "inspector_resume": _acting("Resume the risk governor"),
    "supervisor_decide": _acting("Decide a Supervisor's proposal", idempotent=False),
    "set_capital": _acting("Set a strategy's capital"),
    "tighten_policy": _acting("Tighten a risk limit"),
    "close_all": _acting("Close all (emergency)", emergency=True),
}


def register(server: MCPServer[Any], tools: list[Callable[..., Awaitable[Json]]]) -> None:
    for tool in tools:
        # The docstring is what the model reads; without its source indentation.
        description = inspect.cleandoc(tool.__doc__ or "")
        annotations = _ACTING.get(tool.__name__, _READ_ONLY)
        server.add_tool(_as_tool_errors(tool), description=description, annotations=annotations)
