"""`trademesh data import PATH...`: archive files (or the directories holding them) into the
recorder's tables, a file per transaction; one line per file, then the totals."""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "archive_paths"]

_SUFFIXES = (".zip", ".csv")


def add_parser(tools: Any) -> None:
    parser = tools.add_parser(
        "import",
        help="import Binance kline/aggTrades archives or a generic CSV of bars (docs/history.md)",
        description="Import exchange archives into the recorder's bars and trades tables; importing "
        "a file again adds nothing. A zip with a .CHECKSUM file beside it is checked first.",
    )
    parser.add_argument("paths", nargs="+", type=Path, metavar="PATH", help="files, or directories of them")
    parser.add_argument("--venue", help="the venue the rows are of (Binance archives: default binance; "
                        "binanceusdm for USD-M futures)")  # fmt: skip
    parser.add_argument(
        "--symbol", help="the canonical symbol (default: the archive's, e.g. BTCUSDT as BTC/USDT)"
    )
    parser.add_argument(
        "--timeframe", help="a generic CSV's bars' timeframe (1s, 1m, 5m, 15m, 1h, 4h, 1d, 1w)"
    )
    parser.add_argument(
        "--columns", help="a generic CSV's columns: ts=0,open=1,high=2,low=3,close=4,volume=5"
        "[,quote_volume=N][,trades=N] (0-based)",
    )  # fmt: skip
    parser.add_argument(
        "--time-unit", default="ms", help="a generic CSV's time unit: s, ms (default), us or ns"
    )
    parser.add_argument(
        "--workers", type=_workers, default=default_workers(),
        help="processes converting the next block while PostgreSQL stores this one (default: 1 "
        "on a machine of two or more cores, else 0: converted in turn)",
    )  # fmt: skip
    parser.add_argument(
        "--connections", type=_connections, default=default_connections(),
        help="connections storing files at once, a file a transaction on one (default: 2 on a "
        "machine of two or more cores, else 1)",
    )  # fmt: skip
    parser.add_argument("--database-url", help="the recorder's database (default: $DATABASE_URL)")
    parser.set_defaults(run=_run)


def default_workers() -> int:
    """One converting process beside the COPY where a second core exists (docs/history.md, "Speed")."""
    return 1 if (os.cpu_count() or 1) >= 2 else 0


def default_connections() -> int:
    """Two PostgreSQL backends storing where a second core exists (docs/history.md, "Speed")."""
    return 2 if (os.cpu_count() or 1) >= 2 else 1


def _connections(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= 8:
        raise argparse.ArgumentTypeError(f"--connections {text!r} is not a whole number from 1 to 8")
    return count


def _workers(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = -1
    if not 0 <= count <= 16:
        raise argparse.ArgumentTypeError(f"--workers {text!r} is not a whole number from 0 to 16")
    return count


def archive_paths(paths: list[Path]) -> list[Path]:
    """The files named, and the archives (.zip, .csv) under the directories named, sorted."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in _SUFFIXES)
        else:
            found.append(path)
    return found


def _run(args: argparse.Namespace) -> None:
    import asyncio

    from trademesh.core.history.archives import ImportOptions, open_archive
    from trademesh.core.history.layouts import parse_columns

    columns = None if args.columns is None else parse_columns(args.columns)
    options = ImportOptions(args.venue, args.symbol, args.timeframe, columns, args.time_unit, time.time_ns())
    archives = [open_archive(path, options) for path in archive_paths(args.paths)]  # every name checked first
    asyncio.run(_import(archives, args.database_url, args.workers, args.connections))


async def _import(archives: list[Any], database_url: str | None, workers: int, connections: int) -> None:
    from trademesh.core.history.database import connected
    from trademesh.core.history.imports import Importer

    rows = added = 0
    started = time.perf_counter()
    async with contextlib.AsyncExitStack() as stack:
        conn = await stack.enter_async_context(connected(database_url))
        lanes = []
        if (count := min(connections, len(archives))) > 1:  # else every file on `conn`
            lanes = [await stack.enter_async_context(connected(database_url)) for _ in range(count)]
        importer = Importer(conn, workers=workers, lanes=lanes)
        try:
            await importer.prepare()
            async with contextlib.aclosing(importer.run_all(archives)) as files:
                async for done in files:
                    rows, added = rows + done.rows, added + done.added
                    print(_line(done), flush=True)
        finally:
            importer.close()
    if len(archives) > 1:
        seconds = time.perf_counter() - started
        print(f"{len(archives)} files: {rows:,} rows, {added:,} new, {seconds:.1f} s")


def _line(done: Any) -> str:
    from trademesh.core.history.coverage import iso_ns

    series = " ".join(part for part in (done.venue, done.symbol, done.timeframe) if part)
    span = "" if done.first_ns is None else f" {iso_ns(done.first_ns)} .. {iso_ns(done.last_ns)},"
    rate = done.rows / done.seconds if done.seconds > 0 else 0.0
    return (
        f"{done.path.name}: {done.rows:,} rows into {done.table} ({series}),{span} "
        f"{done.added:,} new, {done.seconds:.1f} s ({rate:,.0f} rows/s)"
    )
