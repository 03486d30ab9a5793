"""A Redis Cluster master killed under two venues writing their own streams (issue 56, item 5):
the outsider's scenario as a benchmark. Three masters with a replica each (tests/integration/
redis_cluster.py), two sim venues `--bus-direct`, one whose streams hash to master A, one to B;
B is killed (kill -9) and its replica takes over by itself. Reported per venue: the longest a
batch waited to be written (entry id time less the venue's receive time of its newest event)
and the gap notices on its streams.

    PYTHONPATH=. .venv/bin/python bench/cluster_failover.py --node-timeout-ms 5000 --repeats 3

Only 127.0.0.1; every process started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.integration.redis_cluster import LocalCluster, slot_ranges
from tests.integration.test_bus_failover import account_on, start_direct_sim, written
from trademesh.core.platform.bus.redis import open_redis


async def one_run(node_timeout_ms: int, settle_s: float) -> dict[str, Any]:
    directory = Path(tempfile.mkdtemp(prefix="cluster-failover-"))
    cluster = LocalCluster(directory / "cluster", masters=3, replicas=1, node_timeout_ms=node_timeout_ms)
    await asyncio.to_thread(cluster.start)
    try:
        async with contextlib.AsyncExitStack() as stack:
            (a0, a1), (b0, b1), _ = slot_ranges(3)
            venues = {"healthy": f"sim.{account_on(a0, a1, 'a')}", "failed": f"sim.{account_on(b0, b1, 'b')}"}
            for venue in venues.values():
                start_direct_sim(stack, directory, venue.removeprefix("sim."), cluster.url)
            client: Any = open_redis(cluster.url)
            stack.push_async_callback(client.aclose)
            await asyncio.sleep(settle_s)  # the venues writing steadily before the kill
            killed_ms = time.time() * 1000
            cluster.kill(cluster.master_ports[1])
            await asyncio.sleep(node_timeout_ms / 1000 + 10)  # the failover and a margin to write again
            return {role: await written(client, venue, killed_ms) for role, venue in venues.items()}
    finally:
        await asyncio.to_thread(cluster.stop)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node-timeout-ms", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settle-s", type=float, default=6.0)
    args = parser.parse_args()
    for run in range(args.repeats):
        found = asyncio.run(one_run(args.node_timeout_ms, args.settle_s))
        parts = [f"{role}: stall {w.stall_s:.2f} s, {w.gaps} gap notices" for role, w in found.items()]
        line = ", ".join(parts)
        print(f"run {run + 1}: {line}", flush=True)


if __name__ == "__main__":
    main()
