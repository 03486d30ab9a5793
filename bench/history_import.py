"""How fast `trademesh data import` puts Binance kline archives into PostgreSQL, against COPY
alone of the same rows in the same run: a measuring script, not a test.

    .venv/bin/python bench/history_import.py                 # 1 symbol-year of 1m bars (525,600 rows)
    .venv/bin/python bench/history_import.py --symbols 10    # 10 symbol-years (5,256,000 rows)

It writes monthly archives as Binance publishes them (SYMBOL-1m-2024-MM.zip, with their .CHECKSUM)
into a temporary directory, then, on a scratch database (dropped at the end), runs alternated
rounds, each with the three in turn (the order rotating from round to round):
- import: the archives through trademesh.core.history (Importer.run_all), converted in turn with the
  COPYs (and again with one, then two, worker processes converting the next blocks meanwhile, the
  next file's too) (checksums, unzip, every
  row checked, each bar's VWAP, COPY text, a probe per chunk, COPY into `bars` under savepoints, a file a
  transaction), `bars` emptied first (its daily partitions kept: the first, untimed import made them);
  and over two (the CLI's default) and three connections at once (a file a transaction on each),
  with the worker, and over two converting in turn; `--skip STEP` leaves a step out;
- copy into bars: the same rows' COPY text (their VWAPs in it), made beforehand, COPied straight
  into `bars` in one transaction: the floor of any import into the recorder's table (its
  partitions and its key);
- copy into scratch: the same text COPied into a plain table of bars' columns (no partitions,
  no key, no index): PostgreSQL's COPY alone.
Rows/s are medians over the rounds; the load average is recorded before each timed step.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import random
import tempfile
import time
import zipfile
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import _common as bench_common  # bench/ (the script's own directory)
import asyncpg

from trademesh.core.history.archives import ImportOptions, open_archive
from trademesh.core.history.imports import Importer
from trademesh.core.platform.config.env import database_url
from trademesh.core.recorder.schema import BARS

__all__ = ["main"]

_MINUTE_MS = 60_000
_ONE, _TWO = "import, a worker converting", "import, two workers converting"
_LANES = "import, a worker, two connections"  # the CLI's default on two or more cores
_LANES_IN_TURN = "import, in turn, two connections"
_LANES3 = "import, a worker, three connections"
_ORDER = ["import", _ONE, _TWO, _LANES, _LANES_IN_TURN, _LANES3, "copy into bars", "copy into scratch"]
_YEAR = 2024


def _month_rows(rng: random.Random, month: int, price: Decimal) -> tuple[str, Decimal]:
    first = int(time.mktime((_YEAR, month, 1, 0, 0, 0, 0, 0, 0)) - time.timezone) * 1000
    after = (_YEAR + (month == 12), month % 12 + 1)
    end = int(time.mktime((*after, 1, 0, 0, 0, 0, 0, 0)) - time.timezone) * 1000
    lines = []
    cents = int(price * 100)
    for open_ms in range(first, end, _MINUTE_MS):
        close = max(100, cents + rng.randint(-50, 50))
        high, low = max(cents, close) + rng.randint(0, 20), min(cents, close) - rng.randint(0, 20)
        volume = rng.randint(1, 10**9)
        lines.append(
            f"{open_ms},{cents // 100}.{cents % 100:02d}000000,{high // 100}.{high % 100:02d}000000,"
            f"{low // 100}.{low % 100:02d}000000,{close // 100}.{close % 100:02d}000000,"
            f"{volume // 10**8}.{volume % 10**8:08d},{open_ms + 59_999},{_quote(rng, volume, close)},"
            f"{rng.randint(1, 900)},"
            f"0.5,10.0,0"
        )
        cents = close
    return "\n".join(lines) + "\n", Decimal(cents) / 100


def _quote(rng: random.Random, volume: int, cents: int) -> str:
    """A quote volume about the volume (in 1e-8) times the close (in cents), 8 decimal places
    with random last digits, as Binance's sums of price times quantity are: its VWAP (quote over
    volume) does not terminate, as nearly none does in Binance's klines."""
    value = volume * cents // 100 + rng.randint(0, 9999)
    return f"{value // 10**8}.{value % 10**8:08d}"


def write_archives(directory: Path, symbols: int, months: int) -> list[Path]:
    rng = random.Random(7)
    paths = []
    for n in range(symbols):
        native, price = f"S{n}USDT", Decimal(1000 + 100 * n)
        for month in range(1, months + 1):
            text, price = _month_rows(rng, month, price)
            path = directory / f"{native}-1m-{_YEAR}-{month:02d}.zip"
            with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
                archive.writestr(path.with_suffix(".csv").name, text)
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            path.with_name(path.name + ".CHECKSUM").write_text(f"{digest}  {path.name}\n")
            paths.append(path)
    return paths


async def _import(
    conn: Any, paths: list[Path], workers: int, lanes: list[Any] | None = None
) -> tuple[int, int]:
    importer = Importer(conn, workers=workers, lanes=lanes or ())
    try:
        await importer.prepare()
        rows = added = 0
        archives = [open_archive(path, ImportOptions(publish_ns=1)) for path in paths]
        async with contextlib.aclosing(importer.run_all(archives)) as files:
            async for done in files:
                rows, added = rows + done.rows, added + done.added
        return rows, added
    finally:
        importer.close()


