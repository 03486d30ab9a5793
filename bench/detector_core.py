"""The detector's engine alone, one thread, under a simulated clock (issue 13: ≥ 100,000 bars/s).

No processes, no I/O: an Engine (the built-in catalog, time.perf_counter_ns as the module timer,
as the service does) runs one patch per symbol of a strategy, warmed from closed bars and
activated, then takes pre-built events in simulated time. After each event the shell's call,
evaluate_due(now), runs; the clock ticks (engine.tick) ten times per simulated second.
Workloads, each over --symbols symbols (one patch each):

- bars: the trend example (trademesh/core/detector/strategies/trend.toml) with its `trade_bars` source
  swapped for the `bars` source (closed bars from the bar service), fed one closed 1s BarValue
  per symbol per simulated second through engine.on_bar: every bar is one evaluation of the
  whole trend graph (EMA 12/26, RSI 14, volume spike, score, signal sink). This is the
  bars/s figure.
- trades: the trend example as shipped (`trade_bars`: 1s bars built from trades with trademesh.core.bars'
  Decimal code), fed --trades-per-bar trades per symbol per simulated second through
  engine.on_trade; a bar closes (and the graph evaluates) when a trade or tick passes its end
  plus the lateness. The trades/s figure.
- baseline_bars / baseline_trades: the same loops with a minimal patch (the same source,
  bar_fields, one SMA of 20): the ratio workload ÷ baseline says what the trend graph costs
  beyond routing, coalescing and the source.

Reported per workload: events/s and µs per event per patch (each event reaches one patch
here) from the process's CPU time (the run is single-threaded: one core), the wall-clock
rate too, evaluations and signals; the median of --repeats runs, each on a fresh engine.

    .venv/bin/python bench/detector_core.py                       # 10 symbols, 5 repeats
    .venv/bin/python bench/detector_core.py --profile /tmp/core.prof --repeats 1
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import gc
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
from trademesh.core.detector.engine.values import BarValue, TradeValue
from trademesh.core.detector.strategy_file import (
    ModuleDecl,
    Strategy,
    build_patches,
    load_strategy,
    parse_strategy,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

VENUE = "sim"
S_NS = 1_000_000_000
TICK_NS = S_NS // 10  # the service's default tick_hz = 10
_BASES = ("BTC", "ETH", "SOL", "XRP", "ADA", "DOGE", "AVAX", "LINK", "DOT", "LTC", "BNB", "TRX")
WORKLOADS = ("bars", "baseline_bars", "trades", "baseline_trades")

_BASELINE = """
id = "baseline"
venues = ["sim"]
symbols = ["BTC/USDT"]
cables = ["bars.bar -> ohlcv.bar", "ohlcv.close -> sma.value"]

[[modules]]
id = "bars"
type = "trade_bars"
params = { timeframe = "1s", lateness_ms = 1000 }

[[modules]]
id = "ohlcv"
type = "bar_fields"

[[modules]]
id = "sma"
type = "sma"
params = { period = 20 }
"""


def strategy(workload: str, symbols: Sequence[str], catalog: Catalog) -> Strategy:
    """The workload's strategy on these symbols; the `bars` variants take closed bars."""
    if workload.startswith("baseline"):
        base = parse_strategy(_BASELINE, "baseline", catalog)
    else:
        base = load_strategy(EXAMPLES_DIR / "trend.toml", catalog)
    modules = base.modules
    if workload.endswith("bars"):
        modules = tuple(
            ModuleDecl(m.id, "bars", {"timeframe": "1s"}) if m.type == "trade_bars" else m for m in modules
        )
    return dataclasses.replace(base, symbols=tuple(symbols), venues=(VENUE,), modules=modules)


def make_bars(symbols: Sequence[str], start_s: int, seconds: int, seed: int) -> list[list[BarValue]]:
    """Closed 1s bars, a random walk per symbol: one list per second, a bar per symbol."""
    rng = random.Random(seed)
    price = dict.fromkeys(symbols, 100.0)
    out = []
    for second in range(start_s, start_s + seconds):
        row = []
        for symbol in symbols:
            open_ = price[symbol]
            close = open_ * (1 + rng.gauss(0, 0.002))
            high, low = max(open_, close) * 1.0005, min(open_, close) * 0.9995
            volume = rng.expovariate(1.0) * 10
            row.append(BarValue(symbol, 1, second * S_NS, open_, high, low, close, volume, volume * close, 7))
            price[symbol] = close
        out.append(row)
    return out


