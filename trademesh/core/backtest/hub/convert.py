"""The hub's wire: a run's options to the backtest's config file, stored runs and results to
trademesh.backtest.v1 messages. Money goes out as decimal strings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.core.backtest.hub.strategies import StrategyFiles
from trademesh.core.backtest.results import BacktestRoundTrip, EquityPoint, FillRecord, Metrics
from trademesh.core.backtest.store import RunResult, RunSummary
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.errors import InvalidArgument

__all__ = [
    "MAX_RUN_STRATEGIES", "MAX_RUN_SYMBOLS", "STATUS", "config_text", "metrics_to_pb", "result_to_pb",
    "summary_to_pb",
]  # fmt: skip

STATUS = {
    "running": bt.RUN_STATUS_RUNNING,
    "done": bt.RUN_STATUS_DONE,
    "failed": bt.RUN_STATUS_FAILED,
    "cancelled": bt.RUN_STATUS_CANCELLED,
}
# A run's lists (the edge drops repeats, trademesh.core.platform.rpc.repeats): the hub checks a run by
# building it, a patch per strategy and symbol, before it starts. The shipped strategies are
# three; a venue's whole list of symbols is a sweep's work, not one run's.
MAX_RUN_STRATEGIES = 32
MAX_RUN_SYMBOLS = 64
_TEXT_OPTIONS = (
    "order_latency_ms", "report_latency_ms", "sample_s", "timeframe", "max_notional_share", "starting_equity",
    "llm", "latency", "bars",
)  # fmt: skip


def _iso(ns: int, field: str) -> str:
    if ns <= 0:
        raise InvalidArgument.field(field, "is required: ns since the Unix epoch")
    return datetime.fromtimestamp(ns // 1000 / 1e6, UTC).isoformat()


def config_text(options: bt.BacktestOptions, strategies: StrategyFiles) -> str:
    """The options as the TOML `trademesh backtest --config` reads (checked when it is read)."""
    if not options.strategies:
        raise InvalidArgument.field("options.strategies", "name at least one strategy (ListStrategies)")
    _bounded("options.strategies", options.strategies, MAX_RUN_STRATEGIES)
    _bounded("options.symbols", options.symbols, MAX_RUN_SYMBOLS)
    paths = [str(path) for path in strategies.paths(options.strategies, "options.strategies")]
    values: dict[str, object] = {
        "strategies": paths,
        "venue": options.venue or "sim",
        "symbols": list(options.symbols),
        "from": _iso(options.start_ns, "options.start_ns"),
        "to": _iso(options.end_ns, "options.end_ns"),
    }
    for name in _TEXT_OPTIONS:
        text = getattr(options, name)
        if text:
            values[name] = text
    return "".join(f"{key} = {_toml(value)}\n" for key, value in values.items())


def _bounded(field: str, values: Sequence[str], limit: int) -> None:
    if len(values) > limit:
        raise InvalidArgument.field(
            field, f"names {len(values)} different values; a run takes at most {limit}"
        )


def _toml(value: object) -> str:
    """A TOML value: a basic string, or an array of them. (json.dumps was not TOML: it wrote a
    character past U+FFFF as a surrogate pair's escapes, which TOML refuses, and the run's
    option was reported as the hub's file.)"""
    if isinstance(value, list):
        return f"[{', '.join(_toml(item) for item in value)}]"
    return '"' + "".join(_TOML_ESCAPES.get(c) or _escaped(c) for c in str(value)) + '"'


_TOML_ESCAPES = {'"': '\\"', "\\": "\\\\"}


def _escaped(c: str) -> str:
    """TOML's control characters escaped; every other character as it is (the file is UTF-8)."""
    return f"\\u{ord(c):04x}" if ord(c) < 0x20 or ord(c) == 0x7F else c


def _options(config: Mapping[str, str]) -> bt.BacktestOptions:
    names = [Path(p.strip()).stem for p in config.get("strategies", "").split(",") if p.strip()]
    symbols = [s.strip() for s in config.get("symbols", "").split(",") if s.strip()]
    options = bt.BacktestOptions(
        strategies=names, venue=config.get("venue", ""), symbols=symbols,
        start_ns=int(config.get("start_ns") or 0), end_ns=int(config.get("end_ns") or 0),
    )  # fmt: skip
    for name in _TEXT_OPTIONS:
        setattr(options, name, config.get(name, ""))
    return options


def metrics_to_pb(strategy: str, m: Metrics) -> bt.Metrics:
    message = bt.Metrics(
        strategy=strategy, total_return=format_decimal(m.total_return), cagr=m.cagr, sharpe=m.sharpe,
        sortino=m.sortino, max_drawdown=format_decimal(m.max_drawdown), calmar=m.calmar, win_rate=m.win_rate,
        exposure=m.exposure, turnover=m.turnover, fees=format_decimal(m.fees), trades=m.trades,
        start_equity=format_decimal(m.start_equity), end_equity=format_decimal(m.end_equity),
    )  # fmt: skip
    if m.profit_factor is not None:
        message.profit_factor = m.profit_factor
    return message


def summary_to_pb(run: RunSummary) -> bt.RunSummary:
    message = bt.RunSummary(
        run_id=run.run_id, status=STATUS.get(run.status, bt.RUN_STATUS_UNSPECIFIED),
        options=_options(run.config), created_ns=int(run.created_at.timestamp() * 1e9),
    )  # fmt: skip
    if run.total is not None:
        message.total.CopyFrom(metrics_to_pb("total", run.total))
    return message


def _curve(strategy: str, points: Sequence[EquityPoint], drawdowns: Sequence[Decimal]) -> bt.Curve:
    return bt.Curve(
        strategy=strategy,
        points=[
            bt.EquityPoint(
                ts_ns=p.ts_ns,
                equity=format_decimal(p.equity),
                exposure=format_decimal(p.exposure),
                drawdown=format_decimal(d),
            )
            for p, d in zip(points, drawdowns, strict=True)
        ],
    )


def _fill(f: FillRecord) -> bt.Fill:
    return bt.Fill(
        ts_ns=f.ts_ns, strategy=f.strategy, symbol=f.symbol, side=f.side, price=format_decimal(f.price),
        size=format_decimal(f.size), fee=format_decimal(f.fee),
    )  # fmt: skip


def _trip(t: BacktestRoundTrip) -> bt.RoundTrip:
    return bt.RoundTrip(
        strategy=t.strategy, symbol=t.symbol, side=t.side, opened_ns=t.opened_ns, closed_ns=t.closed_ns,
        size=format_decimal(t.size), entry_price=format_decimal(t.entry_price),
        exit_price=format_decimal(t.exit_price), fees=format_decimal(t.fees), pnl=format_decimal(t.pnl),
    )  # fmt: skip


def result_to_pb(result: RunResult) -> bt.GetResultResponse:
    total = result.metrics.get("total")
    summary = RunSummary(result.run_id, result.status, result.created_at, result.config, total)
    run = summary_to_pb(summary)
    run.error = result.error or ""
    curves = [_curve("total", result.curve, result.drawdowns.get("total", []))]
    curves += [
        _curve(name, points, result.drawdowns.get(name, []))
        for name, points in result.strategy_curves.items()
    ]
    return bt.GetResultResponse(
        run=run,
        metrics=[metrics_to_pb(name, m) for name, m in result.metrics.items()],
        curves=curves,
        fills=[_fill(f) for f in result.fills],
        trips=[_trip(t) for t in result.trips],
    )
