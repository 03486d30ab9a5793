"""The Screener's engine alone: one scan (trademesh.core.screener.engine.evaluate) over --instruments
synthetic instruments (issue 42: "a scan over 500 instruments (ms)").

No processes, no I/O: the inputs are built once, before timing (the shell's gathering is not
measured here), then each screen is evaluated --scans times per repeat, fresh each time (the
engine keeps nothing between scans). Each instrument is a USDT perpetual with a ticker (bid,
ask, sizes, 24h volume), --bars closed 1h bars (a random walk) and a funding rate; --missing
of them (a fraction) have too few bars, so the scan also leaves some out and counts them.
Screens:

- momentum: the shipped example (trademesh/core/screener/screens/momentum.toml): filters on 24h volume
  and spread, rank-normalised momentum and volatility over 24 bars, funding shown.
- every_metric: all seven metrics needed (a filter on each of three, the rest weighted),
  z-scored: the most a scan computes per instrument.

Reported per screen: the median ms per scan (wall and process CPU: the run is one thread) over
--repeats repeats, the spread of the repeats, and what the scan ranked and left out.

    .venv/bin/python bench/screener_scan.py                  # 500 instruments, 7 repeats
    .venv/bin/python bench/screener_scan.py --instruments 2000 --no-save
"""

from __future__ import annotations

import argparse
import gc
import random
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from trademesh.core.domain.model import Candle, InstrumentKind, Timeframe
from trademesh.core.screener.engine.definition import Screen, parse_screen
from trademesh.core.screener.engine.evaluate import ScreenResult, evaluate
from trademesh.core.screener.engine.inputs import Funding, InstrumentInputs, Ticker
from trademesh.core.screener.engine.membership import membership_of, take
from trademesh.core.screener.screen_file import SCREENS_DIR, load_screen

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

HOUR_NS = 3600 * 10**9
NOW_NS = 490_000 * HOUR_NS  # 2025-11-24, a whole hour

EVERY_METRIC = """
name = "every_metric"
venue = "sim"
top = 20
filters = ["volume_24h >= 1e5", "spread_bps <= 20", "top_depth >= 1000"]
[bars]
timeframe = "1h"
[score]
normalise = "zscore"
weights = { momentum = 1.0, volatility = -0.5, bar_volume = 0.25, funding_rate = -0.25 }
"""


def synthetic(count: int, bars: int, missing: float, seed: int) -> list[InstrumentInputs]:
    rng = random.Random(seed)
    return [_instrument(rng, index, bars, missing) for index in range(count)]


def _instrument(rng: random.Random, index: int, count: int, missing: float) -> InstrumentInputs:
    price = 10 ** rng.uniform(-2, 4)
    candles = []
    if rng.random() < missing:
        count = 3  # too few for a 24-bar window: left out and counted
    for bar in range(count):
        price *= 1 + rng.gauss(0, 0.01)
        close = Decimal(f"{price:.6g}")
        volume = Decimal(f"{rng.uniform(10, 10_000):.3f}")
        open_ns = NOW_NS - (count - bar) * HOUR_NS
        candles.append(
            Candle(Timeframe.H1, open_ns, close, close, close, close, volume, volume * close, 100, True)
        )
    last = candles[-1].close
    half_spread = last * Decimal(f"{rng.uniform(0.00002, 0.0005):.6f}")
    size = Decimal(f"{rng.uniform(0.1, 500):.3f}")
    ticker = Ticker(
        ts_ns=NOW_NS - rng.randrange(10**9),
        bid=last - half_spread,
        ask=last + half_spread,
        last=last,
        bid_size=size,
        ask_size=size * 2,
        volume_24h=Decimal(f"{10 ** rng.uniform(4, 9):.2f}"),
    )
    funding = Funding(Decimal(f"{rng.gauss(0.0001, 0.0002):.6f}"), NOW_NS - 10**9)
    return InstrumentInputs(f"S{index:04d}/USDT", InstrumentKind.PERPETUAL, "USDT", ticker, candles, funding)


def _time(screen: Screen, inputs: list[InstrumentInputs], scans: int) -> tuple[float, float, ScreenResult]:
    """ms per scan, wall and CPU, over `scans` scans."""
    gc.collect()
    wall, cpu = time.perf_counter_ns(), time.process_time_ns()
    for _ in range(scans):
        result = evaluate(screen, inputs, NOW_NS)
    wall, cpu = time.perf_counter_ns() - wall, time.process_time_ns() - cpu
    return wall / scans / 1e6, cpu / scans / 1e6, result


def measure(args: argparse.Namespace) -> dict[str, Any]:
    inputs = synthetic(args.instruments, args.bars, args.missing, args.seed)
    screens = [load_screen(SCREENS_DIR / "momentum.toml"), parse_screen(EVERY_METRIC, "every_metric")]
    figures = {screen.name: _figures(screen, inputs, args) for screen in screens}
    common.print_table(
        ["screen", "instruments", "ms/scan", "cpu ms/scan", "µs/instr", "ranked", "left out", "filtered"],
        [[name, args.instruments, *(f[key] for key in _SHOWN)] for name, f in figures.items()],
    )
    return {
        "bench": "screener_scan",
        "at": common.now_iso(),
        "command": common.command_line(),
        "machine": common.machine(),
        "params": vars(args),
        "screens": figures,
    }


_SHOWN = ("ms_per_scan_wall", "ms_per_scan_cpu", "us_per_instrument", "ranked", "left_out", "filtered_out")


def _figures(screen: Screen, inputs: list[InstrumentInputs], args: argparse.Namespace) -> dict[str, Any]:
    """One screen's medians over the repeats, and what its last scan ranked and left out."""
    _time(screen, inputs, 1)  # warm
    runs = [_time(screen, inputs, args.scans) for _ in range(args.repeats)]
    result = runs[-1][2]
    membership = membership_of(screen)
    take(membership, result)
    walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
    return {
        "ms_per_scan_wall": round(common.median(walls), 3),
        "ms_per_scan_cpu": round(common.median(cpus), 3),
        "wall_min_max": [round(min(walls), 3), round(max(walls), 3)],
        "us_per_instrument": round(common.median(cpus) * 1000 / args.instruments, 2),
        "ranked": len(result.ranked),
        "left_out": result.left_out,
        "filtered_out": result.filtered_out,
        "members": len(membership.members),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--instruments", type=int, default=500)
    parser.add_argument("--bars", type=int, default=48, help="closed 1h bars per instrument")
    parser.add_argument("--missing", type=float, default=0.05, help="fraction with too few bars")
    parser.add_argument("--scans", type=int, default=5, help="scans per repeat")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    result = measure(args)
    if not args.no_save:
        print(common.write_result("screener_scan", result))


if __name__ == "__main__":
    main()
