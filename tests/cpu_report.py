"""A pytest plugin: what each test costs the machine (where the suite's time goes).

With TRADEMESH_TEST_CPU=<dir> set, each process of the run (each xdist worker) writes one JSON
line per test to <dir>/<pid>.jsonl: its id, the wall seconds and the CPU seconds of the worker
and of the processes it started and has reaped (the services a test spawns are its children and
are reaped by its end or its module's). `cores` is CPU / wall: how much of the machine the test
keeps busy. Redis and PostgreSQL servers the suite did not start are not counted.

    TRADEMESH_TEST_CPU=/tmp/cpu ./dev test
    .venv/bin/python -m tests.cpu_report /tmp/cpu     # the files that cost the most CPU
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["summarize"]

_ENV = "TRADEMESH_TEST_CPU"


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    out = os.environ.get(_ENV)
    if not out:
        yield
        return
    wall, cpu = time.monotonic(), _cpu_s()
    yield
    wall, cpu = time.monotonic() - wall, _cpu_s() - cpu
    line = {"id": item.nodeid, "wall": round(wall, 3), "cpu": round(cpu, 3)}
    Path(out).mkdir(parents=True, exist_ok=True)
    with (Path(out) / f"{os.getpid()}.jsonl").open("a") as file:
        file.write(json.dumps(line) + "\n")


def summarize(directory: Path, top: int = 40) -> list[str]:
    """The `top` files that cost the most CPU, with their wall time and cores, and the total."""
    rows = [json.loads(line) for path in directory.glob("*.jsonl") for line in path.read_text().splitlines()]
    files: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
    for row in rows:
        total = files[row["id"].split("::")[0]]
        total[0] += row["wall"]
        total[1] += row["cpu"]
    lines = [f"{'cpu s':>8} {'wall s':>8} {'cores':>6}  file"]
    for name, (wall, cpu) in sorted(files.items(), key=lambda kv: -kv[1][1])[:top]:
        lines.append(f"{cpu:8.1f} {wall:8.1f} {cpu / max(wall, 1e-9):6.2f}  {name}")
    cpu_s, wall_s = sum(r["cpu"] for r in rows), sum(r["wall"] for r in rows)
    lines.append(f"total: {cpu_s:.0f} CPU s over {wall_s:.0f} test s")
    return lines


def main(argv: list[str]) -> int:
    print("\n".join(summarize(Path(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
