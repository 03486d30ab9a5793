"""How long a crashed advisor is away under `trademesh up` (issue 57, item 5): kill -9 of the
advisor, measured until the new process serves.

The advisor runs as `up` runs it: a trademesh.core.cli.mesh.supervisor Child with up's own spec of the
service (trademesh.core.cli.mesh.up: the mesh's arguments, 1m bars, the shipped 1m model), beside one sim
venue and Redis (REDIS_URL, else the local default port's database --redis-db, 13; emptied
first). Each round starts the advisor, lets it run `--settle-s`, kills it with -9, and times,
from the kill, to
- `restarted`: the supervisor's restart (its first delay: 0.5 s, jittered to 0.75);
- `serving`: the new process serves and its health says SERVING (what `up` waits for);
and `start` = serving - restarted: the process's own start (imports, the model, the mesh).

With `--before DIR` (a `git archive` of the commit to compare with, e.g.
`git archive <commit> core venues gateway | tar -x -C DIR`), each round runs the advisor from DIR
first, then from this tree (alternated: a loaded machine's drift falls on both).

    .venv/bin/python bench/advisor_restart.py --rounds 5
    .venv/bin/python bench/advisor_restart.py --rounds 5 --before /tmp/base
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import io
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

from trademesh.core.cli.mesh.supervisor import Child
from trademesh.core.cli.mesh.up import UpOptions, _Mesh
from trademesh.core.platform.config.env import REDIS_URL
from trademesh.core.platform.service.command import MeshView, load_command
from trademesh.core.platform.service.registry import SERVICES

SIM = """
tick_interval_ms = 100
[[symbols]]
symbol = "BTC/USDT"
start_price = "65000"
tick_size = "0.01"
lot_size = "0.00001"
"""
_POLL_S = 0.02


@dataclasses.dataclass(frozen=True)
class Round:
    restarted_s: float
    serving_s: float

    @property
    def start_s(self) -> float:
        return self.serving_s - self.restarted_s


def advisor_child(venue: common.Venue, redis_url: str, source: Path | None, log: Any) -> Child:
    """The advisor as `up` runs it (its spec from trademesh.core.cli.mesh.up), on this venue and Redis;
    from the code in `source` when given."""
    entry = SERVICES["advisor"]
    env = {REDIS_URL: redis_url, **venue.tokens}
    if source is not None:
        env["PYTHONPATH"] = f"{source}:{source / 'gen'}"
    mesh = _Mesh(UpOptions(data_dir=common.workdir(), free_ports=True), env)
    mesh.view = MeshView(venues=(("sim", venue.address),))
    spec = mesh.spec(entry, load_command(entry))
    base = spec.args
    spec = dataclasses.replace(spec, args=lambda info: [*base(info), "--metrics-port", "-1"])
    return Child(spec, 10, log)


async def one_round(child: Child, out: io.StringIO) -> Round:
    old_pid, restarts = child.pid, child.restarts
    killed = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)
    await _until(lambda: child.pid not in (0, old_pid))
    restarted = time.monotonic() - killed
    # The supervisor's line once Child.start returned: the process serves and is healthy (a
    # restart that failed, restarting again, counts until one serves).
    await _until(lambda: child.restarts > restarts and f"(restart {child.restarts})," in out.getvalue())
    return Round(restarted, time.monotonic() - killed)


async def _until(done: Callable[[], bool], limit_s: float = 120) -> None:
    end = time.monotonic() + limit_s
    while not done():
        if time.monotonic() > end:
            raise TimeoutError(f"not within {limit_s} s")
        await asyncio.sleep(_POLL_S)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    machine = common.machine()
    work = common.workdir()
    venue = common.start_venue(SIM, work, auth=True)
    redis_url = os.environ.get("REDIS_URL") or f"redis://{common.HOST}:6379/{args.redis_db}"
    redis.Redis.from_url(redis_url).flushdb()
    variants: list[Path | None] = [args.before.resolve(), None] if args.before else [None]
    # The children's working directory is theirs too: `python -m` puts it first on their path,
    # where this checkout would shadow --before's tree.
    os.chdir(work)
    rounds: dict[str, list[Round]] = {_label(v): [] for v in variants}
    out = io.StringIO()
    try:
        for number in range(args.rounds):
            for source in variants:
                found = await one_child(venue, redis_url, source, out, args.settle_s)
                rounds[_label(source)].append(found)
                print(
                    f"round {number + 1} {_label(source)}: restarted {found.restarted_s:.2f} s, "
                    f"serving {found.serving_s:.2f} s (its start {found.start_s:.2f} s)",
                    flush=True,
                )
    finally:
        venue.stop()
        (work / "advisor.log").write_text(out.getvalue())
    return summary(rounds, work, machine)


async def one_child(
    venue: common.Venue, redis_url: str, source: Path | None, out: io.StringIO, settle_s: float
) -> Round:
    own = io.StringIO()  # this child's lines: its restart line is looked for in them
    child = advisor_child(venue, redis_url, source, own)
    stop = asyncio.Event()
    try:
        await child.start()
        supervising = asyncio.create_task(child.supervise(stop))
        await asyncio.sleep(settle_s)
        found = await one_round(child, own)
        stop.set()
        supervising.cancel()
        return found
    finally:
        await child.stop()
        out.write(own.getvalue())


def _label(source: Path | None) -> str:
    return "this tree" if source is None else "before"


def summary(rounds: dict[str, list[Round]], work: Path, machine: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {
        "machine": machine,
        "command": common.command_line(),
        "load_average_at_end": os.getloadavg(),
        "workdir": str(work),
    }
    table = []
    for label, found in rounds.items():
        medians = {
            "median_restarted_s": round(common.median([r.restarted_s for r in found]), 3),
            "median_serving_s": round(common.median([r.serving_s for r in found]), 3),
            "median_start_s": round(common.median([r.start_s for r in found]), 3),
        }
        result[label] = {
            "rounds": [{**dataclasses.asdict(r), "start_s": r.start_s} for r in found],
            **medians,
        }
        table.append([label, *medians.values(), max(r.serving_s for r in found)])
    common.print_table(
        ["", "kill -> restarted s", "kill -> serving s", "its start s", "max serving s"], table
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis-db", type=int, default=13)
    parser.add_argument(
        "--settle-s", type=float, default=3.0, help="run this long before the kill (default 3)"
    )
    parser.add_argument("--before", type=Path, help="a `git archive` of the commit to compare with")
    args = parser.parse_args()
    with common.claimed_redis_db(args.redis_db):
        result = uvloop.run(run(args))
    print(f"wrote {common.write_result('advisor_restart', result)}")


if __name__ == "__main__":
    main()
