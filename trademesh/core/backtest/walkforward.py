"""A sweep run by a runner, over the whole range or walking forward through its folds
(trademesh.core.backtest.folds): each fold's points are run in sample, the best by the metric is run on
the fold's test part, out of sample. Every fold's in-sample trials go to the runner as one
batch, then every fold's test, so the workers stay busy across folds.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from trademesh.core.backtest.assemble import build, symbols_of
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.folds import Fold, folds
from trademesh.core.backtest.runners import OnDone, TrialRunner
from trademesh.core.backtest.sweep import Point, TrialResult, check_point, ranked
from trademesh.core.backtest.trial import RecordedHistory, SyntheticHistory, Trial
from trademesh.core.detector.replay import Strategy
from trademesh.core.platform.errors import InvalidArgument

__all__ = ["FoldResult", "Sweep", "prepare", "run_sweep", "walk_forward"]


@dataclass(frozen=True)
class Sweep:
    config: BacktestConfig  # the whole range; no database URL
    points: tuple[Point, ...]
    strategies: tuple[tuple[Strategy, ...], ...]  # per point, the point applied
    source: SyntheticHistory | RecordedHistory
    metric: str = "sharpe"
    of: str = "total"  # whose metric: "total" (the account) or the strategy's id

    def trials(self, start_ns: int, end_ns: int) -> list[Trial]:
        config = dataclasses.replace(self.config, start_ns=start_ns, end_ns=end_ns)
        return [
            Trial(i, point, config, strategies, self.source)
            for i, (point, strategies) in enumerate(zip(self.points, self.strategies, strict=True))
        ]


def prepare(
    config: BacktestConfig,
    strategies: Sequence[Strategy],
    points: Sequence[Point],
    source: SyntheticHistory | RecordedHistory,
    metric: str = "sharpe",
    of: str = "total",
) -> Sweep:
    """The sweep, every point checked first (a value a module refuses is an InvalidArgument
    naming it) and the run's options with it (build), before any trial starts."""
    if len(strategies) != 1:
        raise InvalidArgument.field("strategies", "a sweep varies one strategy's parameters: name one")
    if not points:
        raise InvalidArgument.field("param", "the sweep has no points")
    (base,) = strategies
    applied = tuple((check_point(base, point),) for point in points)
    config = dataclasses.replace(config, symbols=tuple(symbols_of(list(applied[0]))), database_url="")
    build(config, applied[0])
    ranked([], metric, of)  # the metric's name checked
    if of not in ("total", base.id):
        raise InvalidArgument.field("of", f"{of!r} is neither 'total' nor the strategy {base.id!r}")
    return Sweep(config, tuple(points), applied, source, metric, of)


def run_sweep(sweep: Sweep, runner: TrialRunner, on_done: OnDone | None = None) -> list[TrialResult]:
    """Every point over the whole range, best first."""
    results = runner.run(sweep.trials(sweep.config.start_ns, sweep.config.end_ns), on_done)
    return ranked(results, sweep.metric, sweep.of)


@dataclass(frozen=True)
class FoldResult:
    fold: Fold
    in_sample: list[TrialResult]  # every point on the in-sample part, best first
    out_of_sample: TrialResult  # the best point on the test part

    @property
    def best(self) -> TrialResult:
        return self.in_sample[0]


def walk_forward(
    sweep: Sweep, runner: TrialRunner, count: int, anchored: bool = False, on_done: OnDone | None = None
) -> list[FoldResult]:
    cuts = folds(sweep.config.start_ns, sweep.config.end_ns, count, anchored)
    batch = [t for fold in cuts for t in sweep.trials(fold.train_start_ns, fold.train_end_ns)]
    results = runner.run(batch, on_done)
    size = len(sweep.points)
    in_sample = [ranked(results[i * size : (i + 1) * size], sweep.metric, sweep.of) for i in range(len(cuts))]
    tests = [
        sweep.trials(fold.test_start_ns, fold.test_end_ns)[best[0].index]
        for fold, best in zip(cuts, in_sample, strict=True)
    ]
    tested = runner.run(tests, on_done)
    return [FoldResult(*parts) for parts in zip(cuts, in_sample, tested, strict=True)]
