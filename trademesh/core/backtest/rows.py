"""A finished run as the rows of the backtest tables (trademesh/core/backtest/migrations), and those rows
read back as the run's records: pure, no I/O.

Each child table's columns after (run_id[, seq]) are the record's own fields, in order, so a
record goes in as its values (Decimal stays Decimal: NUMERIC, never a float) and comes back by
name. Enums are stored as their lower-case words ("buy", "intent", "long").
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.backtest.metrics import TOTAL, drawdowns
from trademesh.core.backtest.results import BacktestRoundTrip, EquityPoint, FillRecord, Metrics
from trademesh.core.domain.model import Execution
from trademesh.signal.v1 import signal_pb2 as sig

if TYPE_CHECKING:  # the run's engine: the store reads runs back without it
    from trademesh.core.backtest.outcome import RunOutcome

__all__ = [
    "COLUMNS",
    "children",
    "fill_of",
    "metrics_of",
    "point_of",
    "trip_of",
]

Row = tuple[Any, ...]

_METRICS = tuple(f.name for f in fields(Metrics))
_FILL = tuple(f.name for f in fields(FillRecord))
_TRIP = tuple(f.name for f in fields(BacktestRoundTrip))
_ORDER = ("ts_ns", "client_order_id", "order_id", "symbol", "side", "type", "status", "price",
          "size", "filled_size", "reason")  # fmt: skip
_SIGNAL = ("signal_id", "ts_ns", "symbol", "direction", "conviction", "strategy_id")
_DECISION = ("decision_id", "signal_id", "outcome", "intent_id")

# Each child table's columns, in the order children() gives its rows' values.
COLUMNS: dict[str, tuple[str, ...]] = {
    "backtest_metrics": ("run_id", "strategy", *_METRICS),
    "backtest_fills": ("run_id", "seq", *_FILL),
    "backtest_orders": ("run_id", "seq", *_ORDER),
    "backtest_trips": ("run_id", "seq", *_TRIP),
    "backtest_equity": ("run_id", "strategy", "seq", "ts_ns", "equity", "exposure", "drawdown"),
    "backtest_signals": ("run_id", "seq", *_SIGNAL),
    "backtest_decisions": ("run_id", "seq", *_DECISION),
}


def children(run_id: str, done: RunOutcome) -> dict[str, list[Row]]:
    """Every child table's rows of the run, by table (COLUMNS gives their columns)."""
    tape = done.tape
    return {
        "backtest_metrics": [
            (run_id, name, *(getattr(m, c) for c in _METRICS)) for name, m in done.metrics.items()
        ],
        "backtest_fills": [(run_id, i, *(getattr(f, c) for c in _FILL)) for i, f in enumerate(done.fills)],
        "backtest_orders": [(run_id, i, *_order(e)) for i, e in enumerate(tape.orders)],
        "backtest_trips": [(run_id, i, *(getattr(t, c) for c in _TRIP)) for i, t in enumerate(done.trips)],
        "backtest_equity": list(_equity(run_id, {TOTAL: tape.curve, **tape.strategy_curves})),
        "backtest_signals": [(run_id, i, *_signal(s)) for i, s in enumerate(tape.signals)],
        "backtest_decisions": [(run_id, i, *_decision(d)) for i, d in enumerate(tape.decisions)],
    }


def metrics_of(row: Mapping[str, Any]) -> Metrics:
    return Metrics(**{name: row[name] for name in _METRICS})


def fill_of(row: Mapping[str, Any]) -> FillRecord:
    return FillRecord(**{name: row[name] for name in _FILL})


def trip_of(row: Mapping[str, Any]) -> BacktestRoundTrip:
    return BacktestRoundTrip(**{name: row[name] for name in _TRIP})


def point_of(row: Mapping[str, Any]) -> EquityPoint:
    return EquityPoint(row["ts_ns"], row["equity"], row["exposure"])


def _equity(run_id: str, curves: Mapping[str, Sequence[EquityPoint]]) -> Iterator[Row]:
    for name, curve in curves.items():
        for seq, (point, drawdown) in enumerate(zip(curve, drawdowns(curve), strict=True)):
            yield run_id, name, seq, point.ts_ns, point.equity, point.exposure, drawdown


def _order(execution: Execution) -> Row:
    o = execution.order
    return (
        execution.ts_event_ns, o.client_order_id, o.order_id, o.symbol, o.side.value, o.type.value,
        o.status.value, o.price, o.size, o.filled_size, o.status_reason,
    )  # fmt: skip


def _signal(signal: sig.Signal) -> Row:
    direction = _word(sig.Direction.Name, signal.direction, "DIRECTION_")
    return (
        signal.signal_id, signal.ts_signal_ns, signal.symbol, direction, signal.conviction,
        signal.strategy_id,
    )  # fmt: skip


def _decision(decision: am.Decision) -> Row:
    intent_id = decision.intent.intent_id if decision.HasField("intent") else None
    outcome = _word(am.Outcome.Name, decision.outcome, "OUTCOME_")
    return decision.decision_id, decision.signal_id, outcome, intent_id


def _word(name_of: Any, value: int, prefix: str) -> str:
    """DIRECTION_LONG -> "long"; a value the enum does not know stays its number."""
    try:
        return str(name_of(value)).removeprefix(prefix).lower()
    except ValueError:
        return str(value)
