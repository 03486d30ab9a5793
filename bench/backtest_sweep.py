"""A sweep of 100 parameter points (issue 43): the trend example's fast.period x slow.period, a grid
of 10 x 10, each point a whole backtest (the chain: detector, advisor, inspector, the replayed
venue, the ledger) over the same synthetic 1 s walk (trademesh.core.backtest.trial.SyntheticHistory), on
this machine's cores (trademesh.core.backtest.runners.LocalRunner, processes forked from a server that
imported the backtest once) and on a Dask distributed LocalCluster of as many single-threaded
worker processes (DaskRunner; `pip install -e '.[distributed]'`, which ./dev installs).

Measured, each engine --repeats times, alternated (local, dask, local, dask, ...):

- one point: run_trial of the first point in this process (the imports and the advisor's model
  loaded before), wall and CPU seconds: the unit a sweep is compared to;
- each engine's sweep: the runner started (the pool, or the cluster and its workers) and the
  100 trials run (`run_sweep`), wall seconds of each part; points/s of the run, and the run's
  wall over one point's (100 points on W workers cannot take less than 100 / W of it).

Every engine's results must equal the first local run's, field for field (a check, not a figure).

    .venv/bin/python bench/backtest_sweep.py                 # 100 points, 2 workers, 2 repeats
    .venv/bin/python bench/backtest_sweep.py --steps 600 --repeats 1 --no-save
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common as common

from trademesh.core.backtest.assemble import strategies_of
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.runners import DaskRunner, LocalRunner, TrialRunner
from trademesh.core.backtest.sweep import ParamSpace, TrialResult
from trademesh.core.backtest.synthetic import Walk
from trademesh.core.backtest.trial import SyntheticHistory, run_trial
from trademesh.core.backtest.walkforward import Sweep, prepare, run_sweep
from trademesh.core.detector.config import EXAMPLES_DIR

FAST = (4, 5, 6, 7, 8, 9, 10, 11, 12, 13)
SLOW = (20, 22, 24, 26, 28, 30, 32, 34, 36, 38)
S_NS = 1_000_000_000


def sweep_of(steps: int) -> Sweep:
    walk = Walk(steps=steps, seed=7)
    start, end = walk.start_ns, walk.start_ns + steps * S_NS
    trend = EXAMPLES_DIR / "trend.toml"
    config = BacktestConfig(strategies=(trend,), start_ns=start, end_ns=end, symbols=("BTC/USDT",))
    space = ParamSpace.of({"fast.period": FAST, "slow.period": SLOW})
    return prepare(config, strategies_of(config), space.grid(), SyntheticHistory(walk))


def one_point(sweep: Sweep) -> tuple[float, float]:
    (trial, *_) = sweep.trials(sweep.config.start_ns, sweep.config.end_ns)
    wall, cpu = time.perf_counter(), time.process_time()
    run_trial(trial)
    return time.perf_counter() - wall, time.process_time() - cpu


def run_engine(runner: TrialRunner, sweep: Sweep) -> tuple[float, float, list[TrialResult]]:
    """Seconds to start the runner, seconds to run the sweep, the results (best first)."""
    started = time.perf_counter()
    with runner:
        ready = time.perf_counter()
        results = run_sweep(sweep, runner)
        ran = time.perf_counter()
    return ready - started, ran - ready, results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=1800, help="seconds of the 1 s walk (default 1,800)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    started, machine = common.now_iso(), common.machine()
    sweep = sweep_of(args.steps)
    one_point(sweep)  # the first run's one-time costs (the model's classes, caches)
    runs: dict[str, list[tuple[float, float]]] = {"one_point": [], "local": [], "dask": []}
    first: list[TrialResult] | None = None
    for _ in range(args.repeats):
        runs["one_point"].append(one_point(sweep))
        for name, runner in (("local", LocalRunner(args.workers)), ("dask", DaskRunner(None, args.workers))):
            start_s, run_s, results = run_engine(runner, sweep)
            first = results if first is None else first
            if results != first:
                raise SystemExit(f"{name}'s results differ from the first local run's")
            runs[name].append((start_s, run_s))
    points = len(sweep.points)
    unit = common.median([wall for wall, _ in runs["one_point"]])
    figures: dict[str, Any] = {
        "one_point": {"wall_s": unit, "cpu_s": common.median([cpu for _, cpu in runs["one_point"]])}
    }
    rows = [["one point (in process)", "", f"{unit:.2f}", "", ""]]
    for name in ("local", "dask"):
        start_s = common.median([s for s, _ in runs[name]])
        run_s = common.median([r for _, r in runs[name]])
        figures[name] = {
            "start_s": start_s, "run_s": run_s, "points_per_s": points / run_s,
            "run_over_one_point": run_s / unit, "runs": runs[name],
        }  # fmt: skip
        rows.append([f"{name}, {points} points", f"{start_s:.2f}", f"{run_s:.2f}", f"{points / run_s:.2f}",
                     f"{run_s / unit:.1f}"])  # fmt: skip
    common.print_table(["run", "start s", "run s (wall)", "points/s", "run / one point"], rows)
    print(f"ideal run / one point on {args.workers} workers: {points / args.workers:.0f}")
    if not args.no_save:
        common.write_result(
            "backtest_sweep",
            {"started": started, "machine": machine, "command": common.command_line(), "points": points,
             "steps": args.steps, "workers": args.workers, "repeats": args.repeats, "figures": figures},
        )  # fmt: skip


if __name__ == "__main__":
    main()