async def _copy(conn: Any, table: str, texts: list[bytes]) -> None:
    columns = [name for name, _ in BARS.columns]
    async with conn.transaction():
        for text in texts:
            await conn.copy_to_table(table, source=memoryview(text), columns=columns, format="text")


async def _timed(what: str, step: Any) -> dict[str, Any]:
    load = round(os.getloadavg()[0], 2)
    started = time.perf_counter()
    await step
    return {"what": what, "seconds": time.perf_counter() - started, "loadavg_1m": load}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="history-bench-") as folder:
        paths = write_archives(Path(folder), args.symbols, args.months)
        texts = [
            chunk.text for path in paths for chunk in open_archive(path, ImportOptions(publish_ns=1)).chunks()
        ]
        rows = sum(text.count(b"\n") for text in texts)
        server = database_url(args.database_url)
        async with bench_common.scratch_database(server, "bench_history") as url:
            conn = await asyncpg.connect(url, timeout=30)
            lanes = [await asyncpg.connect(url, timeout=30) for _ in range(3)]
            try:
                first = await _timed(
                    "first import (makes the partitions), two connections", _import(conn, paths, 1, lanes[:2])
                )
                again = await _timed(
                    "import again (adds nothing), two connections", _import(conn, paths, 1, lanes[:2])
                )
                await conn.execute("CREATE TABLE scratch (LIKE bars INCLUDING DEFAULTS)")
                steps: dict[str, Callable[[], Awaitable[Any]]] = {
                    "import": lambda: _import(conn, paths, 0),
                    _ONE: lambda: _import(conn, paths, 1),
                    _TWO: lambda: _import(conn, paths, 2),
                    _LANES: lambda: _import(conn, paths, 1, lanes[:2]),
                    _LANES_IN_TURN: lambda: _import(conn, paths, 0, lanes[:2]),
                    _LANES3: lambda: _import(conn, paths, 1, lanes),
                    "copy into bars": lambda: _copy(conn, "bars", texts),
                    "copy into scratch": lambda: _copy(conn, "scratch", texts),
                }
                rounds = []
                for n in range(args.rounds):
                    names = [name for name in steps if name not in args.skip]
                    names = names[n % len(names) :] + names[: n % len(names)]
                    done = []
                    for name in names:
                        await conn.execute("TRUNCATE bars, scratch")
                        await conn.execute("CHECKPOINT")
                        done.append(await _timed(name, steps[name]()))
                    rounds.append(done)
            finally:
                for each in (conn, *lanes):
                    await each.close()
    return _report(args, rows, first, again, rounds)


def _report(
    args: argparse.Namespace, rows: int, first: dict[str, Any], again: dict[str, Any], rounds: list[Any]
) -> dict[str, Any]:
    names = [step["what"] for step in rounds[0]] if rounds else []
    names.sort(key=_ORDER.index)
    medians = {
        name: bench_common.median(
            [step["seconds"] for done in rounds for step in done if step["what"] == name]
        )
        for name in names
    }
    rates = {name: rows / seconds for name, seconds in medians.items()}
    table = [[name, f"{medians[name]:.2f}", f"{rates[name]:,.0f}"] for name in medians]
    table += [
        [step["what"], f"{step['seconds']:.2f}", f"{rows / step['seconds']:,.0f}"] for step in (first, again)
    ]
    bench_common.print_table(["step", "median s", "rows/s"], table)
    bars = rates.get("copy into bars")
    ratios = {name: rate / bars for name, rate in rates.items() if bars and name.startswith("import")}
    print("; ".join(f"{name} / copy into bars: {ratio:.2f}x" for name, ratio in ratios.items()))
    loads = [step["loadavg_1m"] for done in rounds for step in done]
    return {
        "when": bench_common.now_iso(),
        "command": bench_common.command_line(),
        "machine": bench_common.machine(),
        "symbols": args.symbols,
        "months": args.months,
        "rows": rows,
        "median_seconds": medians,
        "rows_per_s": rates,
        "ratios_to_copy_into_bars": ratios,
        "loadavg_1m_range": [min(loads), max(loads)] if loads else None,
        "first_import": first,
        "import_again": again,
        "rounds": rounds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--symbols", type=int, default=1, help="symbol-years of 1m bars (default 1)")
    parser.add_argument("--months", type=int, default=12, help="months per symbol (default 12)")
    parser.add_argument("--rounds", type=int, default=3, help="alternated rounds (default 3)")
    parser.add_argument(
        "--skip", action="append", default=[], choices=_ORDER, metavar="STEP",
        help="a step left out of the rounds (repeatable): " + "; ".join(_ORDER),
    )  # fmt: skip
    parser.add_argument("--database-url", help="a database on the server to use (default: $DATABASE_URL)")
    args = parser.parse_args()
    payload = asyncio.run(run(args))
    name = "history_import" if args.symbols == 1 else f"history_import_{args.symbols}"
    print(f"written: {bench_common.write_result(name, payload)}")


if __name__ == "__main__":
    main()
