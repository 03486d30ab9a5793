"""The full backtest chain on a year of synthetic 1-minute bars (issue 18: 525,600 bars through
the chain with the trend example in < 30 s on one core, >= 17,500 bars/s).

- chain: `trademesh.core.backtest` as `trademesh backtest` runs it
  (trademesh.core.backtest.assemble.build), the trend example with its `trade_bars` source
  swapped for the bar service's 1m `bars`; the advisor on 1m bars and its shipped 1m model;
  the inspector's default policies; the replayed sim venue. Per bar
  (trademesh.core.backtest.synthetic.bar_walk): the closed bar, a book snapshot of 5 levels a
  side around its close, and a trade at the close, all at the bar's close.
- detector: the baseline, in the same run: the same items through the detector's stage only
  (its engine fed what the patches take, here the bars; evaluated once per bar), so the ratio
  says what the rest of the chain costs over the strategy engine alone.

Both are timed on the process's CPU (time.process_time) and the wall clock; the figures are
medians of --repeats runs, alternating.

    .venv/bin/python bench/backtest_chain.py                     # 525,600 bars, 3 repeats
    .venv/bin/python bench/backtest_chain.py --bars 50000 --repeats 1 --no-save
    .venv/bin/python bench/backtest_chain.py --bars 50000 --tape   # the whole tape hashed, no timing

`--py-spy FILE` samples the first chain run (this process, py-spy at 200 Hz; py-spy installed in
the venv, not a project dependency) into a raw profile for `bench/profile_summary.py FILE`.

`--tape` runs the chain once and prints a hash of each part of its tape and of the whole: every
signal, the decisions as kept, the verdicts, order updates, fills, both curves, the round trips
and metrics (trademesh.core.backtest.outcome) and `Tape.digest` (the decisions whole, stages included). A
change meant to keep every result prints the same hashes before and after.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common as common

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.detect import DetectStage
from trademesh.core.backtest.outcome import outcome
from trademesh.core.backtest.run import Backtest
from trademesh.core.backtest.session import drive_sync, item_time
from trademesh.core.backtest.synthetic import Walk, bar_walk
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.strategy_file import ModuleDecl, Strategy, load_strategy
from trademesh.marketdata.v1 import marketdata_pb2 as md

TREND = Path(__file__).resolve().parents[1] / "trademesh/core/detector/strategies/trend.toml"
S_NS = 1_000_000_000
LEVELS = 1  # the book each bar brings: its best bid and ask around the close


def trend_on_bars() -> Strategy:
    base = load_strategy(TREND, Catalog.builtin())
    source = ModuleDecl("bars", "bars", {"timeframe": "1m"})
    modules = tuple(source if m.type == "trade_bars" else m for m in base.modules)
    return dataclasses.replace(base, venues=("sim",), symbols=("BTC/USDT",), modules=modules)


VOLATILITY = 0.004  # a minute's, of the log price


def items(bars: int) -> list[Any]:
    # 0.4 % a minute: the advisor's validation counts each round trip's fees (issue 37), and a
    # 1-minute ATR of the walk's former 0.15 % cleared them on no signal of the year (no intent,
    # no order: the chain measured without its order path). At 0.4 % about 40 % of the signals
    # become intents and orders fill, as the chain does live.
    return list(bar_walk(Walk(step_ns=60 * S_NS, steps=bars, volatility=VOLATILITY, levels=LEVELS)))


def config(bars: int, start_ns: int) -> BacktestConfig:
    return BacktestConfig(
        strategies=(TREND,), start_ns=start_ns, end_ns=start_ns + (bars + 1) * 60 * S_NS,
        symbols=("BTC/USDT",), timeframe="1m", sample_s=3600,
    )  # fmt: skip


def run_chain(data: list[Any], bars: int) -> tuple[float, float, dict[str, int]]:
    backtest = build(config(bars, Walk().start_ns), [trend_on_bars()])
    cpu, wall = time.process_time(), time.perf_counter()
    tape = drive_sync(backtest, data)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    counts = {
        "signals": len(tape.signals), "intents": sum(1 for d in tape.decisions if d.HasField("intent")),
        "fills": len(tape.fills), "events": tape.events,
    }  # fmt: skip
    return cpu, wall, counts


def sampled(out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling this process into `out` (raw) until stopped with SIGINT."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [py_spy, "record", "--pid", str(os.getpid()), "--rate", "200", "--format", "raw",
               "--output", str(out)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)  # attached before the run starts (a bench, not a test: no condition to wait on)
    return process


def run_detector(data: list[Any]) -> tuple[float, float, dict[str, int]]:
    stage = DetectStage([trend_on_bars()], Walk().start_ns)
    signals = 0
    cpu, wall = time.process_time(), time.perf_counter()
    at = -1
    events: list[md.MarketEvent] = []
    bars: list[bus.Bar] = []
    for item in [*data, None]:
        when = -2 if item is None else item_time(item)
        if when != at and (events or bars):
            signals += len(stage.feed("sim", events, at, bars).signals)
            events, bars = [], []
        at = when
        if isinstance(item, md.MarketEvent):
            events.append(item)
        elif isinstance(item, bus.Bar):
            bars.append(item)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return cpu, wall, {"signals": signals}


def tape_hashes(bars: int) -> dict[str, str]:
    """Each part of the chain's tape over `bars` bars hashed (its count, then 16 hex digits), and
    the whole (`total`)."""
    return hashes_of(build(config(bars, Walk().start_ns), [trend_on_bars()]), items(bars))


def hashes_of(backtest: Backtest, data: list[Any]) -> dict[str, str]:
    """`backtest`'s whole tape over `data` hashed, part by part, and the whole (`total`)."""
    tape = drive_sync(backtest, data)
    done = outcome(tape, backtest.settings.sample_ns)
    parts: dict[str, list[Any]] = {
        "signals": [s.SerializeToString(deterministic=True) for s in tape.signals],
        "decisions (kept)": [d.SerializeToString(deterministic=True) for d in tape.decisions],
        "verdicts": tape.verdicts, "order updates": tape.orders, "fills": tape.fills,
        "curve": tape.curve, "strategy curves": sorted(tape.strategy_curves.items()),
        "round trips": done.trips, "metrics": sorted(done.metrics.items()),
        "events, data time": [tape.events, tape.data_ns], "digest": [tape.digest.hexdigest()],
    }  # fmt: skip
    hashes = {name: f"{len(values)} {_hash(values)}" for name, values in parts.items()}
    hashes["total"] = _hash(list(hashes.values()))
    return hashes