def make_trades(
    symbols: Sequence[str], start_s: int, seconds: int, per_bar: int, seed: int
) -> list[TradeValue]:
    """Trades in event-time order: `per_bar` per symbol per second, a random walk, unique ids."""
    rng = random.Random(seed)
    price = dict.fromkeys(symbols, 100.0)
    step_ns = S_NS // (per_bar * len(symbols))
    out = []
    ts = start_s * S_NS
    for n in range(seconds * per_bar * len(symbols)):
        symbol = symbols[n % len(symbols)]
        price[symbol] = round(price[symbol] * (1 + rng.gauss(0, 0.0005)), 2)
        size = round(rng.expovariate(1.0), 3) + 0.001
        out.append(TradeValue(symbol, ts, price[symbol], size, rng.random() < 0.5, str(n)))
        ts += step_ns
    return out


def build_engine(workload: str, symbols: Sequence[str], history: list[list[BarValue]]) -> Engine:
    """A fresh engine with the workload's patches, warmed from closed bars and active."""
    catalog = Catalog.builtin()
    engine = Engine(catalog, time.perf_counter_ns, EngineConfig())
    start_ns = history[0][0].open_time_ns
    patches = build_patches(engine, strategy(workload, symbols, catalog), start_ns)
    for patch in patches:
        bars: list[tuple[str, Event]] = [
            (VENUE, row[i]) for row in history for i, s in enumerate(symbols) if s == patch.symbol
        ]
        engine.warm(patch.id, bars)
        patch.activate(history[-1][0].close_time_ns)
    return engine


@dataclasses.dataclass
class Run:
    events: int
    cpu_s: float
    wall_s: float
    evaluations: int
    signals: int
    ticks: int


def run_bars(engine: Engine, bars: list[list[BarValue]]) -> Run:
    """Each second: every symbol's closed bar (on_bar, then evaluate_due), then ten ticks."""
    evaluations = signals = ticks = events = 0
    on_bar, evaluate_due, tick = engine.on_bar, engine.evaluate_due, engine.tick
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for row in bars:
        now = row[0].close_time_ns
        for bar in row:
            on_bar(VENUE, bar)
            done = evaluate_due(now)
            evaluations += done.evaluations
            signals += len(done.signals)
        events += len(row)
        for k in range(10):
            done = tick(now + k * TICK_NS)
            evaluations += done.evaluations
            signals += len(done.signals)
            ticks += 1
    return Run(events, time.process_time() - cpu0, time.perf_counter() - wall0, evaluations, signals, ticks)


def run_trades(engine: Engine, trades: list[TradeValue]) -> Run:
    """Trades in event-time order (on_trade, then evaluate_due at the trade's time); a tick
    whenever simulated time passes the next 100 ms."""
    evaluations = signals = ticks = 0
    on_trade, evaluate_due, tick = engine.on_trade, engine.evaluate_due, engine.tick
    next_tick = trades[0].ts_event_ns - trades[0].ts_event_ns % TICK_NS + TICK_NS
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for trade in trades:
        now = trade.ts_event_ns
        while next_tick <= now:
            done = tick(next_tick)
            evaluations += done.evaluations
            signals += len(done.signals)
            ticks += 1
            next_tick += TICK_NS
        on_trade(VENUE, trade)
        done = evaluate_due(now)
        evaluations += done.evaluations
        signals += len(done.signals)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return Run(len(trades), cpu, wall, evaluations, signals, ticks)


def one_run(workload: str, args: argparse.Namespace, seed: int) -> Run:
    symbols = [f"{base}/USDT" for base in _BASES[: args.symbols]]
    history = make_bars(symbols, 1_000, args.history, seed)
    engine = build_engine(workload, symbols, history)
    start_s = 1_000 + args.history
    if workload.endswith("bars"):
        bars = make_bars(symbols, start_s, args.bar_seconds, seed + 1)
        gc.collect()
        return run_bars(engine, bars)
    trades = make_trades(symbols, start_s, args.trade_seconds, args.trades_per_bar, seed + 1)
    gc.collect()
    return run_trades(engine, trades)


