"""How long a crashed inspector is away under `trademesh up` (issue 37, item 4): kill -9 of the
inspector, again as soon as it is back, measured until its heartbeat reaches the venue again.

The inspector runs as `up` runs it: a trademesh.core.cli.mesh.supervisor Child with up's own spec of the
service (trademesh.core.cli.mesh.up, its arguments for the mesh, its restart bound from
trademesh.core.platform.service.registry), beside one sim venue and Redis (REDIS_URL, else the local default
port's database --redis-db, 14; emptied first). The venue's dead-man switch is armed by the
inspector's heartbeat (--deadman-ttl-ms, 10 s by default). Each round: kill -9 the inspector;
then the times, from the kill, to
- `restarted`: the supervisor's restart (its delay: the backoff, which grows with each crash);
- `serving`: the new process serves and its health says SERVING (what `up` waits for);
- `heartbeat`: the venue took the new process's first heartbeat (its dead-man deadline moved):
  from then on the switch is held again. Over the ttl, the switch trips first (counted).
Rounds follow each other at once (a crash loop: the worst case of the backoff). The inspector's
journal is nearly empty here (its replay at a restart is the lead's part of item 4).

    .venv/bin/python bench/inspector_restart.py --rounds 10
    .venv/bin/python bench/inspector_restart.py --rounds 10 --unbounded   # up's old 10 s backoff
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

import grpc
import redis
import uvloop

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.core.cli.mesh.supervisor import RESTART_DELAY_MAX_S, Child
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
    heartbeat_s: float
    tripped: bool


class Timeline:
    """The venue's dead-man status, polled."""

    def __init__(self, address: str, metadata: tuple[tuple[str, str], ...]) -> None:
        self._channel = grpc.aio.insecure_channel(address)
        self._admin = admin_grpc.AdminStub(self._channel)
        self._metadata = metadata

    async def dead_man(self) -> admin.DeadManStatus:
        answer = await self._admin.GetStatus(admin.GetStatusRequest(), metadata=self._metadata, timeout=5)
        return answer.dead_man

    async def heartbeat_after(self, deadline_ns: int, limit_s: float) -> None:
        """Until the switch's deadline moves past `deadline_ns` (a new heartbeat came)."""
        end = time.monotonic() + limit_s
        while (await self.dead_man()).deadline_ns <= deadline_ns:
            if time.monotonic() > end:
                raise TimeoutError(f"no heartbeat within {limit_s} s")
            await asyncio.sleep(_POLL_S)

    async def close(self) -> None:
        await self._channel.close()


def inspector_child(venue: common.Venue, redis_url: str, ttl_ms: int, bounded: bool, log: Any) -> Child:
    """The inspector as `up` runs it (its spec from trademesh.core.cli.mesh.up), on this venue and Redis."""
    entry = SERVICES["inspector"]
    mesh = _Mesh(
        UpOptions(data_dir=common.workdir(), free_ports=True), {REDIS_URL: redis_url, **venue.tokens}
    )
    mesh.view = MeshView(venues=(("sim", venue.address),))
    spec = mesh.spec(entry, load_command(entry))
    extra = ["--metrics-port", "-1", "--deadman-ttl-ms", str(ttl_ms)]
    base = spec.args
    spec = dataclasses.replace(spec, args=lambda info: [*base(info), *extra])
    if not bounded:
        spec = dataclasses.replace(spec, restart_delay_max_s=RESTART_DELAY_MAX_S)
    return Child(spec, 10, log)


async def one_round(child: Child, out: io.StringIO, timeline: Timeline) -> Round:
    old_pid, restarts = child.pid, child.restarts
    before = await timeline.dead_man()
    killed = time.monotonic()
    os.kill(old_pid, signal.SIGKILL)
    await _until(lambda: child.pid not in (0, old_pid))
    restarted = time.monotonic() - killed
    # The supervisor's line once Child.start returned: the process serves and is healthy.
    await _until(lambda: f"(restart {restarts + 1})" in out.getvalue())
    serving = time.monotonic() - killed
    await timeline.heartbeat_after(before.deadline_ns, 120)
    heartbeat = time.monotonic() - killed
    tripped = (await timeline.dead_man()).trips > before.trips
    return Round(restarted, serving, heartbeat, tripped)


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
    out = io.StringIO()
    child = inspector_child(venue, redis_url, args.ttl_ms, not args.unbounded, out)
    timeline = Timeline(venue.address, venue.metadata)
    stop = asyncio.Event()
    rounds: list[Round] = []
    try:
        await child.start()
        supervising = asyncio.create_task(child.supervise(stop))
        await timeline.heartbeat_after(0, 30)
        for number in range(args.rounds):
            found = await one_round(child, out, timeline)
            rounds.append(found)
            print(
                f"round {number + 1}: restarted {found.restarted_s:.2f} s, serving {found.serving_s:.2f} s, "
                f"heartbeat {found.heartbeat_s:.2f} s{', TRIPPED' if found.tripped else ''}",
                flush=True,
            )
        stop.set()
        supervising.cancel()
    finally:
        await child.stop()
        await timeline.close()
        venue.stop()
        (work / "inspector.log").write_text(out.getvalue())
    return summary(args, rounds, work, machine)


def summary(
    args: argparse.Namespace, rounds: list[Round], work: Path, machine: dict[str, Any]
) -> dict[str, Any]:
    heartbeats = [r.heartbeat_s for r in rounds]
    result = {
        "machine": machine,
        "command": common.command_line(),
        "ttl_ms": args.ttl_ms,
        "restart_delay_max_s": RESTART_DELAY_MAX_S
        if args.unbounded
        else SERVICES["inspector"].restart_delay_max_s,
        "rounds": [dataclasses.asdict(r) for r in rounds],
        "median_restarted_s": round(common.median([r.restarted_s for r in rounds]), 3),
        "median_serving_s": round(common.median([r.serving_s for r in rounds]), 3),
        "median_heartbeat_s": round(common.median(heartbeats), 3),
        "max_heartbeat_s": round(max(heartbeats), 3),
        "trips": sum(r.tripped for r in rounds),
        "workdir": str(work),
    }
    common.print_table(
        ["", "median s", "max s"],
        [
            ["kill -> restarted", result["median_restarted_s"], max(r.restarted_s for r in rounds)],
            ["kill -> serving", result["median_serving_s"], max(r.serving_s for r in rounds)],
            ["kill -> heartbeat", result["median_heartbeat_s"], result["max_heartbeat_s"]],
        ],
    )
    print(f"dead-man trips (ttl {args.ttl_ms} ms): {result['trips']} of {len(rounds)} rounds")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--ttl-ms", type=int, default=10_000)
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument(
        "--unbounded", action="store_true", help="up's old backoff (up to 10 s, jitter to 15)"
    )
    args = parser.parse_args()
    with common.claimed_redis_db(args.redis_db):
        result = uvloop.run(run(args))
    name = "inspector_restart_unbounded" if args.unbounded else "inspector_restart"
    print(f"wrote {common.write_result(name, result)}")


if __name__ == "__main__":
    main()
