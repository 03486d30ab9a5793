"""The Supervisor's engine alone: one look (trademesh.core.supervisor.engine.Supervisor.observe, its rules
and every proposal's check) over --strategies synthetic strategies (issue 42: the Supervisor's
cost per observation, beside what gathering it through the gateway's tools costs a live mesh:
5 tool calls a look, every 60 s by default).

No processes, no I/O: the observations are built once (a third of the strategies in drawdown
past the pause threshold, some paused and recovered, low hit rates among the rest), then each
look is a fresh engine in act mode (every checked proposal an action) so no proposal waits.
Reported: the median µs per look (wall and CPU) over --repeats repeats of --looks looks, and the
proposals a look made.

    .venv/bin/python bench/supervisor_look.py                   # 50 strategies, 7 repeats
    .venv/bin/python bench/supervisor_look.py --strategies 500 --no-save
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

from trademesh.core.supervisor.engine import (
    Bounds,
    Mode,
    Observation,
    PolicyBound,
    StrategyFigures,
    Supervisor,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

BOUNDS = Bounds(policies={"loss.max_drawdown": PolicyBound(Decimal("0.05"), Decimal("0.01"))})


def observation(count: int, seed: int) -> Observation:
    rng = random.Random(seed)
    strategies = []
    for n in range(count):
        trips = rng.randrange(0, 60)
        strategies.append(
            StrategyFigures(
                strategy=f"s{n:04d}",
                realised_pnl=Decimal(f"{rng.uniform(-500, 500):.2f}"),
                drawdown=Decimal(f"{rng.choice([0.01, 0.03, 0.12, 0.2]):.2f}"),
                round_trips=trips,
                winners=rng.randrange(0, trips + 1),
                capital=Decimal(rng.choice([1000, 5000, 20000])),
                paused=rng.random() < 0.2,
            )
        )
    regimes = {f"sim/S{n}/USDT": "range" for n in range(count)}
    return Observation(
        1_800_000_000 * 10**9, tuple(strategies), regimes, "active", {"loss.max_drawdown": Decimal("0.1")}
    )


def _time(seen: Observation, looks: int) -> tuple[float, float, int]:
    gc.collect()
    wall, cpu = time.perf_counter_ns(), time.process_time_ns()
    made = 0
    for _ in range(looks):
        made = len(Supervisor(BOUNDS, Mode.ACT).observe(seen).actions)
    wall, cpu = time.perf_counter_ns() - wall, time.process_time_ns() - cpu
    return wall / looks / 1e3, cpu / looks / 1e3, made


def measure(args: argparse.Namespace) -> dict[str, Any]:
    seen = observation(args.strategies, args.seed)
    _time(seen, 1)
    runs = [_time(seen, args.looks) for _ in range(args.repeats)]
    walls, cpus = [r[0] for r in runs], [r[1] for r in runs]
    figures = {
        "us_per_look_wall": round(common.median(walls), 1),
        "us_per_look_cpu": round(common.median(cpus), 1),
        "wall_min_max": [round(min(walls), 1), round(max(walls), 1)],
        "actions_per_look": runs[-1][2],
    }
    common.print_table(
        ["strategies", "µs/look", "cpu µs/look", "actions/look"],
        [
            [
                args.strategies,
                figures["us_per_look_wall"],
                figures["us_per_look_cpu"],
                figures["actions_per_look"],
            ]
        ],
    )
    return {
        "bench": "supervisor_look",
        "at": common.now_iso(),
        "command": common.command_line(),
        "machine": common.machine(),
        "params": vars(args),
        "figures": figures,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--strategies", type=int, default=50)
    parser.add_argument("--looks", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    result = measure(args)
    if not args.no_save:
        print(common.write_result("supervisor_look", result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