def summarise(runs: list[Run]) -> dict[str, Any]:
    cpu_rates = [r.events / r.cpu_s for r in runs]
    wall_rates = [r.events / r.wall_s for r in runs]
    return {
        "events_per_run": runs[0].events,
        "events_per_s_cpu_median": common.median(cpu_rates),
        "events_per_s_cpu_range": [min(cpu_rates), max(cpu_rates)],
        "events_per_s_wall_median": common.median(wall_rates),
        # Each event reaches one patch (a patch per symbol): per event = per event per patch.
        "us_per_event_per_patch_cpu_median": common.median([1e6 * r.cpu_s / r.events for r in runs]),
        "evaluations_per_run": runs[0].evaluations,
        "signals_per_run": runs[0].signals,
        "ticks_per_run": runs[0].ticks,
        "runs": [dataclasses.asdict(r) for r in runs],
    }


def profile(workload: str, args: argparse.Namespace, out: Path) -> str:
    """cProfile of one run of the workload: the top functions by own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    one_run(workload, args, 1)
    profiler.disable()
    profiler.dump_stats(str(out))
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(18)
    return text.getvalue()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=10, choices=range(1, len(_BASES) + 1), metavar="1..12")
    parser.add_argument(
        "--history", type=int, default=60, help="closed bars each patch warms from (default 60)"
    )
    parser.add_argument("--bar-seconds", type=int, default=3_000, help="simulated seconds of bars per run")
    parser.add_argument("--trade-seconds", type=int, default=300, help="simulated seconds of trades per run")
    parser.add_argument(
        "--trades-per-bar", type=int, default=10, help="trades per symbol per 1s bar (default 10)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="runs per workload, interleaved (default 5)")
    parser.add_argument("--workloads", default=",".join(WORKLOADS), help="comma separated")
    parser.add_argument("--profile", type=Path, help="cProfile one run of each workload to FILE.<workload>")
    parser.add_argument("--result", default="detector_core", help="bench/results/<name>.json")
    parser.add_argument("--no-save", action="store_true", help="print only; write no result file")
    return parser


def main() -> None:
    args = _parser().parse_args()
    workloads = [w for w in args.workloads.split(",") if w]
    started, machine = common.now_iso(), common.machine()
    if args.profile is not None:
        for workload in workloads:
            print(f"--- {workload}\n{profile(workload, args, args.profile.with_suffix(f'.{workload}'))}")
        return
    runs: dict[str, list[Run]] = {w: [] for w in workloads}
    for repeat in range(args.repeats):  # interleaved: a noisy neighbour hits every workload alike
        for workload in workloads:
            runs[workload].append(one_run(workload, args, 1 + repeat))
    result = {w: summarise(r) for w, r in runs.items()}
    ratios = _ratios(result)
    _print(result, ratios, args)
    if not args.no_save:
        payload = {
            "benchmark": "detector_core",
            "command": common.command_line(),
            "started": started,
            "finished": common.now_iso(),
            "machine": machine,
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "result": result,
            "ratios": ratios,
        }
        print(f"results: {common.write_result(args.result, payload)}")


def _ratios(result: dict[str, dict[str, Any]]) -> dict[str, float]:
    """CPU per event of a workload ÷ its baseline's."""
    key = "us_per_event_per_patch_cpu_median"
    return {
        f"{w}_over_baseline": result[w][key] / result[f"baseline_{w}"][key]
        for w in ("bars", "trades")
        if w in result and f"baseline_{w}" in result
    }


def _print(result: dict[str, dict[str, Any]], ratios: dict[str, float], args: argparse.Namespace) -> None:
    print(
        f"\ndetector_core: {args.symbols} symbols (a patch each), median of {args.repeats} runs, one thread"
    )
    rows: list[list[Any]] = []
    for workload, r in result.items():
        low, high = r["events_per_s_cpu_range"]
        rows.append([
            workload,
            r["events_per_run"],
            r["events_per_s_cpu_median"],
            f"{low:,.0f}-{high:,.0f}",
            r["events_per_s_wall_median"],
            r["us_per_event_per_patch_cpu_median"],
            r["evaluations_per_run"],
            r["signals_per_run"],
        ])  # fmt: skip
    headers = [
        "workload",
        "events",
        "events/s (cpu)",
        "range",
        "events/s (wall)",
        "µs/event/patch",
        "evals",
        "signals",
    ]
    common.print_table(headers, rows)
    for name, ratio in ratios.items():
        print(f"{name}: {ratio:.2f}x CPU per event")


if __name__ == "__main__":
    main()
