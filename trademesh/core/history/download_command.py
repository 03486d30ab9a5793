"""`trademesh data download VENUE SYMBOL... --timeframes 1m,1h --since 2024-01-01 [--until ...]
[--trades]`: a venue's history over the MarketData contract into the recorder's tables.

VENUE is a venue name (the download runs it as a child process for the time it takes: public
history needs no keys) or, with --venue-addr HOST:PORT, a venue already running (the mesh token
from TRADEMESH_TOKEN). One line per series on stdout, progress on stderr. Exit code 0: all
fetched; 1: a range the venue could not serve (each said on stderr); 2: bad usage, a symbol the
venue does not list, a database or venue out of reach.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any

from trademesh.core.platform.config.flags import seconds_up_to

__all__ = ["add_parser"]


def _time(text: str) -> int:
    from trademesh.core.history.download import parse_time
    from trademesh.core.platform.errors import InvalidArgument

    try:
        return parse_time(text, "time")
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(exc.violations[0].description) from None


def _timeframes(text: str) -> tuple[Any, ...]:
    from trademesh.core.history.download import parse_timeframes
    from trademesh.core.platform.errors import InvalidArgument

    try:
        return parse_timeframes(text)
    except InvalidArgument as exc:
        raise argparse.ArgumentTypeError(exc.violations[0].description) from None


def _address(text: str) -> str:
    host, colon, port = text.rpartition(":")
    if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not HOST:PORT")
    return text


def add_parser(tools: Any) -> None:
    parser = tools.add_parser(
        "download",
        help="download a venue's candles (and trades) over its MarketData contract into the "
        "recorder's tables (docs/history.md)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "names",
        nargs="+",
        metavar="NAME",
        help="VENUE SYMBOL...: the venue's name (not with --venue-addr), then canonical symbols (BTC/USDT)",
    )
    parser.add_argument(
        "--since",
        type=_time,
        required=True,
        metavar="TIME",
        help="start of the range: 2024-01-01 (midnight UTC) or 2024-01-01T12:00:00Z",
    )
    parser.add_argument(
        "--until", type=_time, metavar="TIME", help="end of the range, exclusive (default: now)"
    )
    parser.add_argument(
        "--timeframes",
        type=_timeframes,
        metavar="TF[,TF]",
        help="bars' timeframes: 1s, 1m, 5m, 15m, 1h, 4h, 1d, 1w (default 1m; with --trades: none)",
    )
    parser.add_argument(
        "--trades", action="store_true", help="the public trades of the range too (GetTrades)"
    )
    parser.add_argument(
        "--venue-addr", type=_address, metavar="HOST:PORT", help="a running venue's gRPC address"
    )
    parser.add_argument(
        "--venue-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an argument for the venue started by name (repeatable: --venue-arg=--replay --venue-arg=FILE); "
        "it serves the symbols named (--symbols), unless these name its own (--symbols, --config)",
    )
    parser.add_argument(
        "--refetch",
        action="store_true",
        help="fetch each range whole, not only the bars it does not hold (trades: from its start, "
        "not from the last one held)",
    )
    parser.add_argument(
        "--patience-s",
        type=seconds_up_to(86_400),
        default=300.0,
        help="how long one call waits out a rate limit or the venue away (default 300)",
    )
    parser.add_argument("--database-url", help="the recorder's database (default: $DATABASE_URL)")
    parser.set_defaults(run=_run)


def _run(args: argparse.Namespace) -> None:
    import asyncio

    from trademesh.core.history.symbols import check_symbol, check_venue
    from trademesh.core.platform.errors import InvalidArgument

    names = list(args.names)
    venue = None if args.venue_addr is not None else check_venue(names.pop(0))
    if not names:
        raise InvalidArgument.field("symbols", "name at least one symbol (BTC/USDT) after the venue")
    if args.venue_addr is not None and args.venue_arg:
        raise InvalidArgument.field("venue-arg", "is for a venue started by name, not one at --venue-addr")
    symbols = list(dict.fromkeys(check_symbol(name) for name in names))
    now_ns = time.time_ns()
    until = now_ns if args.until is None else args.until
    if args.since >= until:
        raise InvalidArgument.field("until", "the range must end after --since (--until, default now)")
    if args.timeframes is None:
        args.timeframes = () if args.trades else _timeframes("1m")
    plan = _Plan(venue, symbols, args.since, until, now_ns)
    try:
        failed = asyncio.run(_download(args, plan))
    except KeyboardInterrupt:
        raise SystemExit(130) from None
    if failed:
        raise SystemExit(1)


@dataclass(frozen=True)
class _Plan:
    venue: str | None  # to start by name; None: the one at --venue-addr
    symbols: list[str]
    since_ns: int
    until_ns: int
    now_ns: int  # when the download began: each range ends before the bar open then


async def _download(args: argparse.Namespace, plan: _Plan) -> int:
    """The series downloaded in turn; the number the venue could not serve whole."""
    import asyncio
    import contextlib
    import signal

    import asyncpg

    from trademesh.core.history.database import connected
    from trademesh.core.history.download import HistoryStore
    from trademesh.core.history.download_venue import connected_venue, started_venue
    from trademesh.core.history.progress import Progress
    from trademesh.core.platform.errors import Unavailable

    # SIGTERM ends the download as Ctrl-C does: the venue it started is stopped on the way out.
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    progress = Progress(sys.stderr)
    if plan.venue is None:
        opened = connected_venue(args.venue_addr, args.patience_s)
    else:
        opened = started_venue(plan.venue, args.venue_arg, args.patience_s, progress.say, plan.symbols)
    try:
        async with opened as source:
            source.waits.on_wait = lambda why, delay: progress.say(f"{why}: waiting {delay:.1f} s")
            venues = await source.instruments(plan.symbols)  # every symbol checked before a row moves
            async with connected(args.database_url) as conn:
                store = HistoryStore(conn, time.time_ns())
                try:
                    await store.prepare()
                    return await _series(args, plan, source, store, venues, progress)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                    # What was committed stays; the next run resumes after it.
                    raise Unavailable(f"database: {type(exc).__name__}: {exc}") from None
    except asyncio.CancelledError:
        raise KeyboardInterrupt from None


async def _series(
    args: argparse.Namespace, plan: _Plan, source: Any, store: Any, venues: dict[str, str], progress: Any
) -> int:
    from trademesh.core.history.download import Job, candle_range, download_candles, download_trades

    failed = rows = added = 0
    started = time.monotonic()
    for symbol in plan.symbols:
        jobs = []
        for timeframe in args.timeframes:
            start, end = candle_range(plan.since_ns, plan.until_ns, timeframe, plan.now_ns)
            jobs.append((Job(venues[symbol], symbol, timeframe, start, end), download_candles))
        if args.trades:
            jobs.append((Job(venues[symbol], symbol, None, plan.since_ns, plan.until_ns), download_trades))
        for job, download in jobs:
            waited = source.waits.count, source.waits.seconds
            done = await download(source, store, job, progress, refetch=args.refetch)
            print(_line(done, source.waits.count - waited[0], source.waits.seconds - waited[1]), flush=True)
            rows, added = rows + done.rows, added + done.added
            if done.failure is not None:
                failed += 1
                print(f"trademesh: {_refusal(done)}", file=sys.stderr, flush=True)
    waits = source.waits
    seconds = time.monotonic() - started
    print(
        f"{rows:,} rows, {added:,} new, {seconds:.1f} s; {waits.rate_limited:,} rate-limit waits, "
        f"{waits.unavailable:,} unavailable waits ({waits.seconds:.1f} s); {failed} series not served whole",
        flush=True,
    )
    return failed


def _line(done: Any, waits: int, waited_s: float) -> str:
    from trademesh.core.history.coverage import iso_ns

    job = done.job
    resumed = "" if done.resumed_ns == job.start_ns else f", resumed at {iso_ns(done.resumed_ns)}"
    if done.holes:
        resumed += f", {done.holes:,} hole{'s' if done.holes > 1 else ''} before the last bar held"
    rate = done.rows / done.seconds if done.seconds > 0 else 0.0
    waited = f", {waits} waits ({waited_s:.1f} s)" if waits else ""
    return (
        f"{job.name}: {done.rows:,} rows, {done.added:,} new, {iso_ns(job.start_ns)} .. {iso_ns(job.end_ns)}"
        f"{resumed}, {done.pages} pages, {done.seconds:.1f} s ({rate:,.0f} rows/s){waited}"
    )


def _refusal(done: Any) -> str:
    from trademesh.core.history.coverage import iso_ns

    job = done.job
    return (
        f"{job.name}: not served {iso_ns(done.cursor_ns)} .. {iso_ns(job.end_ns)} "
        f"({done.rows:,} rows before it kept): {done.failure}"
    )
