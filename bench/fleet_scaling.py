"""Replicas on one machine (issue 39): CPU per event of ingest and of the recorder with one and two
replicas, over two sim venues, measured in one run.

On two cores a second replica cannot add throughput; what it costs is the figure: the CPU the
replicas use together per event recorded, against one replica's, in the same run (ratios; the
machine is shared). Configurations (ingest replicas, recorder replicas): (1, 1), (2, 1), (1, 2),
taken in turn --repeats times; each with fresh processes, an empty bus and empty tables, two sims
running throughout. After --warmup s, a window of --duration s: events = rows recorded in the
window (every table), CPU of each group of processes over the window.

    .venv/bin/python bench/fleet_scaling.py --repeats 3

Redis at $REDIS_URL (else 127.0.0.1:6379), logical database --redis-db (14), claimed and flushed;
PostgreSQL at $DATABASE_URL (else postgres@127.0.0.1:5432), a scratch database, dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import os
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg

from trademesh.core.platform.config.env import DATABASE_URL, REDIS_URL, TOKEN, TRADE_TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

CONFIGS = ((1, 1), (2, 1), (1, 2))
VENUES = ("a", "b")
TABLES = ("trades", "book_deltas", "tickers", "candles")
_TOKEN = "bench-token"


def sim_toml(trades_per_s: int, book_per_s: int) -> str:
    rows = ["tick_interval_ms = 50\n"]
    for symbol, price in (("BTC/USDT", "65000"), ("ETH/USDT", "3500")):
        rows.append(
            f'[[symbols]]\nsymbol = "{symbol}"\nstart_price = "{price}"\ntick_size = "0.01"\n'
            f'lot_size = "0.0001"\ntrades_per_s = {trades_per_s}\nbook_updates_per_s = {book_per_s}\n'
        )
    return "\n".join(rows)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Run:
    """One configuration's processes, logs under `workdir`."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self.workdir = workdir
        self.env = env
        self.groups: dict[str, list[ServiceProcess]] = {"ingest": [], "recorder": []}

    def start(self, group: str, args: list[str]) -> None:
        with (self.workdir / f"{group}-{len(self.groups[group])}.log").open("a") as log:
            self.groups[group].append(start_service(args, env=self.env, stderr=log))

    def cpu(self) -> dict[str, float]:
        return {name: sum(cpu_s(p.process.pid) for p in found) for name, found in self.groups.items()}

    def stop(self) -> None:
        for found in self.groups.values():
            for process in found:
                process.terminate()


async def present_tables(db: Any) -> list[str]:
    rows = await db.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    return [r["tablename"] for r in rows]


async def rows_between(db: Any, t0: float, t1: float) -> int:
    """Rows recorded in [t0, t1) in every market table."""
    at = [datetime.datetime.fromtimestamp(t, datetime.UTC) for t in (t0, t1)]
    total = 0
    present = await present_tables(db)
    for table in (t for t in TABLES if t in present):
        query = f"SELECT count(*) FROM {table} WHERE recorded_at >= $1 AND recorded_at < $2"
        total += int(await db.fetchval(query, *at))
    return total


async def one(args: argparse.Namespace, ctx: dict[str, Any], ingest: int, recorders: int) -> dict[str, Any]:
    db, redis = ctx["db"], ctx["redis"]
    await redis.flushdb()
    tables = [t for t in await present_tables(db) if t in TABLES]
    if tables:
        await db.execute(f"TRUNCATE {', '.join(tables)}")
    run = Run(ctx["workdir"], ctx["env"])
    venues = [
        f for name, sim in zip(VENUES, ctx["sims"], strict=True) for f in ("--venue", f"{name}={sim.address}")
    ]
    try:
        for i in range(recorders):
            run.start(
                "recorder", ["recorder", "--port", "0", "--metrics-port", "-1", "--consumer", f"recorder-{i}"]
            )
        for _ in range(ingest):
            run.start("ingest", ["ingest", "--port", "0", "--metrics-port", "-1", "--no-executions", *venues])
        await asyncio.sleep(args.warmup)  # a bench's settling time, not a test's wait
        cpu0, t0 = run.cpu(), time.time()
        await asyncio.sleep(args.duration)
        cpu1, t1 = run.cpu(), time.time()
        await asyncio.sleep(2)  # the window's last rows committed
        events = await rows_between(db, t0, t1)
    finally:
        run.stop()
    used = {name: cpu1[name] - cpu0[name] for name in cpu0}
    return {
        "ingest": ingest,
        "recorders": recorders,
        "events_per_s": events / (t1 - t0),
        "ingest_us_per_event": used["ingest"] / events * 1e6 if events else None,
        "recorder_us_per_event": used["recorder"] / events * 1e6 if events else None,
    }


