"""What a venue lease's fence costs ingest's writes (issue 39): market entries written as plain
pipelined XADDs (before leases) against the same entries fenced by a lease (the bus's script,
checking the lease key holds the token, then the XADD), alternating, in one run.

Each round writes --entries entries of a real market batch's size (a MarketEvents of --events
trades, encoded as ingest wraps them) in flushes of --batch, through trademesh.core.platform.bus's
Publisher, as ingest's flush loop does. Measured per mode: entries/s from the client, and Redis's
own CPU per entry (INFO cpu, user + sys, before and after). Medians of --repeats rounds of each
mode; the ratio fenced / plain is the figure (the machine is shared: ratios, not absolutes).
Each mode is run aged too (issue 57 item 2: the market stream trimmed by age as well, an
approximate XTRIM MINID once a stream a flush, in the pipeline or in the script): aged / not the
cost of the age bound.

    .venv/bin/python bench/ingest_fence.py --repeats 7

Redis at $REDIS_URL (else 127.0.0.1:6379), logical database --redis-db (15), claimed and flushed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aioredis

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.platform.bus.codec import wrap_market
from trademesh.core.platform.bus.group import Fenced
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.replicas.lease import Lease

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

STREAM = "md.{bench}.trades"


def market_entry(events: int) -> bytes:
    batch = bus.MarketEvents(epoch=1, position=1)
    for i in range(events):
        event = batch.events.add(venue="bench", symbol="BTC/USDT", ts_event_ns=1_700_000_000_000_000_000 + i)
        event.ts_recv_ns = event.ts_event_ns + 1000
        event.trade.trade_id = str(i)
        event.trade.price = "65000.12"
        event.trade.size = "0.00123"
    return wrap_market("ingest/bench", batch.SerializeToString())


async def redis_cpu_s(client: Any) -> float:
    info = await client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


async def one_round(
    client: Any, data: bytes, fence: Fenced | None, entries: int, batch: int, aged: bool = False
) -> dict[str, float]:
    await client.delete(STREAM)
    publisher = Publisher(client, Retention(2000, 10))
    await client.config_resetstat()
    cpu_before, started = await redis_cpu_s(client), time.perf_counter()
    for _ in range(entries // batch):
        for _ in range(batch):
            publisher.add(STREAM, data, fence=fence, aged=aged)
        await publisher.flush()
    elapsed = time.perf_counter() - started
    cpu = await redis_cpu_s(client) - cpu_before
    assert not publisher.fenced, "the lease was lost during the round"
    # Redis's own time in the commands (INFO commandstats: a script's calls are counted too),
    # steadier than its CPU on a shared machine; the XTRIMs' share of it.
    stats = await client.info("commandstats")
    writes = ("cmdstat_xadd", "cmdstat_evalsha", "cmdstat_eval", "cmdstat_xtrim")
    command_us = sum(float(stats[name]["usec"]) for name in writes if name in stats)
    trim_us = float(stats["cmdstat_xtrim"]["usec"]) if "cmdstat_xtrim" in stats else 0.0
    return {
        "entries_per_s": entries / elapsed,
        "redis_us_per_entry": cpu / entries * 1e6,
        "command_us_per_entry": command_us / entries,
        "xtrim_us_per_entry": trim_us / entries,
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    url = common.redis_db_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"), args.redis_db)
    common.require_local(url, "Redis", "ingest_fence")
    data = market_entry(args.events)
    rounds: dict[str, list[dict[str, float]]] = {
        "plain": [],
        "fenced": [],
        "plain aged": [],
        "fenced aged": [],
    }
    async with common.flushed_redis(aioredis.Redis.from_url(url)) as client:
        lease = Lease(client, "ingest.bench", "bench", 600_000)
        assert await lease.acquire() and lease.token is not None
        fence = Fenced(lease.key, lease.token)
        await one_round(client, data, None, args.entries // 5, args.batch)  # warm both paths
        await one_round(client, data, fence, args.entries // 5, args.batch)
        for _ in range(args.repeats):
            for aged in (False, True):
                suffix = " aged" if aged else ""
                plain = await one_round(client, data, None, args.entries, args.batch, aged)
                rounds["plain" + suffix].append(plain)
                fenced = await one_round(client, data, fence, args.entries, args.batch, aged)
                rounds["fenced" + suffix].append(fenced)
    summary = {
        mode: {key: common.median([r[key] for r in found]) for key in found[0]}
        for mode, found in rounds.items()
    }
    return {"entry_bytes": len(data), "rounds": rounds, "medians": summary}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=50, help="entries per flush (default 50)")
    parser.add_argument("--events", type=int, default=10, help="trades per entry (default 10)")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--redis-db", type=int, default=15)
    parser.add_argument("--result", default="ingest_fence")
    args = parser.parse_args()
    with common.claimed_redis_db(args.redis_db):
        found = asyncio.run(run(args))
    medians = found["medians"]

    def ratio(over: str, under: str) -> list[str]:
        a, b = medians[over], medians[under]
        rate, cpu = a["entries_per_s"] / b["entries_per_s"], a["redis_us_per_entry"] / b["redis_us_per_entry"]
        command = a["command_us_per_entry"] / b["command_us_per_entry"]
        return [f"{over} / {under}", f"{rate:.2f}", f"{cpu:.2f}", f"{command:.2f}", ""]

    common.print_table(
        ["mode", "entries/s", "Redis CPU µs/entry", "Redis command µs/entry", "of which XTRIM"],
        [
            *[
                [
                    mode,
                    f"{m['entries_per_s']:,.0f}",
                    f"{m['redis_us_per_entry']:.2f}",
                    f"{m['command_us_per_entry']:.2f}",
                    f"{m['xtrim_us_per_entry']:.3f}",
                ]
                for mode, m in medians.items()
            ],
            ratio("fenced", "plain"),
            ratio("plain aged", "plain"),
            ratio("fenced aged", "fenced"),
        ],
    )
    payload = {
        "command": common.command_line(),
        "at": common.now_iso(),
        "machine": common.machine(),
        "source": common.source_version(),
        **found,
    }
    print(common.write_result(args.result, payload))


if __name__ == "__main__":
    main()
