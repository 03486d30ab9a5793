"""`trademesh backtest` against NautilusTrader end to end, as a user runs each (issue 62, "The
figures, honestly"): both as child processes, the same bars, the same EMA 10/30 cross, 0.1 % fees.

- trademesh: `trademesh backtest` (the installed command, .venv/bin/trademesh) over a year of 1m
  bars in the recorder's `bars` table of a scratch database (trademesh.core.backtest.synthetic.bar_walk's
  bars, COPied in as the recorder stores them, the schema and daily partitions made by the
  recorder's own code; no trades, no book: the run on history of bars alone, its orders filled
  on the bars), bench/strategies/ema_cross_10_30.toml (a signal in, through the advisor and the
  inspector with its stop and target; its own close request out), the venue of
  bench/strategies/sim_fees_0.1.toml (0.1 % fees), the advisor's options of
  bench/strategies/advisor_no_swing_cap.toml, its report written (--out: report.html and its
  PNGs) and the run stored in the database, as the command does.
- NautilusTrader 1.221.0 (`sh bench/peer_setup.sh nautilus`; bench/peer_nautilus.py in its own
  virtualenv): the same bars read from a CSV written beforehand, its BacktestEngine built (one
  simulated venue, bar execution, 0.1 % fees), the EMA 10/30 cross (market orders in and out),
  `run()`, and its reports (orders, fills, positions, account) written as CSV.

Each is timed on its process's CPU (`resource.getrusage(RUSAGE_CHILDREN)`, user + system, the
child's own; PostgreSQL's backend serving trademesh is another process, not counted) and the
wall clock, interpreter start and imports included. The pairs alternate (which goes first
alternating too) in one sitting; the figures are medians of --repeats; the load average is
recorded before each run.

    sh bench/peer_setup.sh nautilus
    .venv/bin/python bench/backtest_e2e.py                                   # 525,600 bars, 3 pairs
    .venv/bin/python bench/backtest_e2e.py --bars 20000 --repeats 1 --no-save
    .venv/bin/python bench/backtest_e2e.py --repeats 0 --py-spy /tmp/e2e.raw  # one profiled run only

`--py-spy FILE` runs `trademesh backtest` once more under py-spy (200 Hz, raw: for
bench/profile_summary.py; `pip install py-spy` into .venv), after the timed pairs.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _common as common
import asyncpg

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.backtest.synthetic import Walk, bar_walk
from trademesh.core.platform.config.env import database_url
from trademesh.core.recorder.migrate import migrate
from trademesh.core.recorder.partitions import DAY_NS, Partitions
from trademesh.core.recorder.schema import BARS

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
STRATEGY = HERE / "strategies/ema_cross_10_30.toml"
SIM_CONFIG = HERE / "strategies/sim_fees_0.1.toml"
ADVISOR_CONFIG = HERE / "strategies/advisor_no_swing_cap.toml"
POLICIES = HERE / "strategies/policies_no_stand_down.toml"
NAUTILUS_PYTHON = HERE / ".peer-nautilus-venv/bin/python"
TRADEMESH = ROOT / ".venv/bin/trademesh"
MINUTE_NS = 60 * 10**9
VOLATILITY = 0.004  # a minute's, of the log price (bench/backtest_chain.py's: entries clear the fees)
SIZE = "0.01"  # BTC a trade, Nautilus's (trademesh's advisor sizes its own)


def walk(count: int) -> Walk:
    return Walk(step_ns=MINUTE_NS, steps=count, volatility=VOLATILITY, levels=1)


def bars_of(count: int) -> list[bus.Bar]:
    return [item for item in bar_walk(walk(count)) if isinstance(item, bus.Bar)]


def copy_text(bars: list[bus.Bar], publish_ns: int) -> bytes:
    """The bars as COPY text in `bars`' columns (trademesh.core.recorder.rows: the timeframe's label, the
    VWAP the walk leaves empty NULL, not repaired)."""
    lines = [
        f"{b.venue}\t{b.symbol}\t1m\t{b.open_time_ns}\t{b.open}\t{b.high}\t{b.low}\t{b.close}\t{b.volume}"
        f"\t{b.quote_volume}\t{b.trade_count}\t\\N\tf\t{publish_ns}\n"
        for b in bars
    ]
    return "".join(lines).encode()


async def load_bars(url: str, bars: list[bus.Bar]) -> None:
    """The recorder's schema (its migrations), the days' partitions, then the bars in one COPY."""
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        partitions = Partitions()
        await partitions.load(conn)
        first, last = bars[0].open_time_ns, bars[-1].open_time_ns
        await partitions.cover_times(conn, BARS, [*range(first, last + 1, DAY_NS), last])
        columns = [name for name, _ in BARS.columns if name != "recorded_at"]
        await conn.copy_to_table("bars", source=memoryview(copy_text(bars, time.time_ns())), columns=columns)
    finally:
        await conn.close()


def write_csv(bars: list[bus.Bar], path: Path) -> None:
    """bench/peer_nautilus.py's input: close time ns, open, high, low, close, volume."""
    with path.open("w") as out:
        for b in bars:
            out.write(f"{b.open_time_ns + MINUTE_NS},{b.open},{b.high},{b.low},{b.close},{b.volume}\n")


def iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def trademesh_command(url: str, count: int, out: Path) -> list[str]:
    start = walk(count).start_ns
    return [
        str(TRADEMESH), "backtest", "--strategy", str(STRATEGY), "--venue", "sim", "--symbols", "BTC/USDT",
        "--from", iso(start), "--to", iso(start + (count + 1) * MINUTE_NS), "--sim-config", str(SIM_CONFIG),
        "--advisor-config", str(ADVISOR_CONFIG), "--policies", str(POLICIES), "--database-url", url,
        "--out", str(out), "--no-progress",
    ]  # fmt: skip