async def run_all(args: argparse.Namespace) -> list[dict[str, Any]]:
    redis_url = common.redis_db_url(os.environ.get(REDIS_URL, "redis://127.0.0.1:6379/0"), args.redis_db)
    server = os.environ.get(DATABASE_URL, "postgresql://postgres@127.0.0.1:5432/postgres")
    common.require_local(redis_url, "Redis", "fleet_scaling")
    workdir = common.workdir()
    import redis.asyncio as aioredis

    async with (
        common.scratch_database(server, "bench_fleet") as database,
        common.flushed_redis(aioredis.Redis.from_url(redis_url)) as redis,
    ):
        env = {TOKEN: _TOKEN, TRADE_TOKEN: "bench-trade", REDIS_URL: redis_url, DATABASE_URL: database}
        config = workdir / "sim.toml"
        config.write_text(sim_toml(args.trades_per_s, args.book_per_s))
        sims = []
        with (workdir / "sims.log").open("a") as log:
            for _ in VENUES:
                sims.append(
                    start_service(
                        ["venue", "sim", "--port", "0", "--metrics-port", "-1", "--config", str(config)],
                        env=env,
                        stderr=log,
                    )
                )
        db = await asyncpg.connect(database)
        ctx = {"db": db, "redis": redis, "workdir": workdir, "env": env, "sims": sims}
        results = []
        try:
            for repeat in range(args.repeats):
                for ingest, recorders in CONFIGS:
                    found = await one(args, ctx, ingest, recorders)
                    found["repeat"] = repeat
                    print(found, flush=True)
                    results.append(found)
        finally:
            await db.close()
            for sim in sims:
                with contextlib.suppress(Exception):
                    sim.terminate()
        return results


def summary(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for ingest, recorders in CONFIGS:
        mine = [r for r in results if (r["ingest"], r["recorders"]) == (ingest, recorders)]
        rows.append(
            {
                "ingest": ingest,
                "recorders": recorders,
                **{
                    key: common.median([r[key] for r in mine if r[key] is not None])
                    for key in ("events_per_s", "ingest_us_per_event", "recorder_us_per_event")
                },
            }
        )
    return rows


def _row(r: dict[str, Any], base: dict[str, Any]) -> list[Any]:
    ingest, recorder = r["ingest_us_per_event"], r["recorder_us_per_event"]
    return [
        r["ingest"], r["recorders"], f"{r['events_per_s']:,.0f}",
        f"{ingest:.1f}", f"{ingest / base['ingest_us_per_event']:.2f}",
        f"{recorder:.1f}", f"{recorder / base['recorder_us_per_event']:.2f}",
    ]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trades-per-s", type=int, default=300, help="per symbol, per sim (default 300)")
    parser.add_argument("--book-per-s", type=int, default=700, help="per symbol, per sim (default 700)")
    parser.add_argument("--warmup", type=float, default=6.0)
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--result", default="fleet_scaling")
    args = parser.parse_args()
    with common.claimed_redis_db(args.redis_db):
        results = asyncio.run(run_all(args))
    rows = summary(results)
    base = rows[0]
    common.print_table(
        ["ingest", "recorders", "events/s", "ingest µs/ev", "x one", "recorder µs/ev", "x one"],
        [_row(r, base) for r in rows],
    )
    payload = {"command": common.command_line(), "at": common.now_iso(), "machine": common.machine(),
               "source": common.source_version(), "runs": results, "medians": rows}  # fmt: skip
    print(common.write_result(args.result, payload))


if __name__ == "__main__":
    main()
