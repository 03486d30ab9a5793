"""Run the full backtest chain over N synthetic 1-minute bars and print its peak RSS in KiB before
and after, with its events and decisions (tests/integration/test_backtest_memory.py runs it).

Given several N, each run is a process of its own, all at once, forked from this one once it has
imported the chain and the advisor's models' classes (trademesh.core.backtest.preload, as a sweep's fork
server does): a line per N, in their order. A forked process's peak RSS starts at its RSS at the
fork: the imports' passing peaks are the parent's, so none of them hides what a run added (in an
exec'd process, "before" was the imports' peak, 60 MiB over what stayed).
"""

from __future__ import annotations

import dataclasses
import os
import resource
import sys
import traceback
from pathlib import Path

import trademesh.core.backtest.preload  # noqa: F401 (imported before the forks, for each run)
from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.session import drive_sync
from trademesh.core.backtest.synthetic import Walk, bar_walk
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.strategy_file import ModuleDecl, load_strategy

TREND = Path("trademesh/core/detector/strategies/trend.toml")
MINUTE_NS = 60 * 10**9


def measure(bars: int) -> str:
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
    return f"{before} {after} {tape.events} {len(tape.decisions)}"


def _fork(bars: int) -> tuple[int, int]:
    """A process measuring `bars`: its pid, and the pipe its line comes on."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        code = 1
        try:
            os.write(write, measure(bars).encode())
            code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    os.close(write)
    return pid, read


def main(counts: list[int]) -> int:
    runs = [_fork(bars) for bars in counts]
    failed = 0
    for pid, read in runs:
        with os.fdopen(read, "rb") as pipe:
            line = pipe.read().decode()
        _, status = os.waitpid(pid, 0)
        failed |= os.waitstatus_to_exitcode(status) != 0
        print(line)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main([int(arg) for arg in sys.argv[1:]]))
