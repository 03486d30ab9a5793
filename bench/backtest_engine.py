"""The detector's engine as a backtest drives it (issue 18): one symbol, one core, no clock.

A backtest has no live coalescing: after every event the shell calls evaluate_due(now) with
the event's own time, and never ticks (bars close by the event time of the trades alone).
Workloads, each on a fresh Engine (the built-in catalog) with one active patch, started cold
(no warm-up history):

- trades_1s: the trend example as shipped (trademesh/core/detector/strategies/trend.toml: `trade_bars`
  at 1s, 1000 ms lateness), fed --trades synthetic trades through engine.feed: the in-engine
  bar builder's trade-level replay (goal >= 200,000 trades/s).
- trades_1m: the same graph with the `trade_bars` source at 1m.
- bars_1m: the trend graph with its `trade_bars` source swapped for the `bars` source at 1m
  (closed bars from the bar service, as trademesh/core/detector/history.py turns candles into events),
  fed --bars closed 1m BarValues (525,600: one year): the detector's share of the year
  through the full chain (goal: well above 17,500 bars/s).
- baseline_trades / baseline_bars: the same loop (feed, then evaluate_due) over the same
  events on an engine with no patch: what iterating, routing and the call cost alone.

Events are made before the clock starts, the same in every repeat (a seeded random walk:
trades every 50 ms on average, exponential gaps, prices on a 0.01 tick moving 0.0023 % a trade
(about 3 % a day, as BTC), sizes on 0.001; bars of one minute with OHLC from a walk of
0.1 % a minute). Reported per workload: the median events/s over --repeats runs (CPU time of this
single-threaded process, and wall time), µs per event, the ratio of the baseline's CPU per
event to the workload's (the share of the bare loop's speed the workload keeps), evaluations,
signals and a digest of every signal (patch time, event time, direction, score, rules) that
must not change when the engine is optimised.

    .venv/bin/python bench/backtest_engine.py                         # 3 repeats
    .venv/bin/python bench/backtest_engine.py --profile /tmp/backtest --repeats 1
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
import hashlib
import io
import pstats
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from trademesh.core.detector.config import EXAMPLES_DIR
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine, EngineConfig
from trademesh.core.detector.engine.io import Event
from trademesh.core.detector.engine.outputs import EmittedSignal
from trademesh.core.detector.engine.values import BarValue, TradeValue
from trademesh.core.detector.strategy_file import ModuleDecl, Strategy, build_patches, load_strategy

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

VENUE = "sim"
SYMBOL = "BTC/USDT"
S_NS = 1_000_000_000
START_NS = 1_767_225_600 * S_NS  # 2026-01-01T00:00:00Z
YEAR_MINUTES = 525_600
WORKLOADS = ("trades_1s", "trades_1m", "baseline_trades", "bars_1m", "baseline_bars")


def strategy(workload: str, catalog: Catalog) -> Strategy:
    """The trend example on one symbol, its bar source as the workload says."""
    base = load_strategy(EXAMPLES_DIR / "trend.toml", catalog)
    source = {
        "trades_1s": ModuleDecl("bars", "trade_bars", {"timeframe": "1s", "lateness_ms": 1000}),
        "trades_1m": ModuleDecl("bars", "trade_bars", {"timeframe": "1m", "lateness_ms": 1000}),
        "bars_1m": ModuleDecl("bars", "bars", {"timeframe": "1m"}),
    }[workload]
    modules = tuple(source if m.type == "trade_bars" else m for m in base.modules)
    return dataclasses.replace(base, symbols=(SYMBOL,), venues=(VENUE,), modules=modules)


def make_trades(count: int, seed: int, per_s: float = 20.0) -> list[TradeValue]:
    """`count` trades in event-time order: exponential gaps (mean 1/per_s s), a random walk."""
    rng = random.Random(seed)
    mean_gap_ns = S_NS / per_s
    price, ts, out = 30_000.0, START_NS, []
    for n in range(count):
        ts += 1 + int(rng.expovariate(1.0) * mean_gap_ns)
        price = max(0.01, round(price * (1 + rng.gauss(0, 0.000023)), 2))
        size = round(rng.expovariate(1.0) * 0.05, 3) + 0.001
        out.append(TradeValue(SYMBOL, ts, price, size, rng.random() < 0.5, str(n + 1)))
    return out


def make_bars(count: int, seed: int, start_ns: int = START_NS, timeframe_s: int = 60) -> list[BarValue]:
    """`count` closed bars in order from start_ns, a random walk (a bar's close opens the next)."""
    rng = random.Random(seed)
    price, out, step_ns = 30_000.0, [], timeframe_s * S_NS
    for n in range(count):
        open_ = price
        close = round(open_ * (1 + rng.gauss(0, 0.001)), 2)
        high = round(max(open_, close) * (1 + abs(rng.gauss(0, 0.0003))), 2)
        low = round(min(open_, close) * (1 - abs(rng.gauss(0, 0.0003))), 2)
        volume = round(rng.expovariate(1.0) * 60, 3)
        trades = 1 + int(rng.expovariate(1.0) * 1_200)
        out.append(BarValue(SYMBOL, timeframe_s, start_ns + n * step_ns, open_, high, low, close, volume,
                            volume * (high + low) / 2, trades))  # fmt: skip
        price = close
    return out


def build_engine(workload: str) -> Engine:
    """A fresh engine: no patch for a baseline, else the workload's one patch, warmed from
    closed bars of its source's timeframe that end at START_NS (as a backtest would warm it
    from the recorder's bars), then active."""
    catalog = Catalog.builtin()
    engine = Engine(catalog, time.perf_counter_ns, EngineConfig())
    if workload.startswith("baseline"):
        return engine
    for patch in build_patches(engine, strategy(workload, catalog), START_NS):
        timeframe_s = 1 if workload == "trades_1s" else 60
        need = max(engine.history_needed(patch.id).values())
        history = make_bars(need, 0, START_NS - need * timeframe_s * S_NS, timeframe_s)
        engine.warm(patch.id, [(VENUE, bar) for bar in history])
        patch.activate(START_NS)
    return engine


@dataclasses.dataclass
class Run:
    events: int
    cpu_s: float
    wall_s: float
    evaluations: int
    signals: int
    digest: str


def replay(engine: Engine, events: Sequence[Event]) -> tuple[Run, list[EmittedSignal]]:
    """Each event: feed, then evaluate_due at the event's time (a trade's, a bar's close)."""
    feed, evaluate_due = engine.feed, engine.evaluate_due
    evaluations, signals = 0, []
    gc.collect()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for event in events:
        feed(VENUE, event)
        done = evaluate_due(
            event.ts_event_ns if type(event) is TradeValue else event.close_time_ns  # type: ignore[union-attr]
        )
        if done.evaluations:
            evaluations += done.evaluations
            signals += done.signals
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return Run(len(events), cpu, wall, evaluations, len(signals), digest(signals)), signals


def digest(signals: Sequence[EmittedSignal]) -> str:
    """A short hash of what the signals say (not their ids' randomness: ids are derived)."""
    text = "\n".join(
        f"{s.signal_id} {s.signal_time_ns} {s.ts_event_ns} {s.direction.value} {s.score!r} {s.conviction!r} "
        + " ".join(f"{r.name}:{r.value!r}:{r.fired}" for r in s.rules)
        for s in signals
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def events_of(workload: str, args: argparse.Namespace, seed: int) -> Sequence[Event]:
    if workload.endswith("trades") or workload.startswith("trades"):
        return make_trades(args.trades, seed)
    return make_bars(args.bars, seed)


def summarise(runs: list[Run]) -> dict[str, Any]:
    cpu_rates = [r.events / r.cpu_s for r in runs]
    return {
        "events_per_run": runs[0].events,
        "events_per_s_cpu_median": common.median(cpu_rates),
        "events_per_s_cpu_range": [min(cpu_rates), max(cpu_rates)],
        "events_per_s_wall_median": common.median([r.events / r.wall_s for r in runs]),
        "us_per_event_cpu_median": common.median([1e6 * r.cpu_s / r.events for r in runs]),
        "evaluations_per_run": runs[0].evaluations,
        "signals_per_run": runs[0].signals,
        "signals_digest": runs[0].digest,
        "runs": [dataclasses.asdict(r) for r in runs],
    }


def ratios(result: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The baseline's CPU per event ÷ the workload's: the share of the bare loop's rate kept."""
    key = "us_per_event_cpu_median"
    out = {}
    for workload, r in result.items():
        baseline = "baseline_trades" if workload.startswith("trades") else "baseline_bars"
        if not workload.startswith("baseline") and baseline in result:
            out[f"{workload}_of_baseline"] = result[baseline][key] / r[key]
    return out


def profile(workload: str, args: argparse.Namespace, out: Path) -> str:
    """cProfile of one run of the workload: the top functions by own time."""
    events = events_of(workload, args, 1)
    engine = build_engine(workload)
    profiler = cProfile.Profile()
    profiler.enable()
    replay(engine, events)
    profiler.disable()
    profiler.dump_stats(str(out))
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(20)
    return text.getvalue()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trades", type=int, default=500_000, help="trades per run (default 500,000)")
    parser.add_argument("--bars", type=int, default=YEAR_MINUTES, help="1m bars per run (default 525,600)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per workload, interleaved (default 3)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma separated")
    parser.add_argument("--profile", type=Path, help="cProfile one run of each workload to FILE.<workload>")
    parser.add_argument("--result", default="backtest_engine", help="bench/results/<name>.json")
    parser.add_argument("--no-save", action="store_true", help="print only; write no result file")
    return parser


def main() -> None:
    args = _parser().parse_args()
    workloads = [w for w in args.workloads.split(",") if w]
    unknown = set(workloads) - set(WORKLOADS)
    if unknown:
        raise SystemExit(f"unknown workloads: {sorted(unknown)}")
    started, machine = common.now_iso(), common.machine()
    if args.profile is not None:
        for workload in workloads:
            print(f"--- {workload}\n{profile(workload, args, args.profile.with_suffix(f'.{workload}'))}")
        return
    runs: dict[str, list[Run]] = {w: [] for w in workloads}
    for _ in range(args.repeats):  # interleaved: a noisy neighbour hits every workload alike
        cache: dict[str, Sequence[Event]] = {}
        for workload in workloads:
            kind = "trades" if "trades" in workload else "bars"
            if kind not in cache:
                cache.clear()  # one list of events in memory at a time
                cache[kind] = events_of(kind, args, 1)  # the same events in every repeat
            runs[workload].append(replay(build_engine(workload), cache[kind])[0])
    result = {w: summarise(r) for w, r in runs.items()}
    shares = ratios(result)
    _print(result, shares, args)
    if not args.no_save:
        payload = {
            "benchmark": "backtest_engine",
            "command": common.command_line(),
            "started": started,
            "finished": common.now_iso(),
            "machine": machine,
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "result": result,
            "ratios": shares,
        }
        print(f"results: {common.write_result(args.result, payload)}")


def _print(result: dict[str, dict[str, Any]], shares: dict[str, float], args: argparse.Namespace) -> None:
    print(f"\nbacktest_engine: one patch, evaluate_due after every event, median of {args.repeats} runs")
    rows: list[list[Any]] = []
    for workload, r in result.items():
        low, high = r["events_per_s_cpu_range"]
        rows.append([workload, r["events_per_run"], r["events_per_s_cpu_median"], f"{low:,.0f}-{high:,.0f}",
                     r["events_per_s_wall_median"], r["us_per_event_cpu_median"], r["evaluations_per_run"],
                     r["signals_per_run"], r["signals_digest"]])  # fmt: skip
    headers = ["workload", "events", "events/s (cpu)", "range", "events/s (wall)", "µs/event", "evals",
               "signals", "digest"]  # fmt: skip
    common.print_table(headers, rows)
    for name, share in shares.items():
        print(f"{name}: {share:.3f} (baseline CPU per event ÷ the workload's)")
    if "bars_1m" in result:
        rate = result["bars_1m"]["events_per_s_cpu_median"]
        print(f"bars_1m: a year of 1m bars ({YEAR_MINUTES:,}) in {YEAR_MINUTES / rate:.1f} s of CPU")


if __name__ == "__main__":
    main()