def _hash(values: list[Any]) -> str:
    """Of each value's bytes (a message's, serialised) or its repr (dataclasses of Decimals)."""
    digest = hashlib.sha256()
    for value in values:
        digest.update(value if isinstance(value, bytes) else repr(value).encode())
    return digest.hexdigest()[:16]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-save", action="store_true", help="print only (keep the results file)")
    parser.add_argument("--tape", action="store_true", help="hash the whole tape of one run instead")
    parser.add_argument("--py-spy", type=Path, metavar="FILE", help="profile the first chain run")
    args = parser.parse_args()
    if args.tape:
        for name, hashed in tape_hashes(args.bars).items():
            print(f"{name:>18}  {hashed}")
        return
    started, machine = common.now_iso(), common.machine()
    data = items(args.bars)
    runs: dict[str, list[tuple[float, float, dict[str, int]]]] = {"chain": [], "detector": []}
    for repeat in range(args.repeats):
        runs["detector"].append(run_detector(data))
        profiler = sampled(args.py_spy) if args.py_spy is not None and repeat == 0 else None
        runs["chain"].append(run_chain(data, args.bars))
        if profiler is not None:
            profiler.send_signal(signal.SIGINT)
            print(f"py-spy: exit {profiler.wait(timeout=60)}, {args.py_spy}")
    rows, figures = [], {}
    for name, results in runs.items():
        cpu = common.median([r[0] for r in results])
        wall = common.median([r[1] for r in results])
        figures[name] = {
            "cpu_s": cpu,
            "wall_s": wall,
            "bars_per_cpu_s": args.bars / cpu,
            "counts": results[-1][2],
        }
        rows.append([name, f"{cpu:.1f}", f"{wall:.1f}", f"{args.bars / cpu:,.0f}", results[-1][2]])
    ratio = figures["chain"]["cpu_s"] / figures["detector"]["cpu_s"]
    common.print_table(["workload", "cpu s", "wall s", "bars/cpu s", "counts"], rows)
    print(f"chain / detector CPU: {ratio:.1f}x")
    if args.no_save:
        return
    common.write_result(
        "backtest_chain",
        {"started": started, "machine": machine, "command": common.command_line(), "bars": args.bars,
         "repeats": args.repeats, "figures": figures, "chain_over_detector": ratio},
    )  # fmt: skip


if __name__ == "__main__":
    main()
