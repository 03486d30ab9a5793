"""trademesh's whole backtest chain against NautilusTrader's `run()`, in process (issue 62, "The
figures, honestly"): the same bars as bench/backtest_e2e.py (a year of 1m bars of
trademesh.core.backtest.synthetic.bar_walk), no database, no report, the same fills model (orders filled on
the bars, each walked open, the extreme nearer the open, the other, close, as Nautilus's bar
execution walks it).

- chain: what `trademesh backtest` runs once the bars are loaded (trademesh.core.backtest.assemble: the
  run on history of bars alone, its `trade_bars` source fed the bars, its orders filled on them),
  `trademesh.core.backtest.session.drive_sync` and the outcome (trademesh.core.backtest.outcome: round trips,
  curves, metrics): per bar the replayed venue and its matching, the detector
  (bench/strategies/ema_cross_10_30.toml), the advisor's context and its decisions for the
  signals (bench/strategies/advisor_no_swing_cap.toml), the inspector's checks, its protective
  pairs and the strategy's close requests, the ledger's books, what the strategy hears back,
  the equity curve; 0.1 % fees (bench/strategies/sim_fees_0.1.toml). Its build (`build`) is
  timed apart (`chain_build`).
- detector: the same bars through the detector's stage alone (trademesh.core.backtest.detect.DetectStage,
  the same strategy, evaluated once per bar, no orders): the chain over it is what the rest of
  the chain costs.
- nautilus: NautilusTrader 1.221.0's `BacktestEngine.run()` (bench/peer_nautilus.py in its own
  virtualenv, a child process reporting its own `time.process_time`): the EMA 10/30 cross with
  its own indicators, market orders in and out, its matching engine on the bars, its portfolio,
  cache and account, and its post-run analysis; `nautilus_setup_and_run` adds the engine's
  set-up and `add_data`. No reports (bench/backtest_e2e.py has them).

The three alternate in one sitting; the figures are CPU seconds (time.process_time), medians of
--repeats; the load average is recorded before each. bench/backtest_peer.py's loop over three
engine cores (detector, matching, portfolio, bench glue) is the engines' floor, not a run a user
can make.

    .venv/bin/python bench/backtest_inprocess.py                      # 525,600 bars, 3 repeats
    .venv/bin/python bench/backtest_inprocess.py --bars 20000 --repeats 1 --no-save
    .venv/bin/python bench/backtest_inprocess.py --bars 20000 --tape   # the whole tape hashed

`--tape` runs the chain once and prints bench/backtest_chain.py's hashes of its tape (every part
and the whole): a change meant to keep every result prints the same before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common as common
import backtest_chain
import backtest_e2e as e2e

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.bar_feed import fed_from_bars
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.detect import DetectStage
from trademesh.core.backtest.outcome import outcome
from trademesh.core.backtest.run import Backtest
from trademesh.core.backtest.session import drive_sync
from trademesh.core.domain.model import Timeframe

SYMBOL = "BTC/USDT"


def config(count: int) -> BacktestConfig:
    start = e2e.walk(count).start_ns
    return BacktestConfig(
        strategies=(e2e.STRATEGY,), start_ns=start, end_ns=start + (count + 1) * e2e.MINUTE_NS,
        symbols=(SYMBOL,), timeframe="1m", sim_config=e2e.SIM_CONFIG, advisor_config=e2e.ADVISOR_CONFIG,
        policies=e2e.POLICIES,
    )  # fmt: skip


def built(count: int) -> Backtest:
    """As `trademesh backtest` builds it on history of bars alone
    (trademesh.core.backtest.assemble.on_bars)."""
    cfg = config(count)
    first = build(cfg)
    fed, _ = fed_from_bars(first.strategies, "sim", lambda symbol, timeframe: True)
    backtest = build(cfg, fed)
    backtest.fill_on_bars({SYMBOL: Timeframe(60)})
    return backtest


def run_chain(bars: list[bus.Bar]) -> dict[str, Any]:
    load = os.getloadavg()[0]
    cpu = time.process_time()
    backtest = built(len(bars))
    build_cpu, cpu = time.process_time() - cpu, time.process_time()
    tape = drive_sync(backtest, bars)
    done = outcome(tape, backtest.settings.sample_ns)
    counts = {"signals": len(tape.signals), "fills": len(tape.fills), "trips": len(done.trips)}
    return {"cpu_s": time.process_time() - cpu, "build_cpu_s": build_cpu, "load_1m": load, "counts": counts}


def run_detector(bars: list[bus.Bar]) -> dict[str, Any]:
    load = os.getloadavg()[0]
    stage = DetectStage(built(len(bars)).strategies, e2e.walk(len(bars)).start_ns)
    signals, feed = 0, stage.feed
    cpu = time.process_time()
    for bar in bars:
        signals += len(feed("sim", [], bar.open_time_ns + e2e.MINUTE_NS, [bar]).signals)
    return {"cpu_s": time.process_time() - cpu, "load_1m": load, "counts": {"signals": signals}}


def run_nautilus(csv_path: Path) -> dict[str, Any]:
    load = os.getloadavg()[0]
    command = [str(e2e.NAUTILUS_PYTHON), str(e2e.HERE / "peer_nautilus.py"), str(csv_path), "--size",
               e2e.SIZE, "--fast", "10", "--slow", "30"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    peer = json.loads(done.stdout.strip().splitlines()[-1])
    return {"cpu_s": peer["run_cpu_s"], "setup_and_run_cpu_s": peer["setup_and_run_cpu_s"], "load_1m": load,
            "counts": {"fills": len(peer["fills"])}}  # fmt: skip


def figures_of(runs: dict[str, list[dict[str, Any]]], bars: int) -> dict[str, Any]:
    out = {}
    for name, results in runs.items():
        cpu = common.median([r["cpu_s"] for r in results])
        out[name] = {
            "cpu_s": cpu, "cpu_s_runs": [r["cpu_s"] for r in results],
            "load_1m_runs": [r["load_1m"] for r in results], "us_per_bar": 1e6 * cpu / bars,
            "counts": results[-1]["counts"],
        }  # fmt: skip
    out["chain_build"] = {"cpu_s": common.median([r["build_cpu_s"] for r in runs["chain"]])}
    out["nautilus_setup_and_run"] = {
        "cpu_s": common.median([r["setup_and_run_cpu_s"] for r in runs["nautilus"]])
    }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-save", action="store_true", help="print only (keep the results file)")
    parser.add_argument("--tape", action="store_true", help="hash the whole tape of one run instead")
    args = parser.parse_args()
    if args.tape:
        for name, hashed in backtest_chain.hashes_of(built(args.bars), e2e.bars_of(args.bars)).items():
            print(f"{name:>18}  {hashed}")
        return
    if not e2e.NAUTILUS_PYTHON.exists():
        raise SystemExit("NautilusTrader's virtualenv is missing: sh bench/peer_setup.sh nautilus")
    started, machine = common.now_iso(), common.machine()
    bars = e2e.bars_of(args.bars)
    runs: dict[str, list[dict[str, Any]]] = {"chain": [], "detector": [], "nautilus": []}
    with tempfile.TemporaryDirectory() as scratch:
        csv_path = Path(scratch) / "bars.csv"
        e2e.write_csv(bars, csv_path)
        for repeat in range(args.repeats):
            runs["nautilus"].append(run_nautilus(csv_path))
            runs["chain"].append(run_chain(bars))
            runs["detector"].append(run_detector(bars))
            print(
                f"repeat {repeat + 1}: " + ", ".join(f"{n} {r[-1]['cpu_s']:.1f} s" for n, r in runs.items())
            )
    figures = figures_of(runs, args.bars)
    ratios = {
        "chain_over_nautilus_run": figures["chain"]["cpu_s"] / figures["nautilus"]["cpu_s"],
        "chain_over_detector": figures["chain"]["cpu_s"] / figures["detector"]["cpu_s"],
        "detector_over_nautilus_run": figures["detector"]["cpu_s"] / figures["nautilus"]["cpu_s"],
    }
    rows = [[name, f"{f['cpu_s']:.2f}", f"{f.get('us_per_bar', 0):.1f}", f.get("counts", "")]
            for name, f in figures.items()]  # fmt: skip
    common.print_table(["run", "cpu s", "us/bar", "counts"], rows)
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}x")
    if not args.no_save:
        common.write_result(
            "backtest_inprocess",
            {"started": started, "machine": machine, "command": common.command_line(), "bars": args.bars,
             "repeats": args.repeats, "nautilus_trader": "1.221.0", "figures": figures, "ratios": ratios},
        )  # fmt: skip


if __name__ == "__main__":
    main()