def nautilus_command(csv_path: Path, out: Path) -> list[str]:
    return [
        str(NAUTILUS_PYTHON), str(HERE / "peer_nautilus.py"), str(csv_path), "--size", SIZE,
        "--fast", "10", "--slow", "30", "--reports", str(out),
    ]  # fmt: skip


def children_cpu() -> float:
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def timed(command: list[str]) -> dict[str, Any]:
    """The child's CPU seconds and wall seconds, the load average before it, its last output line."""
    load = os.getloadavg()[0]
    cpu, wall = children_cpu(), time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    cpu, wall = children_cpu() - cpu, time.perf_counter() - wall
    if done.returncode != 0:
        raise SystemExit(f"{command[1]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return {"cpu_s": cpu, "wall_s": wall, "load_1m": load, "stdout": done.stdout}


def profiled(command: list[str], out: Path) -> None:
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    spy = [py_spy, "record", "--rate", "200", "--format", "raw", "--output", str(out), "--"]
    done = subprocess.run([*spy, *command], capture_output=True, text=True, cwd=ROOT)
    print(f"py-spy: exit {done.returncode}, {out}")


def summary_of(runs: dict[str, list[dict[str, Any]]], bars: int) -> dict[str, Any]:
    figures = {}
    for name, results in runs.items():
        cpu = common.median([r["cpu_s"] for r in results])
        figures[name] = {
            "cpu_s": cpu, "wall_s": common.median([r["wall_s"] for r in results]),
            "cpu_s_runs": [r["cpu_s"] for r in results], "wall_s_runs": [r["wall_s"] for r in results],
            "load_1m_runs": [r["load_1m"] for r in results], "bars_per_cpu_s": bars / cpu,
        }  # fmt: skip
    return figures


async def measure(args: argparse.Namespace, url: str, scratch: Path) -> dict[str, Any]:
    bars = bars_of(args.bars)
    started = time.perf_counter()
    await load_bars(url, bars)
    csv_path = scratch / "bars.csv"
    write_csv(bars, csv_path)
    print(f"{len(bars):,} bars into `bars` and {csv_path.name} in {time.perf_counter() - started:.1f} s")
    runs: dict[str, list[dict[str, Any]]] = {"trademesh": [], "nautilus": []}
    for repeat in range(args.repeats):
        order = ("trademesh", "nautilus") if repeat % 2 == 0 else ("nautilus", "trademesh")
        for name in order:
            out = scratch / f"{name}-{repeat}"
            command = (
                trademesh_command(url, args.bars, out)
                if name == "trademesh"
                else nautilus_command(csv_path, out)
            )
            last = timed(command)
            runs[name].append(last)
            print(
                f"{name} {repeat + 1}: {last['cpu_s']:.1f} cpu s, {last['wall_s']:.1f} s"
                f" (load {last['load_1m']:.2f})"
            )
    if args.py_spy is not None:
        profiled(trademesh_command(url, args.bars, scratch / "profiled"), args.py_spy)
    if not args.repeats:
        return {}
    peer = json.loads(runs["nautilus"][-1]["stdout"].strip().splitlines()[-1])
    return {
        "figures": summary_of(runs, args.bars),
        "trademesh_summary": runs["trademesh"][-1]["stdout"].splitlines()[:3],
        "nautilus_fills": len(peer["fills"]), "nautilus_run_cpu_s": peer["run_cpu_s"],
        "nautilus_reports_cpu_s": peer.get("reports_cpu_s"),
    }  # fmt: skip


async def main(args: argparse.Namespace) -> None:
    if not NAUTILUS_PYTHON.exists():
        raise SystemExit("NautilusTrader's virtualenv is missing: sh bench/peer_setup.sh nautilus")
    started, machine = common.now_iso(), common.machine()
    with tempfile.TemporaryDirectory() as scratch:
        async with common.scratch_database(database_url(args.database_url), "bt_e2e") as url:
            result = await measure(args, url, Path(scratch))
    if not result:
        return
    figures = result["figures"]
    ratio = figures["trademesh"]["cpu_s"] / figures["nautilus"]["cpu_s"]
    wall_ratio = figures["trademesh"]["wall_s"] / figures["nautilus"]["wall_s"]
    rows = [[name, f"{f['cpu_s']:.1f}", f"{f['wall_s']:.1f}", f"{f['bars_per_cpu_s']:,.0f}"]
            for name, f in figures.items()]  # fmt: skip
    common.print_table(["process", "cpu s", "wall s", "bars/cpu s"], rows)
    print(f"trademesh / NautilusTrader: {ratio:.2f}x CPU, {wall_ratio:.2f}x wall")
    print("\n".join(result["trademesh_summary"]))
    if args.no_save:
        return
    common.write_result(
        "backtest_e2e",
        {"started": started, "machine": machine, "command": common.command_line(), "bars": args.bars,
         "repeats": args.repeats, "nautilus_trader": "1.221.0", **result,
         "trademesh_over_nautilus_cpu": ratio, "trademesh_over_nautilus_wall": wall_ratio},
    )  # fmt: skip


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--bars", type=int, default=525_600)
    parser.add_argument("--repeats", type=int, default=3, help="pairs, alternated")
    parser.add_argument("--no-save", action="store_true", help="print only (keep the results file)")
    parser.add_argument("--py-spy", type=Path, metavar="FILE", help="profile one more trademesh run")
    parser.add_argument("--database-url", help="the server (default: $DATABASE_URL, else the local one)")
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_parse()))
