"""Ingest as replicas dividing the venues by leases (real processes, real Redis): three ingest
replicas over four sim venues divide them, one killed with -9 has its venues taken over within
the lease's ttl, and every venue's streams hold each trade once, none missing, no gap marker."""

from __future__ import annotations

import contextlib
import signal
import time
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import MeshProcesses, read_stream, redis_db, sim_config
from tests.integration.redis_server import redis_url
from tests.integration.support import VENUE_ENV, metric_samples, metrics_page, until
from trademesh.core.platform.bus.venue_lease import venue_lease_name
from trademesh.core.platform.replicas.lease import lease_key
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["redis_url"]  # the fixture, for pytest

VENUES = ("v1", "v2", "v3", "v4")
TTL_MS = 1500


async def holders(url: str) -> dict[str, str]:
    """Each venue's lease holder (absent: free)."""
    client = aioredis.Redis.from_url(url)
    try:
        values = [await client.get(lease_key(venue_lease_name(venue))) for venue in VENUES]
    finally:
        await client.aclose()
    return {venue: _text(value) for venue, value in zip(VENUES, values, strict=True) if value}


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def pid_of(holder: str) -> int:
    """The holder's process id (trademesh.core.platform.replicas.lease.holder_id:
    service@host:pid:nonce/n)."""
    return int(holder.split("@", 1)[1].split(":")[1])


async def trade_count(url: str, venue: str) -> int:
    return sum(1 for e in await read_stream(url, f"md.{{{venue}}}.trades") if e.HasField("trade"))


async def every_venue_has(url: str, at_least: dict[str, int]) -> bool | None:
    for venue, count in at_least.items():
        if await trade_count(url, venue) < count:
            return None
    return True


async def test_three_replicas_divide_four_venues_and_one_killed_loses_and_repeats_nothing(
    tmp_path: Path, redis_url: str
) -> None:
    async with contextlib.AsyncExitStack() as stack:
        url = await stack.enter_async_context(redis_db(redis_url))
        config = sim_config(tmp_path, 100, 200)
        venues: dict[str, ServiceProcess] = {}
        for venue in VENUES:
            args = ["venue", "sim", "--port", "0", "--metrics-port", "-1", "--config", str(config)]
            with (tmp_path / f"{venue}.log").open("a") as log:
                venues[venue] = start_service(args, env=VENUE_ENV, stderr=log)
            stack.push_async_callback(_terminate, venues[venue])
        mesh = MeshProcesses(tmp_path, url)
        stack.push_async_callback(mesh.stop_all)
        flags = [f for v in VENUES for f in ("--venue", f"{v}={venues[v].address}")]
        leased = ("--lease-ttl-ms", str(TTL_MS), "--metrics-port", "0", *flags)
        replicas = [mesh.start("ingest", *leased) for _ in range(3)]

        async def divided() -> dict[str, str] | None:
            held = await holders(url)
            pids = {pid_of(holder) for holder in held.values()}
            return held if len(held) == len(VENUES) and len(pids) >= 2 else None

        held = await until(divided, 30, 0.1, "the four venues divided between the replicas")
        await until(
            lambda: every_venue_has(url, dict.fromkeys(VENUES, 200)), 30, 0.2, "trades of every venue"
        )

        counts = [list(map(pid_of, held.values())).count(r.process.pid) for r in replicas]
        victim = replicas[counts.index(max(counts))]
        lost = sorted(v for v, holder in held.items() if pid_of(holder) == victim.process.pid)
        victim.process.send_signal(signal.SIGKILL)
        victim.process.wait()
        killed_at = time.monotonic()

        async def taken_over() -> dict[str, str] | None:
            now = await holders(url)
            alive = len(now) == len(VENUES) and all(pid_of(h) != victim.process.pid for h in now.values())
            return now if alive else None

        await until(taken_over, 30, 0.05, f"{', '.join(lost)} taken over")
        print(
            f"venues {lost} taken over {time.monotonic() - killed_at:.2f} s after the kill (ttl {TTL_MS} ms)"
        )
        survivors = [r for r in replicas if r is not victim]

        async def held_by_survivors() -> bool | None:
            held = [await held_metric(r) for r in survivors]
            return True if sum(held) == len(VENUES) else None

        await until(held_by_survivors, 10, 0.1, "the survivors' metrics holding every venue")
        counts_now = {venue: await trade_count(url, venue) for venue in VENUES}
        wanted = {venue: count + 300 for venue, count in counts_now.items()}
        await until(lambda: every_venue_has(url, wanted), 60, 0.2, "300 more trades of every venue")
        await mesh.stop_all()

        for venue in VENUES:
            events = await read_stream(url, f"md.{{{venue}}}.trades")
            gaps = [e for e in events if e.HasField("notice") and e.notice.kind == md.NOTICE_KIND_GAP]
            assert not gaps, f"{venue}: a handover by lease needs no gap marker"
            ids: dict[str, list[int]] = {}
            for event in events:
                if event.HasField("trade"):
                    ids.setdefault(event.symbol, []).append(int(event.trade.trade_id))
            for symbol, seen in ids.items():
                assert len(seen) == len(set(seen)), f"{venue} {symbol}: a trade published twice"
                assert seen == list(range(seen[0], seen[0] + len(seen))), f"{venue} {symbol}: trades missing"


async def held_metric(replica: ServiceProcess) -> float:
    """The venues a replica says it follows (trademesh_ingest_venues_held)."""
    page = await metrics_page(int(replica.info["metrics_port"]))
    return sum(metric_samples(page, "trademesh_ingest_venues_held").values())


async def _terminate(process: ServiceProcess) -> None:
    process.terminate()
