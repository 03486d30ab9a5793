"""`trademesh backtest` of a perpetual over history the real recorder wrote in PostgreSQL, with a
sim config whose funding comes every minute: the run pays funding on its positions, says so in
its summary, and says exactly what the same run over the same events in memory says."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.forked_services import run_command
from tests.integration.postgres_server import database_url, fresh_database
from tests.integration.test_backtest_cli import iso
from tests.unit.test_backtest_funding import PERP, sim_config
from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.outcome import outcome
from trademesh.core.backtest.session import drive_sync
from trademesh.core.backtest.summary import summary
from trademesh.core.backtest.synthetic import Walk, walk
from trademesh.core.platform.bus.codec import FIELD, decode, encode_market
from trademesh.core.recorder.app import Recorder, RecorderConfig, prepare
from trademesh.core.recorder.database import open_pool

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL and a process
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

MINUTE_NS = 60 * 10**9
# Twenty minutes of a 1 s walk of the perpetual ending a minute ago: partitions the recorder made.
SPEC = Walk(
    symbol=PERP,
    start_ns=time.time_ns() // MINUTE_NS * MINUTE_NS - 21 * MINUTE_NS,
    steps=1200,
    volatility=0.001,
)
TREND = "trademesh/core/detector/strategies/trend.toml"


async def record(url: str) -> int:
    """The walk through the recorder's own bus handler; the number of events."""
    pool = await open_pool(url)
    try:
        options = RecorderConfig(database_url=url, redis_url="redis://unused")
        recorder = Recorder(pool, await prepare(pool, options), options)
        events = list(walk(SPEC))
        chunks = [events[i : i + 1000] for i in range(0, len(events), 1000)]
        entries: list[Any] = [
            (f"{i + 1}-0", decode({FIELD: encode_market("test", c)})) for i, c in enumerate(chunks)
        ]
        await recorder.handle("md.{sim}.trades", entries)
        return len(events)
    finally:
        await pool.close()


async def test_a_recorded_perpetuals_backtest_pays_funding_as_the_same_run_in_memory(
    fresh_database: str, tmp_path: Path
) -> None:
    recorded = await record(fresh_database)
    end = SPEC.start_ns + SPEC.steps * SPEC.step_ns
    sim = sim_config(tmp_path)
    done = run_command(
        [
            "backtest", "--strategy", TREND, "--symbols", PERP,
            "--from", iso(SPEC.start_ns), "--to", iso(end), "--database-url", fresh_database,
            "--sim-config", str(sim), "--sample-s", "60", "--no-progress",
        ],
        timeout_s=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith(f"{recorded:,} events")
    config = BacktestConfig(
        strategies=(Path(TREND),), start_ns=SPEC.start_ns, end_ns=end, symbols=(PERP,), sample_s=60,
        sim_config=sim,
    )  # fmt: skip
    in_memory = build(config)
    expected = summary(outcome(drive_sync(in_memory, walk(SPEC)), 60 * 10**9))
    assert lines[: len(expected)] == expected
    funding = [line for line in lines if line.startswith("funding: ")]
    assert len(funding) == 1 and " USDT" in funding[0], lines
    assert in_memory.tape.funding and in_memory.books.refused == []
