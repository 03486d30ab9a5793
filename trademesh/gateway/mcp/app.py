"""MCP at the gateway's /mcp: tools over the mesh for LLM agents (streamable HTTP), all read only
but those acting for the caller's key (trademesh.gateway.mcp.tools); the tools themselves are
trademesh.core.tools', which the advisor's context stage calls too.

Stateless: every request stands alone (no MCP session to keep, route or lose on restart), and
answers are plain JSON rather than an SSE stream, since no tool sends progress.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from mcp.server import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp

from trademesh.core.history.tool import HistoryTools
from trademesh.core.platform.access.contracts import Authenticator, Resolver
from trademesh.core.tools.advisor import AdvisorTools
from trademesh.core.tools.backtest import BacktestTools
from trademesh.core.tools.bars import BarStore
from trademesh.core.tools.gaps import GapStore
from trademesh.core.tools.inspector import InspectorTools
from trademesh.core.tools.ledger import LedgerTools
from trademesh.core.tools.logs import LogTools
from trademesh.core.tools.market import MarketTools
from trademesh.core.tools.recorded import RecorderDatabase
from trademesh.core.tools.regimes import RegimeTools
from trademesh.core.tools.screens import ScreenTools
from trademesh.core.tools.signals import SignalStore
from trademesh.core.tools.strategies import StrategyTools
from trademesh.core.tools.supervisor import SupervisorTools
from trademesh.core.tools.upstream import Upstream
from trademesh.gateway.board.board import Board
from trademesh.gateway.board.tool import BoardTools
from trademesh.gateway.mcp.body import BodyLimit
from trademesh.gateway.mcp.guard import BearerGuard
from trademesh.gateway.mcp.tools import register, tool_functions

__all__ = ["CALL_TIMEOUT_S", "GatewayMcp"]

# Deadline of every call a tool makes (gRPC to a venue or the bridge, a PostgreSQL query).
CALL_TIMEOUT_S = 5.0

_INSTRUCTIONS = (
    "Tools over a trademesh trading mesh. Start with list_venues; symbols are canonical "
    "ccxt symbols such as BTC/USDT. Prices, sizes and money are decimal strings; times are ISO 8601 "
    "UTC and int nanoseconds. market_prices gives every instrument's last, bid and ask on a venue "
    "in one call. The inspector_* tools show the risk governor (the only service that "
    "places orders): its state, positions with their protective orders, risk events, audit and "
    "policies. The ledger_* tools show the double-entry books: balances, transfers, PnL per "
    "strategy with its equity curve, the books' self-check, and ledger_trace, the chain of any "
    "signal, decision, intent, order, fill or transfer id (signal -> decision -> intent -> risk "
    "check -> order -> fill -> transfer). logs_tail shows every service's recent log lines "
    "(filter by service, level, venue, trace_id or text). regimes shows the market regime of "
    "every venue and symbol (trend_up, trend_down, range, high_volatility, thin_liquidity). "
    "screen shows a screen's latest ranked result (the Screener's screens: name it, e.g. momentum). "
    "supervisor_state shows the AI Supervisor's mode and its open proposals with their evidence; "
    "supervisor_decide approves or rejects one, for an API key holding trade. "
    "Every tool only reads, but those that act for a key holding their scope (pause_strategy, "
    "resume_strategy, inspector_resume, supervisor_decide, backtest_start: trade; set_capital, "
    "tighten_policy: admin) and close_all: the emergency button that cancels every order and "
    "flattens every position, allowed only to an API key holding the close_all permission. "
    "services_overview shows every running service's health, "
    "version, uptime, events/s, bus lag, errors/s and firing alerts. history_coverage shows what "
    "history backtests can read: per venue, symbol and timeframe the bars held and their holes."
)
# The SDK's DNS-rebinding check pins the Host header to localhost; the gateway is reached under
# any name (containers, proxies), and every request must carry a key a rebinding page lacks.
_ANY_HOST = TransportSecuritySettings(enable_dns_rebinding_protection=False)


class GatewayMcp:
    def __init__(
        self,
        resolver: Resolver,
        authenticator: Authenticator,
        database_url: str,
        *,
        call_timeout_s: float = CALL_TIMEOUT_S,
        board: Board | None = None,
    ) -> None:
        self._upstream = Upstream(resolver, call_timeout_s)
        self._database = RecorderDatabase(database_url, call_timeout_s)
        server: MCPServer[Any] = MCPServer("trademesh", instructions=_INSTRUCTIONS)
        db = self._database
        market = MarketTools(self._upstream, BarStore(db), SignalStore(db), GapStore(db))
        up = self._upstream
        tools = tool_functions(
            market,
            StrategyTools(up),
            RegimeTools(up),
            ScreenTools(up),
            SupervisorTools(up),
            AdvisorTools(up),
            InspectorTools(up),
            LedgerTools(up),
            BacktestTools(up),
            LogTools(up),
        )
        if board is not None:
            tools.append(BoardTools(board).services_overview)
        tools.append(HistoryTools(db).history_coverage)
        register(server, tools)
        # Builds the session manager; its own Starlette app is not used (we mount ours).
        server.streamable_http_app(stateless_http=True, json_response=True, transport_security=_ANY_HOST)
        self._sessions = server.session_manager
        self._app = BearerGuard(BodyLimit(self._sessions.handle_request), authenticator)

    def asgi(self) -> ASGIApp:
        """The app to mount at /mcp, for POSTs (trademesh.gateway.app answers other methods 405)."""
        return self._app

    @contextlib.asynccontextmanager
    async def lifespan(self) -> AsyncIterator[None]:
        """Run once, in the gateway's lifespan: the MCP session manager, then our channels and pool."""
        async with self._sessions.run():
            try:
                yield
            finally:
                await self._upstream.close()
                await self._database.close()
