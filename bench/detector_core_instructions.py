"""Machine instructions per bar of the detector core's bars workload, counted by valgrind.

CPU time on a shared 2-vCPU machine moves by 2x with the neighbours' load; the instruction
count of the same work does not. This runs `bench/detector_core.py`'s bars loop (the trend
example, 10 symbols, a patch each, ticks ten times a simulated second) under
`valgrind --tool=callgrind` twice, once with --bar-seconds of bars and once with none,
with the garbage collector off in the loop and PYTHONHASHSEED=0, and prints the difference
per bar (the bars' generation counted out by a third run that only makes them). Compare
two trees by pointing --tree at each (e.g. a `git archive` of main).

    .venv/bin/python bench/detector_core_instructions.py --tree . --tree /tmp/main

Needs valgrind (apt-get install valgrind). Each tree takes about three minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

_LOOP = """
import gc, os, sys
sys.argv = ["detector_core"]
sys.path.insert(0, "bench")
import dataclasses
import detector_core as dc
seconds, mode = int(os.environ["BENCH_SECONDS"]), os.environ["BENCH_MODE"]
symbols = [f"{b}/USDT" for b in dc._BASES[:10]]
engine = dc.build_engine("bars", symbols, dc.make_bars(symbols, 1000, 60, 1))
# A budget no step reaches under valgrind's slowdown (the real one is never reached either).
engine.config = dataclasses.replace(engine.config, module_budget_ns=10**12)
bars = dc.make_bars(symbols, 1060, seconds, 2)
gc.collect()
gc.disable()
if mode == "run":
    dc.run_bars(engine, bars)
"""


def count(tree: Path, seconds: int, mode: str) -> int:
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(tree)}
    env |= {"BENCH_SECONDS": str(seconds), "BENCH_MODE": mode}
    command = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, "-c", _LOOP]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if found is None:
        raise SystemExit(f"no instruction count from valgrind:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", type=Path, action="append", help="a source tree (repeatable; default .)")
    parser.add_argument("--bar-seconds", type=int, default=300, help="simulated seconds (10 bars each)")
    args = parser.parse_args()
    bars = args.bar_seconds * 10
    for tree in args.tree or [Path(".")]:
        tree = tree.resolve()
        runs = ((0, "run"), (args.bar_seconds, "make"), (args.bar_seconds, "run"))
        empty, made, run = (count(tree, seconds, mode) for seconds, mode in runs)
        per_bar, making = (run - made) / bars, (made - empty) / bars
        print(f"{tree}: {per_bar:,.0f} instructions per bar ({making:,.0f} to make one)")


if __name__ == "__main__":
    main()
