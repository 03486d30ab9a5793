"""`trademesh backtest-sweep` as a user runs it: the ranked table (the same on a Dask local
cluster), a sweep over the recorder's history (each worker opening its own source) the same as the
same walk in memory, a range cut to the recorded history, and a database that does not answer as
PostgreSQL refused in one line before a worker starts.

The runners themselves are tests/integration/test_backtest_sweep.py's. These tests share no
module-scoped fixture except the refusals' server, so they spread over the workers (the module
whole, as one group, was the suite's longest run on one worker: 415 s)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.advisor_support import FEE_FREE
from tests.forked_services import run_command
from tests.integration.postgres_server import database_url, new_database, with_database
from tests.integration.support import ClosesOnFirstBytes, tcp_server
from trademesh.core.backtest.assemble import strategies_of
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.sweep import ParamSpace, ranked
from trademesh.core.backtest.sweep_table import sweep_table
from trademesh.core.backtest.synthetic import Walk, walk
from trademesh.core.backtest.trial import SyntheticHistory, run_trial
from trademesh.core.backtest.walkforward import prepare
from trademesh.core.platform.bus.codec import FIELD, decode, encode_market
from trademesh.core.recorder.app import Recorder, RecorderConfig
from trademesh.core.recorder.app import prepare as prepare_recorder
from trademesh.core.recorder.database import open_pool

pytestmark = [pytest.mark.integration]  # the command's processes, a Dask cluster
__all__ = ["database_url"]  # the fixture, for pytest

TREND = Path("trademesh/core/detector/strategies/trend.toml")
# Minutes of a walk: the advisor on its 1s bars, fees not counted (their ATR clears none).
ON_1S: dict[str, Any] = {"timeframe": "1s", "advisor_config": FEE_FREE}


def sweep_command(*args: str) -> subprocess.CompletedProcess[str]:
    """`trademesh backtest-sweep` of the trend strategy's fast.period 4 and 8, with `args`."""
    return run_command(
        [
            "backtest-sweep", "--strategy", str(TREND), "--symbols", "BTC/USDT", "--param", "fast.period=4,8",
            "--no-progress", *args,
        ],
        timeout_s=240,
    )  # fmt: skip


