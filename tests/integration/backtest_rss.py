"""Run the full backtest chain over N synthetic 1-minute bars in this process and print its
peak RSS in KiB before and after (tests/integration/test_backtest_memory.py runs it)."""

from __future__ import annotations

import dataclasses
import resource
import sys
from pathlib import Path

from core.backtest.assemble import build
from core.backtest.config import BacktestConfig
from core.backtest.session import drive_sync
from core.backtest.synthetic import Walk, bar_walk
from core.detector.engine.catalog import Catalog
from core.detector.strategy_file import ModuleDecl, load_strategy

TREND = Path("core/detector/strategies/trend.toml")
MINUTE_NS = 60 * 10**9


def main(bars: int) -> None:
    spec = Walk(step_ns=MINUTE_NS, steps=bars, volatility=0.0015, levels=1)
    base = load_strategy(TREND, Catalog.builtin())
    source = ModuleDecl("bars", "bars", {"timeframe": "1m"})
    modules = tuple(source if m.type == "trade_bars" else m for m in base.modules)
    strategy = dataclasses.replace(base, venues=("sim",), symbols=("BTC/USDT",), modules=modules)
    config = BacktestConfig(
        strategies=(TREND,), start_ns=spec.start_ns, end_ns=spec.start_ns + (bars + 1) * MINUTE_NS,
        symbols=("BTC/USDT",), timeframe="1m", sample_s=3600,
    )  # fmt: skip
    backtest = build(config, [strategy])
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tape = drive_sync(backtest, bar_walk(spec))
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(before, after, tape.events, len(tape.decisions))


if __name__ == "__main__":
    main(int(sys.argv[1]))
