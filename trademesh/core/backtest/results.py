"""The records of a backtest run: what the harness fills in and metrics/report read.

Money (equity, prices, sizes, fees, PnL) is Decimal in the quote currency; times are Unix
nanoseconds (UTC). The records are plain values: their checks live where they are used
(`trademesh.core.backtest.metrics` raises InvalidArgument naming the bad field, e.g.
``fills[3].side``), so that a whole run's records are checked once with their positions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal

__all__ = ["BacktestRoundTrip", "EquityPoint", "FillRecord", "Metrics", "RunReport"]


@dataclass(frozen=True)
class EquityPoint:
    """The account's equity at `ts_ns` and the gross notional of its open positions then.

    The curve is a step function: a point's values hold until the next point."""

    ts_ns: int
    equity: Decimal
    exposure: Decimal


@dataclass(frozen=True)
class FillRecord:
    """One fill of a strategy's order: `side` is "buy" or "sell", `fee` in the quote currency
    (negative for a rebate)."""

    ts_ns: int
    strategy: str
    venue: str
    symbol: str
    side: str
    price: Decimal
    size: Decimal
    fee: Decimal


@dataclass(frozen=True)
class BacktestRoundTrip:
    """A position opened and closed: `side` is "long" or "short", `pnl` net of `fees`."""

    strategy: str
    venue: str
    symbol: str
    side: str
    opened_ns: int
    closed_ns: int
    size: Decimal
    entry_price: Decimal
    exit_price: Decimal
    fees: Decimal
    pnl: Decimal


@dataclass(frozen=True)
class Metrics:
    """A run's (or one strategy's) performance; the formulas are in trademesh.core.backtest.metrics.

    Money and the fractions computed from money are Decimal; ratios are float."""

    total_return: Decimal
    cagr: float
    sharpe: float
    sortino: float
    max_drawdown: Decimal
    calmar: float
    win_rate: float
    profit_factor: float | None
    exposure: float
    turnover: float
    fees: Decimal
    trades: int
    start_equity: Decimal
    end_equity: Decimal


@dataclass(frozen=True)
class RunReport:
    """What trademesh.core.backtest.report.write_report draws and lists for one run.

    `metrics` maps a strategy's name (and "total") to its figures, in the order the report
    shows them; `prices` maps a symbol to its (ts_ns, price) line, sorted by time."""

    run_id: str
    title: str
    config: Mapping[str, str]
    metrics: Mapping[str, Metrics]
    curve: Sequence[EquityPoint]
    fills: Sequence[FillRecord]
    prices: Mapping[str, Sequence[tuple[int, Decimal]]]
