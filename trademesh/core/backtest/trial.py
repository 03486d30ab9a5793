"""One trial of a sweep: a backtest of a point's strategies over a range, run wherever a runner
sends it (another process, another machine). Everything in a `Trial` is a plain picklable
value: the config, the strategies with the point applied (parsed already: a worker needs no
strategy file), and a source spec that the worker opens itself:

- `SyntheticHistory(walk)`: the seeded random walk (trademesh.core.backtest.synthetic), for tests and
  benchmarks; only its events inside the trial's range are read;
- `RecordedHistory()`: the recorder's tables, read by the worker from the database its own
  environment names ($DATABASE_URL): the URL never travels with a trial.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Protocol

from trademesh.core.backtest.assemble import build, run_recorded
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.outcome import RunOutcome, outcome
from trademesh.core.backtest.run import Backtest
from trademesh.core.backtest.session import drive_sync, item_time
from trademesh.core.backtest.sweep import Point, TrialResult
from trademesh.core.backtest.synthetic import Walk, bar_walk, walk
from trademesh.core.detector.replay import Strategy

__all__ = ["RecordedHistory", "SyntheticHistory", "Trial", "TrialHistory", "run_trial"]


class TrialHistory(Protocol):
    def run(self, config: BacktestConfig, backtest: Backtest) -> RunOutcome: ...


@dataclass(frozen=True)
class SyntheticHistory:
    walk: Walk
    bars: bool = False  # bar_walk (closed bars, then the book and a trade) instead of walk

    def run(self, config: BacktestConfig, backtest: Backtest) -> RunOutcome:
        events = bar_walk(self.walk) if self.bars else walk(self.walk)
        inside = (e for e in events if config.start_ns <= item_time(e) < config.end_ns)
        return outcome(drive_sync(backtest, inside), backtest.settings.sample_ns)


@dataclass(frozen=True)
class RecordedHistory:
    def run(self, config: BacktestConfig, backtest: Backtest) -> RunOutcome:
        from trademesh.core.platform.config.env import database_url

        return asyncio.run(run_recorded(replace(config, database_url=database_url(None)), backtest))


@dataclass(frozen=True)
class Trial:
    index: int
    point: Point
    config: BacktestConfig  # its range is the trial's; no database URL
    strategies: tuple[Strategy, ...]  # the point applied
    source: SyntheticHistory | RecordedHistory


def run_trial(trial: Trial) -> TrialResult:
    """The trial's backtest, in this process (a runner's worker calls it)."""
    backtest = build(trial.config, trial.strategies)
    done = trial.source.run(trial.config, backtest)
    return TrialResult(trial.index, trial.point, dict(done.metrics), done.tape.events)
