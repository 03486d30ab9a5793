"""Tools over the backtest hub (trademesh.backtest.v1.Backtest): the strategies it can run, a
run started for the caller's key (it spends the machine's cores: the key needs the `trade`
scope), its progress, the runs, and a run's results.

Arguments are checked here, every bad one named; money stays the wire's decimal strings and
times are ISO 8601 UTC with int nanoseconds (trademesh.core.tools.render).
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import Field

from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.core.domain.model import TIMEFRAME_LABELS
from trademesh.core.platform.access.contracts import Principal
from trademesh.core.platform.errors import InvalidArgument, PermissionDenied, shown
from trademesh.core.tools.inputs import bounded
from trademesh.core.tools.ledger import TimeText, checked_time
from trademesh.core.tools.render import enum_word, iso_time
from trademesh.core.tools.upstream import Upstream

__all__ = ["BACKTEST", "BacktestTools", "BarsText", "LatencyText"]

BACKTEST = "trademesh.backtest.v1.Backtest"
Json = dict[str, Any]
_RUN_ID = re.compile(r"[0-9a-f]{16}")
# StartBacktest checks that the run can be built (the advisor's model loads: seconds, more on
# a busy machine) before it answers.
_START_TIMEOUT_S = 60.0
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_SYMBOL = re.compile(r"[A-Z0-9]{1,16}/[A-Z0-9]{1,16}(:[A-Z0-9]{1,16})?")
MAX_POINTS = 500
# trademesh.core.backtest.config.LATENCY_MODES, as the MCP schema's choices (the hub checks the value).
LatencyText = Annotated[
    str,
    Field(
        description='when our orders reach the venue: "model" (after the latency model\'s 20 ms) or '
        '"recorded" (each at its live twin\'s recorded arrival)',
        json_schema_extra={"enum": ["model", "recorded"]},
    ),
]

# The timeframes the mesh knows, as the MCP schema's choices ("": each strategy's own; the hub
# checks the value).
BarsText = Annotated[
    str,
    Field(
        description='every trade_bars and bars source of the strategies on this timeframe, e.g. "1m" '
        'to run a strategy tuned on 1s bars over a venue\'s downloaded 1m history; "" for each '
        "strategy's own",
        json_schema_extra={"enum": ["", *TIMEFRAME_LABELS]},
    ),
]


def _status(value: int) -> str:
    return enum_word(bt.RunStatus.Name, value, "RUN_STATUS_")


def _metrics(m: bt.Metrics) -> Json:
    return {
        "strategy": m.strategy, "total_return": m.total_return, "cagr": m.cagr, "sharpe": m.sharpe,
        "sortino": m.sortino, "max_drawdown": m.max_drawdown, "calmar": m.calmar, "win_rate": m.win_rate,
        "profit_factor": m.profit_factor if m.HasField("profit_factor") else None, "exposure": m.exposure,
        "turnover": m.turnover, "fees": m.fees, "trades": m.trades, "start_equity": m.start_equity,
        "end_equity": m.end_equity,
    }  # fmt: skip


def _run(run: bt.RunSummary) -> Json:
    options = run.options
    return {
        "run_id": run.run_id, "status": _status(run.status), "created": iso_time(run.created_ns),
        "strategies": list(options.strategies), "symbols": list(options.symbols), "venue": options.venue,
        "from": iso_time(options.start_ns), "to": iso_time(options.end_ns), "llm": options.llm,
        "latency": options.latency, "bars": options.bars,
        "total": _metrics(run.total) if run.HasField("total") else None, "error": run.error or None,
    }  # fmt: skip


def _run_id(value: str) -> str:
    if not _RUN_ID.fullmatch(value):
        raise InvalidArgument.field("run_id", f"{shown(value)} is not a run id (16 hex digits)")
    return value


def _names(field: str, values: list[str], pattern: re.Pattern[str]) -> list[str]:
    for index, value in enumerate(values):
        if not pattern.fullmatch(value):
            raise InvalidArgument.field(f"{field}[{index}]", f"{shown(value)} is not a valid name")
    return values


class BacktestTools:
    def __init__(self, upstream: Upstream) -> None:
        self._up = upstream

    async def backtest_strategies(self) -> Json:
        """The strategies the backtest hub can run (its shipped examples and its own files):
        name, description and the symbols each trades by default."""
        got = await self._up.unary(
            BACKTEST, None, "ListStrategies", bt.ListStrategiesRequest(), bt.ListStrategiesResponse
        )
        return {"strategies": [{"name": s.name, "description": s.description, "symbols": list(s.symbols)}
                               for s in got.strategies]}  # fmt: skip

    async def backtest_start(
        self, strategies: list[str], start: TimeText, end: TimeText, symbols: list[str] | None = None,
        llm: str = "off", latency: LatencyText = "model", bars: BarsText = "", *,
        caller: Principal | None,
    ) -> Json:  # fmt: skip
        """Start a backtest: `strategies` (names from backtest_strategies) over the recorded
        history of [start, end) (ISO 8601), on `symbols` (default: each strategy's own), through
        the same engine cores as live, on the sim's matching engine; `llm` "off" (the advisor's
        deterministic synthesis) or "recorded" (the live session's LLM answers to the same
        signals, replayed); `latency` "model" (each order reaches the venue after the latency
        model's 20 ms) or "recorded" (each at its live twin's recorded arrival; an order
        without a twin keeps the model); `bars` a timeframe ("1m", ...) every trade_bars and
        bars source of the strategies runs on (a strategy tuned on 1s bars over a venue's
        downloaded 1m history; "" each strategy's own). It runs in the background:
        answers its run_id at once (and a notice when the range was cut to the recorded
        history); follow it with backtest_progress, then read backtest_result.
        Only for an API key holding the `trade` scope (a run spends the machine's cores)."""
        if caller is None:
            raise PermissionDenied("backtest_start acts for an API key holding the 'trade' scope: none given")
        options = bt.BacktestOptions(
            strategies=_names("strategies", strategies, _NAME),
            symbols=_names("symbols", symbols or [], _SYMBOL),
            start_ns=checked_time("start", start),
            end_ns=checked_time("end", end),
            llm=llm,
            latency=latency,
            bars=bars,
        )
        request = bt.StartBacktestRequest(options=options)
        got = await self._up.unary(
            BACKTEST,
            None,
            "StartBacktest",
            request,
            bt.StartBacktestResponse,
            caller=caller,
            timeout_s=_START_TIMEOUT_S,
        )
        answer: Json = {"run_id": got.run_id}
        if got.notice:
            answer["notice"] = got.notice
        return answer

    async def backtest_progress(self, run_id: str) -> Json:
        """A backtest's progress now: its status (running, done, failed, cancelled), the data
        time reached, the fraction of the range done, events/s, the seconds left (-1: not known
        yet) and why it failed."""
        request = bt.WatchProgressRequest(run_id=_run_id(run_id))
        got = await self._up.first(BACKTEST, None, "WatchProgress", request, bt.WatchProgressResponse)
        p = got.progress
        return {
            "run_id": p.run_id, "status": _status(p.status), "data_time": iso_time(p.data_ns),
            "fraction": p.fraction, "events": p.events, "events_per_s": p.events_per_s, "eta_s": p.eta_s,
            "error": p.error or None,
        }  # fmt: skip

    async def backtest_runs(self, limit: int = 20) -> Json:
        """The backtests run, newest first: options, status and the account's figures."""
        request = bt.ListRunsRequest(limit=bounded("limit", limit, 1, 500))
        got = await self._up.unary(BACKTEST, None, "ListRuns", request, bt.ListRunsResponse)
        return {"runs": [_run(r) for r in got.runs]}

    async def backtest_result(self, run_id: str, curve_points: int = 50) -> Json:
        """A finished backtest's results: its options, the figures per strategy and in total
        (return, CAGR, Sharpe, Sortino, max drawdown, Calmar, win rate, profit factor,
        exposure, turnover, fees, trades), the account's equity curve thinned to `curve_points`
        points (with the drawdown), and its round trips."""
        points = bounded("curve_points", curve_points, 2, MAX_POINTS)
        request = bt.GetResultRequest(run_id=_run_id(run_id))
        got = await self._up.unary(BACKTEST, None, "GetResult", request, bt.GetResultResponse)
        total: list[bt.EquityPoint] = next((list(c.points) for c in got.curves if c.strategy == "total"), [])
        step = max(1, len(total) // points)
        curve = [
            {"time": iso_time(p.ts_ns), "equity": p.equity, "drawdown": p.drawdown} for p in total[::step]
        ]
        trips = [
            {"strategy": t.strategy, "symbol": t.symbol, "side": t.side, "opened": iso_time(t.opened_ns),
             "closed": iso_time(t.closed_ns), "size": t.size, "entry": t.entry_price, "exit": t.exit_price,
             "pnl": t.pnl} for t in got.trips
        ]  # fmt: skip
        return {
            "run": _run(got.run),
            "metrics": [_metrics(m) for m in got.metrics],
            "curve": curve,
            "trips": trips,
        }
