"""A pytest plugin: what each test costs the machine (where the suite's time goes).

With TRADEMESH_TEST_CPU=<dir> set, each process of the run (each xdist worker) writes one JSON
line per test to <dir>/<pid>.jsonl: its id, the wall seconds and the CPU seconds of the worker
and of the processes it started and has reaped (the services a test spawns are its children and
are reaped by its end or its module's; those forked by tests/forked_services.py report their own
CPU at their end). `cores` is CPU / wall: how much of the machine the test
keeps busy. Redis and PostgreSQL servers the suite did not start are not counted.

Each test's line has its start (epoch seconds), so the run's timeline can be drawn from them.
It also writes a line per service started through trademesh.core.platform.service.process.start_service to
<dir>/<pid>.starts.jsonl: the service (the CLI's subcommand; a venue's name with it) and the CPU
seconds it took to reach its serving line (imports, set-up): what starting it costs the suite.

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
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

__all__ = ["summarize"]

_ENV = "TRADEMESH_TEST_CPU"


def _cpu_s() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def pytest_configure(config: pytest.Config) -> None:
    """Count the service starts (before the test modules import start_service)."""
    out = os.environ.get(_ENV)
    if out:
        import trademesh.core.platform.service.process

        trademesh.core.platform.service.process.start_service = _counted(
            trademesh.core.platform.service.process.start_service, Path(out)
        )


def _counted(start: Callable[..., Any], out: Path) -> Callable[..., Any]:
    def counted(args: Sequence[str], *rest: Any, **options: Any) -> Any:
        began = time.monotonic()
        service = start(args, *rest, **options)
        kind = " ".join(args[:2]) if args and args[0] == "venue" else (args[0] if args else "?")
        line = {"start": kind, "cpu": round(_process_cpu_s(service.process.pid), 3)}
        line["wall"] = round(time.monotonic() - began, 3)
        out.mkdir(parents=True, exist_ok=True)
        with (out / f"{os.getpid()}.starts.jsonl").open("a") as file:
            file.write(json.dumps(line) + "\n")
        return service

    return counted


def _forked_cpu_s(out: Path) -> float:
    """The CPU of the services this process had forked (tests/forked_services.py) that have
    ended: each writes its own at its end, not being this process's child."""
    try:
        text = (out / f"{os.getpid()}.forked.jsonl").read_text()
    except OSError:
        return 0.0
    return sum(float(json.loads(line)["cpu"]) for line in text.splitlines())


def _process_cpu_s(pid: int) -> float:
    """A live process's CPU seconds so far (user + system), from /proc; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    out = os.environ.get(_ENV)
    if not out:
        yield
        return
    start, wall, cpu = time.time(), time.monotonic(), _cpu_s() + _forked_cpu_s(Path(out))
    yield
    wall, cpu = time.monotonic() - wall, _cpu_s() + _forked_cpu_s(Path(out)) - cpu
    line = {"id": item.nodeid, "start": round(start, 3), "wall": round(wall, 3), "cpu": round(cpu, 3)}
    Path(out).mkdir(parents=True, exist_ok=True)
    with (Path(out) / f"{os.getpid()}.tests.jsonl").open("a") as file:
        file.write(json.dumps(line) + "\n")


def summarize(directory: Path, top: int = 40) -> list[str]:
    """The `top` files that cost the most CPU, with their wall time and cores, and the total."""
    rows = _rows(directory, "tests")
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
    return lines + _starts(directory)


def _rows(directory: Path, kind: str) -> list[dict[str, Any]]:
    paths = directory.glob(f"*.{kind}.jsonl")
    return [json.loads(line) for path in paths for line in path.read_text().splitlines()]


def _starts(directory: Path) -> list[str]:
    """The services started, by kind: how many, and the CPU they took to serve."""
    rows = _rows(directory, "starts")
    kinds: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        kinds[row["start"]].append(row["cpu"])
    lines = [f"{'starts':>8} {'cpu s':>8} {'each':>6}  service (CPU to its serving line)"]
    for kind, cpus in sorted(kinds.items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"{len(cpus):8d} {sum(cpus):8.1f} {sum(cpus) / len(cpus):6.2f}  {kind}")
    lines.append(f"total: {len(rows)} starts, {sum(r['cpu'] for r in rows):.0f} CPU s")
    return lines + _lifetimes(directory)


def _lifetimes(directory: Path) -> list[str]:
    """The forked services' whole CPU, start to end, by kind: what running each costs the suite."""
    kinds: dict[str, list[float]] = defaultdict(list)
    for row in _rows(directory, "forked"):
        kinds[row.get("kind", "?")].append(row["cpu"])
    lines = [f"{'runs':>8} {'cpu s':>8} {'each':>6}  forked service (CPU of its whole run)"]
    for kind, cpus in sorted(kinds.items(), key=lambda kv: -sum(kv[1])):
        lines.append(f"{len(cpus):8d} {sum(cpus):8.1f} {sum(cpus) / len(cpus):6.2f}  {kind}")
    return lines


def durations(directory: Path, least_s: float = 1.0) -> dict[str, float]:
    """Each test's wall seconds in the run (its setup and teardown in), the tests of `least_s`
    or more: what tests/workers.py orders the run by (tests/durations.json)."""
    rows = _rows(directory, "tests")
    return {
        row["id"]: round(row["wall"], 1)
        for row in sorted(rows, key=lambda r: r["id"])
        if row["wall"] >= least_s
    }


def main(argv: list[str]) -> int:
    """`<dir>`: the summary; `<dir> --durations <file>`: the run's durations written to the file."""
    if len(argv) == 3 and argv[1] == "--durations":
        Path(argv[2]).write_text(json.dumps(durations(Path(argv[0])), indent=0, sort_keys=True) + "\n")
        return 0
    print("\n".join(summarize(Path(argv[0]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
