"""`trademesh backtest`: a run over the recorder's history from the command line, with a
progress bar (data time, events/s, ETA), the figures per strategy at the end, and the report
written where `--out` says; the run and its results are stored in the database
(trademesh.core.backtest.store: `backtest_runs` and its children)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = [
    "RUN_FLAGS",
    "add_backtest_parser",
    "add_run_options",
    "check_history_database",
    "clipped_to_history",
    "history_database",
    "run_flags",
]

RUN_FLAGS = (
    ("venue", "the recorded venue (default sim)"),
    ("from", "the range's start: an ISO date or date-time, UTC unless it says"),
    ("to", "the range's end (not included)"),
    ("order-latency-ms", "our order reaching the venue (default 20)"),
    ("report-latency-ms", "the venue's report reaching us (default 20)"),
    ("sample-s", "the equity curve's step (default 60)"),
    ("sim-config", "the venue's instruments, fees and balances (a sim config; default up's demo market)"),
    ("screens", "the screens a screen-driven strategy follows (a directory; default the shipped ones)"),
    ("policies", "the inspector's policy file (default its shipped one)"),
    ("advisor-config", "the advisor's engine options (TOML; default its defaults)"),
    ("timeframe", "the advisor's bars and model (default 1m, as trademesh up runs it)"),
    (
        "bars",
        "every trade_bars and bars source of the strategies on this timeframe, e.g. 1m for a venue's "
        "downloaded history (default: each strategy file's own)",
    ),
    ("llm", "the advisor's LLM: off (default), or recorded (the live session's answers, from the recorder)"),
    (
        "latency",
        "our orders' arrivals: model (default: --order-latency-ms), or recorded (each at its live "
        "twin's recorded arrival, from the recorder)",
    ),
    ("max-notional-share", "the advisor's cap per intent, a share of equity (default 0.008, as in up)"),
    ("starting-equity", "the inspector's starting equity (default 100000)"),
    ("database-url", "the recorder's database (default: $DATABASE_URL)"),
)
_FLAGS = (*RUN_FLAGS, ("out", "a directory for the report (report.html and its PNGs)"))


def add_backtest_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "backtest",
        help="run strategies over recorded history through the same engine cores as live",
        description=__doc__,
    )
    add_run_options(parser, _FLAGS)
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--progress-json", action="store_true", help="progress as JSON lines on stdout (for the backtest hub)"
    )
    parser.set_defaults(run=_backtest)


def add_run_options(parser: argparse.ArgumentParser, flags: tuple[tuple[str, str], ...] = RUN_FLAGS) -> None:
    """A run's options: --config, --strategy, --symbols and `flags`."""
    parser.add_argument("--config", type=Path, help="a TOML file of these options (a flag wins over it)")
    parser.add_argument("--strategy", action="append", dest="strategies", help="a strategy file (repeatable)")
    parser.add_argument("--symbols", help="comma-separated symbols (default: each strategy's own)")
    for flag, text in flags:
        parser.add_argument(f"--{flag}", dest=flag.replace("-", "_"), help=text)


def _flags(args: argparse.Namespace) -> dict[str, Any]:
    flags = run_flags(args, _FLAGS)
    flags["database_url"] = history_database(args)
    return flags


def history_database(args: argparse.Namespace) -> str:
    """--database-url, else $DATABASE_URL, else the local default (trademesh.core.platform.config.env)."""
    from trademesh.core.platform.config.env import database_url

    return database_url(args.database_url)


def check_history_database(url: str, args: argparse.Namespace) -> None:
    """The recorder's database answering as PostgreSQL, before the run starts anything: one line
    naming the setting the URL came from when it does not (trademesh.core.platform.postgres.connect)."""
    import asyncio

    from trademesh.core.platform.config.env import DATABASE_URL
    from trademesh.core.platform.postgres.connect import check_database

    asyncio.run(check_database(url, "database-url" if args.database_url else DATABASE_URL))


def run_flags(args: argparse.Namespace, names: tuple[tuple[str, str], ...] = RUN_FLAGS) -> dict[str, Any]:
    """The run's options given as flags (None: not given)."""
    flags = {flag.replace("-", "_"): getattr(args, flag.replace("-", "_")) for flag, _ in names}
    flags["strategies"] = args.strategies
    flags["symbols"] = args.symbols
    return flags


def _backtest(args: argparse.Namespace) -> None:
    import asyncio

    from trademesh.core.backtest.config import load_backtest_config

    config = load_backtest_config(args.config, _flags(args))
    # The engine once the options read well: a mistyped one is said without importing it.
    from trademesh.core.backtest.assemble import build
    from trademesh.core.backtest.progress import JsonProgress, ProgressBar

    backtest = build(config)  # every option checked before the run starts
    check_history_database(config.database_url, args)
    if config.database_url:
        clipped = asyncio.run(clipped_to_history(config))
        if clipped is not config:
            config, backtest = clipped, build(clipped)
    shown = JsonProgress() if args.progress_json else ProgressBar(enabled=not args.no_progress)
    with shown as bar:
        result = asyncio.run(_run(config, bar, backtest))
    print(result)


async def clipped_to_history(config: Any) -> Any:
    """The range cut to the recorded history (trademesh.core.backtest.history_range), said on stderr."""
    import sys

    from trademesh.core.backtest.assemble import run_symbols
    from trademesh.core.backtest.history_range import clip_to_history

    config, notice = await clip_to_history(config, run_symbols(config))
    if notice is not None:
        print(f"notice: {notice}", file=sys.stderr)
    return config


async def _run(config: Any, bar: Any, backtest: Any = None) -> str:
    from trademesh.core.backtest.assemble import build, run_recorded
    from trademesh.core.backtest.store import BacktestStore
    from trademesh.core.backtest.summary import config_view, run_id, summary, write

    identity = run_id(config)
    backtest = backtest or build(config)
    if not config.database_url:
        done = await run_recorded(config, backtest, bar.update)
    else:  # the run is stored (trademesh.core.backtest.store) next to the history it read
        store = await BacktestStore.open(config.database_url)
        try:
            done = await store.record(
                identity, config_view(config), config.start_ns, config.end_ns,
                lambda: run_recorded(config, backtest, bar.update),
            )  # fmt: skip
        finally:
            await store.close()
    lines = summary(done)
    if config.database_url:
        lines.append(f"stored: backtest run {identity}")
    if config.out is not None:
        html = write(done, config, config.out)
        lines.append(f"report: {html}")
    return "\n".join(lines)
