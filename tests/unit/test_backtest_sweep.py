"""Sweeps, the pure parts: the grid and random points (right and deterministic), a point
applied to a strategy (a bad module, parameter or value named), the ranking, the walk-forward
folds, and bad command-line input as one line and exit code 2."""

from __future__ import annotations

import ast
import itertools
import pickle
from decimal import Decimal
from pathlib import Path

import pytest

from trademesh.core.backtest.folds import folds
from trademesh.core.backtest.results import Metrics
from trademesh.core.backtest.sweep import (
    ParamSpace,
    Point,
    Range,
    TrialResult,
    apply_point,
    check_point,
    parse_param,
    ranked,
)
from trademesh.core.cli import main
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.strategy_file import Strategy, load_strategy
from trademesh.core.platform.errors import FieldViolation, InvalidArgument

TREND = Path("trademesh/core/detector/strategies/trend.toml")


@pytest.fixture(scope="module")
def trend() -> Strategy:
    return load_strategy(TREND, Catalog.builtin())


def test_a_grid_is_every_combination_the_first_parameter_slowest() -> None:
    points = ParamSpace.of({"fast.period": [8, 12, 16], "slow.period": [26, 40]}).grid()
    assert [p.as_dict() for p in points] == [
        {"fast.period": f, "slow.period": s} for f in (8, 12, 16) for s in (26, 40)
    ]
    assert points == ParamSpace.of({"fast.period": [8, 12, 16], "slow.period": [26, 40]}).grid()
    assert points[0].label() == "fast.period=8 slow.period=26"


def test_random_points_are_distinct_in_their_ranges_and_the_same_for_the_same_seed() -> None:
    space = ParamSpace.of({"fast.period": Range(5, 20), "slow.period": [26, 40, 60]})
    points = space.random(10, seed=3)
    assert len(points) == len(set(points)) == 10
    for point in points:
        values = point.as_dict()
        assert isinstance(values["fast.period"], int) and 5 <= values["fast.period"] <= 20
        assert values["slow.period"] in (26, 40, 60)
    assert space.random(10, seed=3) == points
    assert space.random(10, seed=4) != points
    # The whole countable space, in some order: every point once.
    everything = space.random(16 * 3, seed=3)
    assert len(set(everything)) == 48


