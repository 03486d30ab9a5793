"""A finished run's results: round trips, metrics per strategy and in total, the report's input.

Returns for Sharpe and Sortino are taken once a day over a run of 30 days or more; a shorter
run (a few minutes of the sim, a day of history) takes them at the equity curve's own step, so
its ratios say something (annualised all the same: trademesh.core.backtest.metrics).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from trademesh.core.backtest.metrics import by_strategy
from trademesh.core.backtest.results import BacktestRoundTrip, FillRecord, Metrics, RunReport
from trademesh.core.backtest.run import Tape
from trademesh.core.backtest.trips import attributed, round_trips
from trademesh.core.ledger.replay import UNATTRIBUTED, strategy_label

__all__ = ["RunOutcome", "outcome"]

_DAY_NS = 86_400 * 1_000_000_000


@dataclass(frozen=True)
class RunOutcome:
    tape: Tape
    fills: list[FillRecord]  # each of a strategy ("unattributed": no position's)
    trips: list[BacktestRoundTrip]
    metrics: dict[str, Metrics]
    period_ns: int

    def report(self, run_id: str, title: str, config: Mapping[str, str]) -> RunReport:
        prices = {symbol: list(line) for symbol, line in self.tape.prices.items()}
        for symbol in sorted({f.symbol for f in self.fills} - set(prices)):
            # Traded by the run against the book alone (no recorded trade): its fills' prices.
            prices[symbol] = [(f.ts_ns, f.price) for f in self.fills if f.symbol == symbol]
        return RunReport(run_id, title, dict(config), self.metrics, self.tape.curve, self.fills, prices)


def outcome(tape: Tape, sample_ns: int) -> RunOutcome:
    curve = tape.curve
    span = curve[-1].ts_ns - curve[0].ts_ns if curve else 0
    period = _DAY_NS if span >= 30 * _DAY_NS else sample_ns
    unattributed = strategy_label(UNATTRIBUTED)
    fills = [f if f.strategy else replace(f, strategy=unattributed) for f in attributed(tape.fills)]
    trips = round_trips(fills)
    metrics = by_strategy(curve, tape.strategy_curves, trips, fills, period)
    return RunOutcome(tape, fills, trips, metrics, period)
