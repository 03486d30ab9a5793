"""`trademesh backtest-sweep`: one strategy's parameters swept over recorded history (or a
synthetic walk), on this machine's cores or a Dask cluster, optionally walking forward through
folds; prints the points ranked by the metric (or each fold's best point, in and out of
sample). The run's options are `trademesh backtest`'s; the sweep's are flags or the config
file's `[sweep]` table (a flag wins; `--param` flags replace the file's params):

    [sweep]
    random = 0            # N: N points sampled with `seed`; 0: the grid
    seed = 1
    metric = "sharpe"     # ranks the points (max_drawdown: lower is better)
    of = "total"          # whose metric: "total" (the account) or the strategy's id
    folds = 0             # K: walk forward through K folds; 0: the whole range
    anchored = false      # in-sample parts from the start (true) or one block each (false)
    engine = "local"      # local (processes) or dask
    address = ""          # a Dask scheduler (tcp://host:8786); "": a local cluster
    workers = 0           # processes (local, or the local Dask cluster); 0: one per core
    synthetic_seed = -1   # >= 0: a synthetic walk of that seed instead of the recorded history
    [sweep.params]
    "fast.period" = [8, 12, 16]
    "slow.period" = { low = 26, high = 60 }   # a range: for random sweeps
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping
from typing import Any

from core.backtest.command import add_run_options, clipped_to_history, run_flags
from core.foundations.errors import InvalidArgument, shown

__all__ = ["add_sweep_parser"]

_NS = 1_000_000_000
_SWEEP_KEYS = {
    "random", "seed", "metric", "of", "folds", "anchored", "engine", "address", "workers",
    "synthetic_seed", "params",
}  # fmt: skip


def add_sweep_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "backtest-sweep",
        help="sweep a strategy's parameters (grid or random), in parallel, with walk-forward folds",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_options(parser)
    sweep = parser.add_argument_group("sweep")
    sweep.add_argument(
        "--param", action="append", dest="params", help="module.param=v1,v2,... or =low..high (repeatable)"
    )
    sweep.add_argument("--random", type=int, help="N points sampled from the params (default: the grid)")
    sweep.add_argument("--seed", type=int, help="the sampling's seed (default 1)")
    sweep.add_argument("--metric", help="the metric ranking the points (default sharpe)")
    sweep.add_argument("--of", help="whose metric: total (default) or the strategy's id")
    sweep.add_argument("--folds", type=int, help="walk forward through K folds (default: none)")
    sweep.add_argument("--anchored", action="store_true", default=None, help="anchored in-sample parts")
    sweep.add_argument("--engine", help="local (default: processes on this machine) or dask")
    sweep.add_argument("--address", help="the Dask scheduler's address (default: a local cluster)")
    sweep.add_argument("--workers", type=int, help="processes (default: one per core)")
    sweep.add_argument(
        "--synthetic-seed", type=int, help="a synthetic walk of this seed, not the recorded data"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=_sweep_command)


def _sweep_options(table: Any, args: argparse.Namespace) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise InvalidArgument.field("sweep", "is not a table")
    for key in table:
        if key not in _SWEEP_KEYS:
            raise InvalidArgument.field(
                f"sweep.{key}", f"unknown option; options: {', '.join(sorted(_SWEEP_KEYS))}"
            )
    options = dict(table)
    for key in sorted(_SWEEP_KEYS - {"params"}):
        given = getattr(args, key)
        if given is not None:
            options[key] = given
    return options


def _space(options: Mapping[str, Any], flags: list[str] | None) -> Any:
    from core.backtest.sweep import ParamSpace, Range, parse_param

    if flags:
        return ParamSpace(tuple(parse_param(text) for text in flags))
    table = options.get("params", {})
    if not isinstance(table, Mapping) or not table:
        raise InvalidArgument.field("param", "name the parameters to vary (--param, or [sweep.params])")
    params: list[tuple[str, Any]] = []
    for name, values in table.items():
        if isinstance(values, Mapping):
            if set(values) != {"low", "high"}:
                raise InvalidArgument.field(f"param.{name}", "a range is { low = ..., high = ... }")
            params.append((name, Range(values["low"], values["high"])))
        elif isinstance(values, list):
            params.append((name, tuple(values)))
        else:
            raise InvalidArgument.field(f"param.{name}", f"{shown(str(values))} is not a list or a range")
    return ParamSpace(tuple(params))


def _int(options: Mapping[str, Any], key: str, default: int) -> int:
    value = options.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument.field(key, f"{shown(str(value))} is not a whole number")
    return value


def _sweep_command(args: argparse.Namespace) -> None:
    from core.backtest.config import backtest_config, read_options

    raw = read_options(args.config)
    options = _sweep_options(raw.pop("sweep", {}), args)
    flags = run_flags(args)
    config = backtest_config(raw, flags)
    print(_run(config, options, args.params, not args.no_progress))


def _run(config: Any, options: Mapping[str, Any], params: list[str] | None, progress: bool) -> str:
    import asyncio

    from core.backtest.assemble import strategies_of
    from core.backtest.folds import folds as cut
    from core.backtest.runners import runner_for
    from core.backtest.sweep_table import fold_table, sweep_table
    from core.backtest.trial import RecordedHistory, SyntheticHistory
    from core.backtest.walkforward import prepare, run_sweep, walk_forward
    from core.foundations.env import DATABASE_URL

    space = _space(options, params)
    count, seed = _int(options, "random", 0), _int(options, "seed", 1)
    points = space.random(count, seed) if count else space.grid()
    strategies = strategies_of(config)
    synthetic_seed = _int(options, "synthetic_seed", -1)
    source: SyntheticHistory | RecordedHistory = RecordedHistory()
    if synthetic_seed >= 0:
        source = SyntheticHistory(_walk(config, strategies, synthetic_seed))
    elif config.database_url:  # the range the recorded history holds (and the folds cut it)
        config = asyncio.run(clipped_to_history(config))
    metric, of = str(options.get("metric", "sharpe")), str(options.get("of", "total"))
    sweep = prepare(config, strategies, points, source, metric, of)
    workers = _int(options, "workers", 0) or None
    folds = _int(options, "folds", 0)
    if folds:
        cut(config.start_ns, config.end_ns, folds)  # checked before any worker starts
    # The workers read the database's URL from their environment, never from a trial.
    env = {DATABASE_URL: config.database_url} if config.database_url else {}
    address = str(options.get("address", "")) or None
    runner = runner_for(str(options.get("engine", "local")), workers, address, env)
    with _Progress(progress) as bar, runner:
        if folds:
            bar.total = folds * (len(points) + 1)
            done = walk_forward(sweep, runner, folds, bool(options.get("anchored", False)), bar.done)
            return fold_table(done, metric, of)
        bar.total = len(points)
        return sweep_table(run_sweep(sweep, runner, bar.done), metric, of)


def _walk(config: Any, strategies: Any, seed: int) -> Any:
    from core.backtest.synthetic import Walk

    symbols = sorted({s for strategy in strategies for s in strategy.symbols})
    if len(symbols) != 1:
        raise InvalidArgument.field("symbols", "a synthetic walk is of one symbol: name one (--symbols)")
    steps = (config.end_ns - config.start_ns) // _NS
    return Walk(venue=config.venue, symbol=symbols[0], start_ns=config.start_ns, steps=steps, seed=seed)


class _Progress:
    """Trials done, on stderr (tqdm)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.total = 0
        self._bar: Any = None

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.close()

    def done(self, _result: object) -> None:
        if not self.enabled:
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, unit="trial", file=sys.stderr, dynamic_ncols=True)
        self._bar.update(1)
