"""The venue contract's conformance kit against two venues in two languages (issue 58): the sim
(Python, this repository's runtime) and node-ref (TypeScript on Node, trademesh/venues/node_ref).

Each round starts both venues afresh (the kit's last check drains a venue), in alternating order,
and takes for each: the time from its start to its serving line, the kit's wall time
(`python -m trademesh.core.cli venue-check HOST:PORT --json`, every check), the checks passed, failed and
skipped, and the venue's RSS after the kit. Medians over the rounds; node-ref's figures as a ratio
of the sim's measured in the same round. node-ref is built first (npm ci and npm run build in
its folder) when it has no dist/main.js.

    .venv/bin/python bench/venue_check.py --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NODE_REF = ROOT / "trademesh" / "venues" / "node_ref"
_TOKENS = {"TRADEMESH_TOKEN": "bench-mesh-token", "TRADEMESH_TRADE_TOKEN": "bench-trade-token"}
_START_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Round:
    venue: str
    start_s: float
    kit_s: float
    passed: int
    failed: int
    skipped: int
    rss_mb: float


def _environment() -> dict[str, str]:
    return {**os.environ, **_TOKENS, "TRADEMESH_DRAIN_DELAY_S": "0"}


def _serving_port(process: subprocess.Popen[str]) -> int:
    """The port of the process's JSON serving line (read from its stdout until it comes)."""
    assert process.stdout is not None
    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise SystemExit(f"venue_check: {process.args!r} ended before it served")
        if line.startswith("{"):
            event = json.loads(line)
            if event.get("event") == "serving":
                return int(event["port"])
    raise SystemExit(f"venue_check: {process.args!r} did not serve within {_START_TIMEOUT_S} s")


def _sim() -> list[str]:
    return [sys.executable, "-m", "trademesh.core.cli", "venue", "sim", "--port", "0", "--metrics-port", "0"]


def _node_ref() -> list[str]:
    return ["node", str(NODE_REF / "dist" / "main.js"), "--port", "0"]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _kit(port: int) -> tuple[float, dict[str, int]]:
    began = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "trademesh.core.cli", "venue-check", f"127.0.0.1:{port}", "--json"],
        capture_output=True, text=True, env=_environment(), cwd=ROOT, check=False,
    )  # fmt: skip
    took = time.monotonic() - began
    if done.returncode not in (0, 1):
        raise SystemExit(f"venue_check: the kit could not run: {done.stderr.strip()}")
    report = json.loads(done.stdout)
    return took, {outcome: int(report[outcome]) for outcome in ("passed", "failed", "skipped")}


def _one(venue: str, command: Callable[[], list[str]]) -> Round:
    began = time.monotonic()
    process = subprocess.Popen(command(), stdout=subprocess.PIPE, text=True, env=_environment(), cwd=ROOT)
    try:
        port = _serving_port(process)
        start_s = time.monotonic() - began
        kit_s, counts = _kit(port)
        rss = _rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    return Round(venue, start_s, kit_s, counts["passed"], counts["failed"], counts["skipped"], rss)


def _build_node_ref() -> None:
    if not (NODE_REF / "dist" / "main.js").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_REF, check=True)
        subprocess.run(["npm", "run", "--silent", "build"], cwd=NODE_REF, check=True)


def main() -> None:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=raw)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    _build_node_ref()
    venues: list[tuple[str, Callable[[], list[str]]]] = [("sim", _sim), ("node-ref", _node_ref)]
    rounds: list[Round] = []
    for index in range(args.rounds):
        order = venues if index % 2 == 0 else venues[::-1]
        rounds.extend(_one(name, command) for name, command in order)
    print(f"load average 1m at the end: {os.getloadavg()[0]:.2f}; {args.rounds} rounds")
    print(f"{'venue':>9} {'start s':>8} {'kit s':>7} {'pass':>5} {'fail':>5} {'skip':>5} {'RSS MB':>7}")
    for name, _ in venues:
        mine = [r for r in rounds if r.venue == name]
        print(
            f"{name:>9} {statistics.median(r.start_s for r in mine):8.2f}"
            f" {statistics.median(r.kit_s for r in mine):7.2f} {max(r.passed for r in mine):5d}"
            f" {max(r.failed for r in mine):5d} {max(r.skipped for r in mine):5d}"
            f" {statistics.median(r.rss_mb for r in mine):7.1f}"
        )
    ratios = [
        node.kit_s / sim.kit_s
        for sim, node in zip(
            (r for r in rounds if r.venue == "sim"), (r for r in rounds if r.venue == "node-ref"), strict=True
        )
    ]
    print(f"node-ref's kit time / the sim's, same round: median {statistics.median(ratios):.2f}")


if __name__ == "__main__":
    main()
