"""Sweeps run by their runners: this machine's processes give exactly the results of each point
run serially in this process, a Dask local cluster gives exactly the local runner's, a
worker's error comes back as it was raised, walk-forward folds give their results per fold.
The command over them is tests/integration/test_backtest_sweep_command.py's."""

from __future__ import annotations

import dataclasses
import multiprocessing.forkserver
import multiprocessing.resource_tracker
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.advisor_support import FEE_FREE
from trademesh.core.backtest.assemble import strategies_of
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.runners import DaskRunner, LocalRunner
from trademesh.core.backtest.sweep import ParamSpace, Point, TrialResult, ranked
from trademesh.core.backtest.synthetic import Walk
from trademesh.core.backtest.trial import SyntheticHistory, Trial, run_trial
from trademesh.core.backtest.walkforward import Sweep, prepare, run_sweep, walk_forward
from trademesh.core.platform.errors import InvalidArgument

pytestmark = [pytest.mark.integration]  # worker processes, a Dask cluster

TREND = Path("trademesh/core/detector/strategies/trend.toml")
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
