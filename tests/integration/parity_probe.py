"""A probe, not a test (issue 18's parity, in progress): a live mesh (sim, ingest, recorder,
bars) with the detector running the examples for a while, then the detector's stage of the
backtest over the recorded window, warmed from the recorded bars as the live detector warms
from the venue's candles; both signal lists printed side by side.

    DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/14 \\
        .venv/bin/python -m tests.integration.parity_probe 60

First result (2026-11-24, 60 s live): 9 signals each side, 7 identical in strategy, symbol,
direction, conviction and event time; two a second or five later in the backtest (docs/backtest.md,
"Parity with live")."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import asyncpg
import redis

from core.backtest.assemble import recorded_history
from core.backtest.detect import DetectStage
from core.backtest.source import RecordedSource
from core.detector.convert import signal_to_pb
from core.detector.engine.catalog import Catalog
from core.detector.strategy_file import load_strategy
from tests.integration.gateway_support import Processes
from tests.integration.mesh import WARM_HISTORY_S, venue_link
from tests.integration.postgres_server import new_database

EXAMPLES = Path("core/detector/strategies")


async def live(database: str, bus_url: str, seconds: float, directory: Path) -> tuple[int, int]:
    """The mesh; the detector's (start, stop) in ns."""
    processes = Processes(directory, database)
    try:
        gateway = processes.gateway()
        sim = processes.sim(gateway, f"history_s = {WARM_HISTORY_S}\n")
        processes.mesh_service(gateway, "ingest", *venue_link("ingest", sim.address), redis_url=bus_url)
        processes.mesh_service(gateway, "recorder", "--database-url", database, redis_url=bus_url)
        processes.mesh_service(gateway, "bars", *venue_link("bars", sim.address), redis_url=bus_url)
        await asyncio.sleep(45)  # recorded bars for the warm-up
        start = time.time_ns()
        args = ("--venue", f"sim={sim.address}", "--database-url", database)
        detector = processes.mesh_service(gateway, "detector", *args, redis_url=bus_url)
        await asyncio.sleep(seconds)
        detector.terminate()
        stop = time.time_ns()
        await asyncio.sleep(4)  # the recorder's last batch
        return start, stop
    finally:
        await processes.stop_all()


def examples() -> list[Any]:
    catalog = Catalog.builtin()
    return [load_strategy(path, catalog) for path in sorted(EXAMPLES.glob("*.toml"))]


async def backtested(database: str, start: int, stop: int) -> list[Any]:
    strategies = examples()
    stage = DetectStage(strategies, start)
    config = SimpleNamespace(database_url=database, start_ns=start)
    history = await recorded_history(config, SimpleNamespace(detect=stage))  # type: ignore[arg-type]
    stage.warm_from_history(history, start)
    symbols = sorted({s for strategy in strategies for s in strategy.symbols})
    signals: list[Any] = []
    group: list[Any] = []
    at = -1
    async for recorded in RecordedSource(database, "sim", symbols, start, stop):
        if recorded.ts_ns != at and group:
            signals += [signal_to_pb(s) for s in stage.feed("sim", group, at).signals]
            group = []
        at = recorded.ts_ns
        group.append(recorded.message)
    return signals


async def main(seconds: float) -> None:
    server = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    bus_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/14")
    redis.Redis.from_url(bus_url).flushdb()
    directory = Path("/tmp/parity-probe")
    await asyncio.to_thread(directory.mkdir, exist_ok=True)
    async with new_database(server, "parity") as database:
        start, stop = await live(database, bus_url, seconds, directory)
        connection = await asyncpg.connect(database)
        try:
            rows = await connection.fetch(
                "SELECT strategy_id, symbol, direction, conviction::text, ts_event_ns FROM signals "
                "ORDER BY ts_event_ns"
            )
        finally:
            await connection.close()
        replayed = await backtested(database, start, stop)
    print(f"live {len(rows)} signals, backtest {len(replayed)}")
    for row in rows:
        print("live    ", tuple(row))
    for signal in replayed:
        print(
            "backtest",
            (signal.strategy_id, signal.symbol, signal.direction, signal.conviction, signal.ts_event_ns),
        )


if __name__ == "__main__":
    asyncio.run(main(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0))