def test_the_command_prints_the_points_ranked() -> None:
    done = sweep_command(
        "--from", "2026-01-01", "--to", "2026-01-01T00:06", "--synthetic-seed", "7", "--workers", "2"
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "2 points, ranked by sharpe of total:"
    assert lines[1].split() == ["rank", "point", "return", "sharpe", "max", "dd", "trades"]
    assert [line.split()[:2] for line in lines[2:]] in (
        [["1", "fast.period=4"], ["2", "fast.period=8"]],
        [["1", "fast.period=8"], ["2", "fast.period=4"]],
    )
    sharpes = [float(line.split()[3]) for line in lines[2:]]
    assert sharpes == sorted(sharpes, reverse=True)


def test_dask_local_prints_what_the_local_engine_prints() -> None:
    """`--dask local`: the same sweep on a Dask local cluster, the same table to the character."""
    given = ("--from", "2026-01-01", "--to", "2026-01-01T00:06", "--synthetic-seed", "7", "--workers", "2")
    local, dask = sweep_command(*given), sweep_command(*given, "--dask", "local")
    assert local.returncode == 0, local.stderr
    assert dask.returncode == 0, dask.stderr
    assert dask.stdout == local.stdout
    assert local.stdout.startswith("2 points, ranked by sharpe of total:")


MINUTE_NS = 60 * 10**9
# Eight minutes of a 1 s walk ending a minute ago (partitions the recorder made), the walk the
# command's --synthetic-seed 7 makes of the same range.
RECORDED = Walk(start_ns=time.time_ns() // MINUTE_NS * MINUTE_NS - 9 * MINUTE_NS, steps=480)


async def record(url: str) -> None:
    pool = await open_pool(url)
    try:
        options = RecorderConfig(database_url=url, redis_url="redis://unused")
        recorder = Recorder(pool, await prepare_recorder(pool, options), options)
        events = list(walk(RECORDED))
        chunks = [events[i : i + 1000] for i in range(0, len(events), 1000)]
        entries: list[Any] = [
            (f"{i + 1}-0", decode({FIELD: encode_market("test", c)})) for i, c in enumerate(chunks)
        ]
        await recorder.handle("md.{sim}.trades", entries)
    finally:
        await pool.close()


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


@pytest.fixture
async def recorded(database_url: str) -> AsyncIterator[str]:
    """A database holding RECORDED as the real recorder wrote it (a few seconds): each test its own,
    so that the two long tests over it run on two workers."""
    async with new_database(database_url, "sweep") as url:
        await record(url)
        yield url


@pytest.mark.slow  # PostgreSQL
async def test_a_sweep_over_recorded_history_on_a_dask_cluster_is_the_walks_in_memory(recorded: str) -> None:
    end = RECORDED.start_ns + RECORDED.steps * RECORDED.step_ns
    done = sweep_command(
        "--from", iso(RECORDED.start_ns), "--to", iso(end), "--engine", "dask", "--workers", "2",
        "--database-url", recorded, "--timeframe", "1s", "--advisor-config", str(FEE_FREE),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    config = BacktestConfig(
        strategies=(TREND,), start_ns=RECORDED.start_ns, end_ns=end, symbols=("BTC/USDT",), **ON_1S
    )
    points = ParamSpace.of({"fast.period": [4, 8]}).grid()
    sweep = prepare(config, strategies_of(config), points, SyntheticHistory(RECORDED))
    in_memory = ranked([run_trial(t) for t in sweep.trials(RECORDED.start_ns, end)])
    assert all(r.metrics["total"].trades > 0 for r in in_memory)
    assert done.stdout.strip() == sweep_table(in_memory, "sharpe", "total")


@pytest.mark.slow  # PostgreSQL
async def test_a_sweep_over_decades_runs_the_recorded_minutes_and_says_so(recorded: str) -> None:
    """Issue 37, item 22: a range is cut to the recorded history (a century of clock ticks
    otherwise), and the sweep over it is the sweep over the history's own range."""
    end = RECORDED.start_ns + RECORDED.steps * RECORDED.step_ns
    # The two commands at once: neither needs the other.
    exact, decades = await asyncio.gather(
        asyncio.to_thread(
            sweep_command, "--from", iso(RECORDED.start_ns), "--to", iso(end), "--database-url", recorded
        ),
        asyncio.to_thread(
            sweep_command, "--from", "2020-01-01", "--to", "2070-01-01", "--database-url", recorded
        ),
    )
    assert exact.returncode == 0 and decades.returncode == 0, exact.stderr + decades.stderr
    assert decades.stdout == exact.stdout
    assert "cut to the recorded history" in decades.stderr and "cut to" not in exact.stderr


@pytest.fixture(scope="module")
def closing_port() -> Iterator[int]:
    """A server that takes a connection and closes it on the first bytes: not PostgreSQL."""
    yield from tcp_server(ClosesOnFirstBytes)


RECORDED_RUN = ["--strategy", str(TREND), "--from", "2026-01-01", "--to", "2026-01-02", "--no-progress"]
SWEEP_RUN = ["backtest-sweep", "--param", "fast.period=4,8", *RECORDED_RUN]
NOT_POSTGRESQL = {
    "nothing listens": ": nothing listens there (connection refused)",
    "not postgresql": " answers, but not as PostgreSQL (unexpected connection_lost() call)",
}


@pytest.fixture(scope="module")
def commands_start() -> None:
    """The fork server started (its libraries imported): a command's time is its own."""
    assert run_command(["backtest-sweep", "--help"], timeout_s=120).returncode == 0


def _refused(server: str, closing_port: int, args: list[str]) -> None:
    """The command refuses with one line naming DATABASE_URL and exit code 2, a server
    that does not answer as PostgreSQL at its URL."""
    port = 1 if server == "nothing listens" else closing_port
    env = {**os.environ, "DATABASE_URL": f"postgresql://u:secret@127.0.0.1:{port}/x"}
    done = run_command(args, env, 60)
    assert done.returncode == 2, done.stderr
    redacted = f"postgresql://u:***@127.0.0.1:{port}/x"
    assert done.stderr == f"trademesh: DATABASE_URL: {redacted}{NOT_POSTGRESQL[server]}\n"


@pytest.mark.parametrize("server", list(NOT_POSTGRESQL))
@pytest.mark.usefixtures("commands_start")
def test_a_sweeps_database_that_does_not_answer_as_postgresql_is_one_line_naming_it_at_once(
    closing_port: int, server: str
) -> None:
    """Issue 38: a sweep met a bad DATABASE_URL in its workers, once its pool had started
    (24-60 s), and said it without naming the setting."""
    # The exact line is trademesh.core.platform.postgres.connect.check_database's, which the command
    # runs before its worker pool: a worker meeting the URL said it otherwise (and without the
    # setting), and a connect that had waited for its timeout says "no answer ... within 5 s"
    # instead. No wall-clock bound: on a loaded machine the command's own start-up alone can take
    # seconds.
    _refused(server, closing_port, SWEEP_RUN)


@pytest.mark.parametrize("server", list(NOT_POSTGRESQL))
def test_a_backtests_database_that_does_not_answer_as_postgresql_is_the_same_line(
    closing_port: int, server: str
) -> None:
    _refused(server, closing_port, ["backtest", *RECORDED_RUN])


@pytest.mark.slow  # PostgreSQL
def test_a_database_postgresql_refuses_is_one_line_naming_the_flag(database_url: str) -> None:
    url = with_database(database_url, "no_such_database_here")
    done = run_command([*SWEEP_RUN, "--database-url", url], timeout_s=60)
    assert done.returncode == 2 and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("trademesh: database-url: ") and "PostgreSQL refuses it: " in done.stderr
    assert 'database "no_such_database_here" does not exist' in done.stderr