def test_a_range_of_floats_is_sampled_uniformly_and_deterministically() -> None:
    space = ParamSpace.of({"volume.factor": Range(1.5, 3.0)})
    points = space.random(5, seed=1)
    factors = [p.as_dict()["volume.factor"] for p in points]
    assert all(isinstance(f, float) and 1.5 <= f <= 3.0 for f in factors)
    assert len(set(factors)) == 5 and space.random(5, seed=1) == points


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: ParamSpace.of({"fast.period": Range(5, 9)}).grid(), "param.fast.period"),
        (lambda: ParamSpace.of({"fast.period": [1, 2]}).random(3, seed=1), "random"),
        (lambda: ParamSpace.of({"fast.period": [1, 2]}).random(0, seed=1), "random"),
        (lambda: ParamSpace.of({"period": [1, 2]}), "param"),
        (lambda: ParamSpace.of({"fast.period": []}), "param.fast.period"),
        (lambda: ParamSpace.of({"fast.period": Range(9, 5)}), "param.fast.period"),
        (lambda: ParamSpace.of({}), "param"),
        (lambda: parse_param("fast.period"), "param"),
        (lambda: parse_param("fast.period=a..9"), "param.fast.period"),
    ],
)
def test_a_bad_space_is_refused_naming_it(make: object, field: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        make()  # type: ignore[operator]
    assert caught.value.violations[0].field == field


def test_params_parse_from_the_command_line() -> None:
    assert parse_param("fast.period=8,12,16") == ("fast.period", (8, 12, 16))
    assert parse_param("fast.period=8..20") == ("fast.period", Range(8, 20))
    assert parse_param("volume.factor=1.5..3") == ("volume.factor", Range(1.5, 3))
    assert parse_param("trend_up.op=>,<") == ("trend_up.op", (">", "<"))
    assert parse_param("a.flag=true,false") == ("a.flag", (True, False))


def test_a_point_changes_only_the_params_it_names(trend: Strategy) -> None:
    point = Point((("fast.period", 8), ("slow.period", 40)))
    applied = check_point(trend, point)
    params = {decl.id: dict(decl.params) for decl in applied.modules}
    assert params["fast"] == {"period": 8} and params["slow"] == {"period": 40}
    assert [d for d in applied.modules if d.id not in ("fast", "slow")] == [
        d for d in trend.modules if d.id not in ("fast", "slow")
    ]
    assert dict(trend.modules[2].params) == {"period": 12}  # the original is left as it was


@pytest.mark.parametrize(
    ("name", "value", "field", "said"),
    [
        ("fast.period", -1, "modules.fast.params.period", "-1 is out of range"),
        ("fast.period", "abc", "modules.fast.params.period", "'abc' is not a int"),
        ("fast.nope", 3, "modules.fast.params.nope", "no parameter 'nope'"),
        ("fst.period", 3, "param.fst.period", "no module 'fst'"),
    ],
)
def test_a_bad_point_is_refused_naming_the_module_param_and_value(
    trend: Strategy, name: str, value: object, field: str, said: str
) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_point(trend, Point(((name, value),)))  # type: ignore[arg-type]
    violation = caught.value.violations[0]
    assert violation.field == field and said in violation.description
    if not name.startswith("fst"):
        assert f"point {name}={value}" in violation.description
    with pytest.raises(InvalidArgument):
        apply_point(trend, Point((("nothing.period", 1),)))


def metrics(sharpe: float, drawdown: str = "0.1", profit_factor: float | None = 1.0) -> Metrics:
    zero = Decimal(0)
    return Metrics(
        zero, 0.0, sharpe, 0.0, Decimal(drawdown), 0.0, 0.0, profit_factor, 0.0, 0.0, zero, 0, zero, zero
    )


def result(index: int, m: Metrics) -> TrialResult:
    return TrialResult(index, Point((("fast.period", index),)), {"total": m}, 0)


def test_results_rank_best_first_by_the_metric_ties_in_the_sweeps_order() -> None:
    results = [result(0, metrics(1.0, "0.3")), result(1, metrics(2.0, "0.1")), result(2, metrics(1.0, "0.2"))]
    assert [r.index for r in ranked(results)] == [1, 0, 2]
    assert [r.index for r in ranked(results, "max_drawdown")] == [1, 2, 0]  # lower is better
    unbounded = [result(0, metrics(1.0, profit_factor=None)), result(1, metrics(1.0, profit_factor=0.5))]
    assert [r.index for r in ranked(unbounded, "profit_factor")] == [1, 0]
    with pytest.raises(InvalidArgument, match="metric"):
        ranked(results, "luck")
    with pytest.raises(InvalidArgument, match="of"):
        ranked(results, "sharpe", "nobody")


@pytest.mark.parametrize("anchored", [False, True])
@pytest.mark.parametrize("count", [1, 3, 7])
def test_folds_test_parts_tile_the_range_after_their_in_sample_parts(count: int, anchored: bool) -> None:
    start, end = 1_000, 1_000 + 10**12 + 7
    cuts = folds(start, end, count, anchored)
    assert [f.index for f in cuts] == list(range(count))
    block = (end - start) // (count + 1)
    assert cuts[0].test_start_ns - start in (block, block + 1) and cuts[-1].test_end_ns == end
    for before, after in itertools.pairwise(cuts):
        assert before.test_end_ns == after.test_start_ns  # no gap, no overlap
    for fold in cuts:
        assert fold.train_start_ns < fold.train_end_ns == fold.test_start_ns < fold.test_end_ns
        assert fold.train_start_ns == start if anchored else fold.train_start_ns >= start
    if not anchored and count > 1:
        assert cuts[1].train_start_ns == cuts[0].test_start_ns  # rolling: one block in sample


def test_bad_folds_are_refused() -> None:
    for count in (0, 101):
        with pytest.raises(InvalidArgument, match="folds"):
            folds(0, 10**9, count)
    with pytest.raises(InvalidArgument, match="folds"):
        folds(0, 3, 3)


def test_an_invalid_argument_pickles_whole_so_a_workers_error_comes_back() -> None:
    error = InvalidArgument([FieldViolation("a.b", "bad"), FieldViolation("c", "worse")])
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is InvalidArgument and again.violations == error.violations
    assert str(again) == str(error)


SWEEP = [
    "backtest-sweep", "--strategy", str(TREND), "--symbols", "BTC/USDT", "--from", "2026-01-01",
    "--to", "2026-01-01T00:10", "--synthetic-seed", "7", "--no-progress",
]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "said"),
    [
        (["--param", "fast.period=8,-3"], "-3 is out of range"),
        (["--param", "fast.period=8", "--engine", "spark"], "'spark' is not one of local, dask"),
        (["--param", "fast.period=8", "--metric", "luck"], "'luck' is not one of"),
        (["--param", "fast.period=8", "--folds", "500"], "folds: must be between 0 and 100, got 500"),
        (["--param", "fast.period=8", "--workers", "-2"], "workers: must be between 0 and 1024, got -2"),
        (["--param", "fast.period=8", "--random", "-1"], "random: must be between 0 and 100000, got -1"),
        (["--param", "fast.period=8", "--engine", "local", "--address", "tcp://x:1"], "address"),
        (["--param", "fast.period=5..9"], "a range is sampled"),
        (["--param", "fast.period=8", "--dask", "local", "--engine", "local"], "--engine says 'local'"),
        (["--param", "fast.period=8", "--dask", "tcp://a:1", "--address", "tcp://b:1"], "--address says"),
        (["--param", "fast.period=8", "--dask", " "], "dask: name a scheduler's address"),
        ([], "name the parameters to vary"),
    ],
)
def test_bad_sweep_input_is_one_line_naming_it_and_exit_code_2(
    extra: list[str], said: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*SWEEP, *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and said in err, err


def test_a_config_files_sweep_table_is_read(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "sweep.toml"
    config.write_text('[sweep]\nrandom = 5\n[sweep.params]\n"fast.period" = { low = 1, high = 3 }\n')
    assert main([*SWEEP, "--config", str(config)]) == 2
    assert "random: 5 is more than the space's 3 points" in capsys.readouterr().err


KNOWN = "random, seed, metric, of, folds, anchored, engine, address, workers, synthetic_seed, params"


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ("folds = 2\nluck = 1", f"sweep.luck: unknown key; known: {KNOWN}"),
        ("folds = 500", "sweep.folds: must be between 0 and 100, got 500"),
        ("workers = -1", "sweep.workers: must be between 0 and 1024, got -1"),
        ('workers = "4"', "sweep.workers: '4' is not a whole number"),
        ("anchored = 1", "sweep.anchored: 1 is not true or false"),
        ('engine = "spark"', "sweep.engine: 'spark' is not one of local, dask"),
        ('metric = "luck"', "sweep.metric: 'luck' is not one of total_return, cagr, sharpe"),
        ("synthetic_seed = -2", "sweep.synthetic_seed: must be at least -1, got -2"),
        ("params = 3", "sweep.params: 3 is not a table"),
        ('[sweep.params]\n"fast.period" = 8', "sweep.params.fast.period: 8 is not a list or a range"),
        ('[sweep.params]\n"fast.period" = [8, [9]]', "sweep.params.fast.period: [9] is not a number"),
        ('[sweep.params]\n"fast.period" = { low = 1 }', "sweep.params.fast.period.high: is required"),
        (
            '[sweep.params]\n"fast.period" = { low = 1, top = 3 }',
            "sweep.params.fast.period.top: unknown key; known: low, high",
        ),
        ('[sweep.params]\n"fast.period" = { low = 1, high = "x" }', "fast.period.high: 'x' is not a number"),
        ('[sweep.params]\n"fast.period" = { low = 3, high = 1 }', "sweep.params.fast.period: 3..1: low is"),
        ('[sweep.params]\n"period" = [8]', "sweep.params: 'period' is not module.param"),
        ("[sweep.params]", "sweep.params: name at least one parameter to vary"),
    ],
)
def test_a_bad_sweep_table_is_refused_naming_the_key_and_the_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], table: str, said: str
) -> None:
    config = tmp_path / "sweep.toml"
    config.write_text(f"[sweep]\n{table}\n")
    assert main([*SWEEP, "--config", str(config)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and said in err and err.endswith(f"(in {config})"), err


def test_a_flag_wins_over_the_sweep_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "sweep.toml"
    config.write_text('[sweep]\nfolds = 2\n[sweep.params]\n"fast.period" = [8]\n')
    assert main([*SWEEP, "--config", str(config), "--folds", "500"]) == 2
    assert capsys.readouterr().err.strip() == "trademesh: folds: must be between 0 and 100, got 500"


IMPURE_MODULES = {"asyncio", "socket", "time", "datetime", "threading", "subprocess", "os", "pathlib", "io"}
CLOCK_CALLS = {"now", "utcnow", "today", "time", "time_ns", "monotonic", "perf_counter", "sleep", "open"}
PURE = [
    Path(__file__).parents[2] / "trademesh" / "core" / "backtest" / name for name in ("sweep.py", "folds.py")
]


@pytest.mark.parametrize("path", PURE, ids=[path.name for path in PURE])
def test_the_sweeps_pure_parts_do_no_io_and_read_no_clock(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert {m for m in imported if m.split(".")[0] in IMPURE_MODULES} == set()
    calls = {n.func for n in ast.walk(tree) if isinstance(n, ast.Call)}
    names = {c.attr for c in calls if isinstance(c, ast.Attribute)} | {
        c.id for c in calls if isinstance(c, ast.Name)
    }
    assert names & CLOCK_CALLS == set()
