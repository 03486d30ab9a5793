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
    engine = "local"      # local (processes) or dask (the flag --dask ADDRESS|local sets both)
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
from typing import TYPE_CHECKING, Any

from trademesh.core.backtest.command import (
    add_run_options,
    check_history_database,
    clipped_to_history,
    history_database,
    run_flags,
)
from trademesh.core.platform.errors import InvalidArgument

if TYPE_CHECKING:  # imported when the command runs: `trademesh --help` imports no engine
    from trademesh.core.backtest.sweep import ParamSpace
    from trademesh.core.backtest.sweep_config import SweepConfig

__all__ = ["add_sweep_parser"]

_NS = 1_000_000_000


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
    sweep.add_argument(
        "--dask",
        metavar="ADDRESS|local",
        help="on a Dask cluster: its scheduler's address (tcp://host:8786), or `local` for a local "
        "cluster of --workers processes (the same as --engine dask [--address ADDRESS])",
    )
    sweep.add_argument("--workers", type=int, help="processes (default: one per core)")
    sweep.add_argument(
        "--synthetic-seed", type=int, help="a synthetic walk of this seed, not the recorded data"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(run=_sweep_command)


def _space(options: SweepConfig, flags: list[str] | None) -> ParamSpace:
    from trademesh.core.backtest.sweep import ParamSpace, parse_param

    if flags:
        return ParamSpace(tuple(parse_param(text) for text in flags))
    if options.params is None:
        raise InvalidArgument.field("param", "name the parameters to vary (--param, or [sweep.params])")
    return options.params


def _sweep_command(args: argparse.Namespace) -> None:
    from trademesh.core.backtest.config import backtest_config, read_options
    from trademesh.core.backtest.sweep_config import FLAGS, sweep_config

    _dask_flag(args)
    raw = read_options(args.config)
    source = None if args.config is None else str(args.config)
    options = sweep_config(raw.pop("sweep", {}), {key: getattr(args, key) for key in FLAGS}, source)
    flags = run_flags(args)
    if options.synthetic_seed < 0:  # the workers' database (their DATABASE_URL), as `backtest` finds it
        flags["database_url"] = history_database(args)
    config = backtest_config(raw, flags, source)
    print(_run(config, options, args))


def _dask_flag(args: argparse.Namespace) -> None:
    """`--dask ADDRESS|local` as `--engine dask` and `--address ADDRESS` (none for local); an
    --engine or --address saying otherwise is refused, naming both."""
    if args.dask is None:
        return
    given = args.dask.strip()
    if not given:
        raise InvalidArgument.field("dask", "name a scheduler's address (tcp://host:8786) or `local`")
    address = "" if given == "local" else given
    if args.engine not in (None, "dask"):
        raise InvalidArgument.field("dask", f"runs on Dask, and --engine says {args.engine!r}")
    if args.address not in (None, address):
        raise InvalidArgument.field("dask", f"says {given!r}, and --address says {args.address!r}")
    args.engine, args.address = "dask", address


def _run(config: Any, options: SweepConfig, args: argparse.Namespace) -> str:
    import asyncio

    from trademesh.core.backtest.assemble import strategies_of
    from trademesh.core.backtest.folds import folds as cut
    from trademesh.core.backtest.runners import runner_for
    from trademesh.core.backtest.sweep_table import fold_table, sweep_table
    from trademesh.core.backtest.trial import RecordedHistory, SyntheticHistory
    from trademesh.core.backtest.walkforward import prepare, run_sweep, walk_forward
    from trademesh.core.platform.config.env import DATABASE_URL

    space = _space(options, args.params)
    points = space.random(options.random, options.seed) if options.random else space.grid()
    strategies = strategies_of(config)
    source: SyntheticHistory | RecordedHistory = RecordedHistory()
    if options.synthetic_seed >= 0:
        source = SyntheticHistory(_walk(config, strategies, options.synthetic_seed))
    else:  # the range the recorded history holds (and the folds cut it)
        check_history_database(config.database_url, args)  # said at once, not by the workers
        config = asyncio.run(clipped_to_history(config))
    metric, of = options.metric, options.of
    sweep = prepare(config, strategies, points, source, metric, of)
    if options.folds:
        cut(config.start_ns, config.end_ns, options.folds)  # checked before any worker starts
    # The workers read the database's URL from their environment, never from a trial.
    env = {DATABASE_URL: config.database_url} if config.database_url else {}
    runner = runner_for(options.engine, options.workers or None, options.address or None, env)
    with _Progress(not args.no_progress) as bar, runner:
        if options.folds:
            bar.total = options.folds * (len(points) + 1)
            done = walk_forward(sweep, runner, options.folds, options.anchored, bar.done)
            return fold_table(done, metric, of)
        bar.total = len(points)
        return sweep_table(run_sweep(sweep, runner, bar.done), metric, of)


def _walk(config: Any, strategies: Any, seed: int) -> Any:
    from trademesh.core.backtest.synthetic import Walk

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
