"""A finished run told: its figures as lines of text, and its report written to a directory.

A run's id is a digest of its config: the same run over the same data has the same id (and
the same report, byte for byte).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.domain.decimals import format_decimal

if TYPE_CHECKING:  # the engine's: the hub names its runs (run_id) without importing it
    from trademesh.core.backtest.outcome import RunOutcome

__all__ = ["config_view", "run_id", "summary", "write"]


def config_view(config: BacktestConfig) -> dict[str, str]:
    """The config as text, for the report and the run's record (no database URL: a secret)."""
    shown = {k: v for k, v in asdict(config).items() if k != "database_url"}
    shown["strategies"] = ", ".join(str(p) for p in config.strategies)
    shown["symbols"] = ", ".join(config.symbols)
    if not config.bars:  # the option's default left out: a run's id stays what it was before it
        del shown["bars"]
    return {k: "" if v is None else str(v) for k, v in sorted(shown.items())}


def run_id(config: BacktestConfig) -> str:
    text = "\n".join(f"{k}={v}" for k, v in config_view(config).items())
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def summary(done: RunOutcome) -> list[str]:
    tape = done.tape
    lines = [
        f"{tape.events:,} events · {len(tape.signals)} signals · {len(tape.decisions)} decisions · "
        f"{sum(1 for d in tape.decisions if d.HasField('intent'))} intents · {len(done.fills)} fills · "
        f"{len(done.trips)} round trips",
    ]
    paid: dict[str, Decimal] = {}
    for payment in tape.funding:
        paid[payment.asset] = paid.get(payment.asset, Decimal(0)) + payment.amount
    if paid:  # a perpetual held across funding times (+ received, - paid)
        amounts = " · ".join(f"{format_decimal(amount)} {asset}" for asset, amount in sorted(paid.items()))
        recorded = tape.funding_recorded
        rates = f"{recorded} at recorded rates, {len(tape.funding) - recorded} at the sim config's"
        lines.append(f"funding: {len(tape.funding)} payments ({rates}) · {amounts}")
    lines += _liquidations(done)
    for name, m in done.metrics.items():
        lines.append(
            f"{name}: return {m.total_return:.4%} · sharpe {m.sharpe:.2f} · "
            f"max drawdown {m.max_drawdown:.4%} · win rate {m.win_rate:.1%} · "
            f"trades {m.trades} · fees {m.fees:.4f}"
        )
    return lines


def _liquidations(done: RunOutcome) -> list[str]:
    """The venue's liquidations of the run's positions (docs/derivatives.md, "Margin and liquidation"):
    each symbol's price, and the fees they paid; none without any."""
    fills = [e.fill for e in done.tape.orders if e.fill is not None and e.fill.liquidation]
    if not fills:
        return []
    each = ", ".join(f"{f.symbol} {format_decimal(f.size)} at {format_decimal(f.price)}" for f in fills)
    fees: dict[str, Decimal] = {}
    for fill in fills:
        fees[fill.fee_asset] = fees.get(fill.fee_asset, Decimal(0)) + fill.fee
    paid = " · ".join(f"{format_decimal(amount)} {asset}" for asset, amount in sorted(fees.items()))
    return [f"liquidations: {len(fills)} ({each}) · fees {paid}"]


def write(done: RunOutcome, config: BacktestConfig, directory: Path) -> Path:
    # matplotlib (0.4 CPU s to import) only for a run asked for its report: not the hub's runs.
    from trademesh.core.backtest.report import write_report

    directory.mkdir(parents=True, exist_ok=True)
    identity = run_id(config)
    report = done.report(identity, f"backtest {identity}", config_view(config))
    return write_report(report, directory)
