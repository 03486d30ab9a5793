"""A sweep's results as text tables: each point's total return, Sharpe, max drawdown and
trades (of the account, or of the strategy ranked by), best first; walking forward, each
fold's ranges, its best point in sample and that point's figures out of sample."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from trademesh.core.backtest.results import Metrics
from trademesh.core.backtest.sweep import TrialResult
from trademesh.core.backtest.walkforward import FoldResult

__all__ = ["fold_table", "sweep_table"]

_NS = 1_000_000_000


def _figures(m: Metrics) -> list[str]:
    return [f"{m.total_return:.4%}", f"{m.sharpe:.2f}", f"{m.max_drawdown:.4%}", str(m.trades)]


def _aligned(rows: list[list[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def sweep_table(results: Sequence[TrialResult], metric: str, of: str) -> str:
    rows = [["rank", "point", "return", "sharpe", "max dd", "trades"]]
    for rank, result in enumerate(results, 1):
        rows.append([str(rank), result.point.label(), *_figures(result.metrics[of])])
    return f"{len(results)} points, ranked by {metric} of {of}:\n{_aligned(rows)}"


def _when(ns: int) -> str:
    return datetime.fromtimestamp(ns / _NS, UTC).strftime("%Y-%m-%d %H:%M:%S")


def fold_table(done: Sequence[FoldResult], metric: str, of: str) -> str:
    head = ["fold", "in sample", "out of sample", "best point"]
    figures = ["return", "sharpe", "max dd", "trades"]
    rows = [[*head, *(f"is {f}" for f in figures), *(f"oos {f}" for f in figures)]]
    for fold in done:
        cut = fold.fold
        rows.append(
            [
                str(cut.index + 1),
                f"{_when(cut.train_start_ns)} .. {_when(cut.train_end_ns)}",
                f"{_when(cut.test_start_ns)} .. {_when(cut.test_end_ns)}",
                fold.best.point.label(),
                *_figures(fold.best.metrics[of]),
                *_figures(fold.out_of_sample.metrics[of]),
            ]
        )
    return f"{len(done)} folds, the best point of each by {metric} of {of}:\n{_aligned(rows)}"
