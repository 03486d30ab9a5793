"""Sweeps run by their runners: this machine's processes give exactly the results of each point
run serially in this process, a Dask local cluster gives exactly the local runner's, a
worker's error comes back as it was raised, walk-forward folds give their results per fold,
`trademesh backtest-sweep` prints the ranked table (and refuses a database that does not answer
as PostgreSQL before it starts a worker), and a sweep over the recorder's history (each worker
opening its own source) gives the same table as the same walk in memory."""

from __future__ import annotations

import asyncio
import dataclasses
import multiprocessing.forkserver
import multiprocessing.resource_tracker
import os
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from core.backtest.assemble import strategies_of
from core.backtest.config import BacktestConfig
from core.backtest.runners import DaskRunner, LocalRunner
from core.backtest.sweep import ParamSpace, Point, TrialResult, ranked
from core.backtest.sweep_table import sweep_table
from core.backtest.synthetic import Walk, walk
from core.backtest.trial import SyntheticHistory, Trial, run_trial
from core.backtest.walkforward import Sweep, prepare, run_sweep, walk_forward
from core.foundations.bus.codec import FIELD, decode, encode_market
from core.foundations.errors import InvalidArgument
from core.recorder.app import Recorder, RecorderConfig
from core.recorder.app import prepare as prepare_recorder
from core.recorder.database import open_pool
from tests.advisor_support import FEE_FREE
from tests.forked_services import run_command
from tests.integration.postgres_server import database_url, new_database, with_database
from tests.integration.support import ClosesOnFirstBytes, tcp_server

pytestmark = [pytest.mark.integration]  # worker processes, a Dask cluster
__all__ = ["database_url"]  # the fixture, for pytest

TREND = Path("core/detector/strategies/trend.toml")
SPEC = Walk(steps=480, volatility=0.001)
END_NS = SPEC.start_ns + SPEC.steps * SPEC.step_ns
SPACE = ParamSpace.of({"fast.period": [4, 8], "slow.period": [16, 26]})
# Minutes of a walk: the advisor on its 1s bars, fees not counted (their ATR clears none).
ON_1S: dict[str, Any] = {"timeframe": "1s", "advisor_config": FEE_FREE}


@pytest.fixture(scope="module", autouse=True)
def no_helpers_left() -> Iterator[None]:
    """The pools' helpers (multiprocessing's fork server and resource tracker) end with the
    module, not with the test run."""
    yield
    multiprocessing.forkserver._forkserver._stop()  # type: ignore[attr-defined]
    multiprocessing.resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def sweep() -> Sweep:
    config = BacktestConfig(
        strategies=(TREND,), start_ns=SPEC.start_ns, end_ns=END_NS, symbols=("BTC/USDT",), sample_s=60,
        **ON_1S,
    )  # fmt: skip
    return prepare(config, strategies_of(config), SPACE.grid(), SyntheticHistory(SPEC))


@pytest.fixture(scope="module")
def serial(sweep: Sweep) -> list[TrialResult]:
    return [run_trial(t) for t in sweep.trials(SPEC.start_ns, END_NS)]


# One pool and one cluster for the module, as a walk-forward keeps its runner across batches:
# each worker's start (imports, the advisor's model) is paid once, not per test.
@pytest.fixture(scope="module")
def local_runner() -> Iterator[LocalRunner]:
    with LocalRunner(workers=2) as runner:
        yield runner


@pytest.fixture(scope="module")
def dask_runner() -> Iterator[DaskRunner]:
    with DaskRunner(workers=2) as runner:
        yield runner


@pytest.fixture(scope="module")
def local(sweep: Sweep, local_runner: LocalRunner) -> list[TrialResult]:
    seen: list[TrialResult] = []
    results = local_runner.run(sweep.trials(SPEC.start_ns, END_NS), seen.append)
    assert sorted(r.index for r in seen) == [0, 1, 2, 3]  # each result reported as it came
    return results


def test_the_points_trade_and_differ(serial: list[TrialResult]) -> None:
    assert [r.point for r in serial] == SPACE.grid()
    assert all(r.events == SPEC.steps * (1 + SPEC.trades_per_step) for r in serial)
    assert all(r.metrics["total"].trades > 0 for r in serial)
    assert len({r.metrics["total"].total_return for r in serial}) > 1, "the parameters change the run"


def test_the_local_runner_gives_exactly_the_serial_results(
    serial: list[TrialResult], local: list[TrialResult]
) -> None:
    assert local == serial  # in the trials' order, every Metrics field equal


def test_a_dask_local_cluster_gives_exactly_the_local_runners_results(
    sweep: Sweep, local: list[TrialResult], dask_runner: DaskRunner
) -> None:
    assert dask_runner.run(sweep.trials(SPEC.start_ns, END_NS)) == local
    assert ranked(local, "sharpe") == run_sweep(sweep, dask_runner)


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_a_workers_error_comes_back_as_it_was_raised(
    sweep: Sweep, engine: str, request: pytest.FixtureRequest
) -> None:
    runner: LocalRunner | DaskRunner = request.getfixturevalue(f"{engine}_runner")
    (good, *_) = sweep.trials(SPEC.start_ns, END_NS)
    strategy = good.strategies[0]
    broken = dataclasses.replace(strategy, symbols=("DOGE/USDT",))  # no instrument of the venue
    bad = dataclasses.replace(good, index=1, point=Point((("fast.period", 4),)), strategies=(broken,))
    with pytest.raises(InvalidArgument) as caught:
        runner.run([bad])
    assert caught.value.violations[0].field == "symbols" and "DOGE/USDT" in str(caught.value)


def test_walk_forward_gives_each_folds_best_point_in_and_out_of_sample(
    sweep: Sweep, local_runner: LocalRunner
) -> None:
    done = walk_forward(sweep, local_runner, 2)
    assert [f.fold.index for f in done] == [0, 1]
    assert done[0].fold.test_end_ns == done[1].fold.test_start_ns and done[1].fold.test_end_ns == END_NS
    for fold in done:
        cut = fold.fold
        assert len(fold.in_sample) == 4
        assert fold.in_sample == ranked(fold.in_sample, "sharpe")
        # Out of sample: the in-sample best point, run on the test part (serially, the same).
        trial: Trial = sweep.trials(cut.test_start_ns, cut.test_end_ns)[fold.best.index]
        assert fold.out_of_sample.point == fold.best.point
        assert fold.out_of_sample == run_trial(trial)
        in_trial = sweep.trials(cut.train_start_ns, cut.train_end_ns)[fold.best.index]
        assert fold.best == run_trial(in_trial)


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


@pytest.fixture(scope="module")
async def recorded(database_url: str) -> AsyncIterator[str]:
    """A database holding RECORDED as the real recorder wrote it: the sweeps over it only read."""
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
    # The exact line is core.foundations.postgres.check_database's, which the command runs before
    # its worker pool: a worker meeting the URL said it otherwise (and without the setting), and a
    # connect that had waited for its timeout says "no answer ... within 5 s" instead. No wall-clock
    # bound: on a loaded machine the command's own start-up alone can take seconds.
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
