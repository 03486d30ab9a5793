"""`trademesh data import` over several connections at once (Importer's lanes, the CLI's default on
two or more cores) on a real PostgreSQL: the files dealt to two connections, each a transaction on
one, while a worker process converts, leave `bars` holding exactly the rows the import over one
connection leaves, files of overlapping rows on the two connections included; the partitions they
need are made beside the files in flight (attached) when the database has none; importing again
adds nothing."""

from __future__ import annotations

import contextlib
import zipfile
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.forked_services import run_command
from tests.integration.postgres_server import database_url, fresh_database
from trademesh.core.history.archives import Archive, ImportOptions, open_archive
from trademesh.core.history.imports import Imported, Importer
from trademesh.core.recorder.schema import BARS

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL and a worker process
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

MINUTE_MS = 60_000
DAY_MS = 1440 * MINUTE_MS
JAN_2024_MS = 1_704_067_200_000
FEB_2024_MS = JAN_2024_MS + 31 * DAY_MS
COLUMNS = ", ".join(name for name, _ in BARS.columns)


def kline(native: str, open_ms: int) -> str:
    """The same minute's kline in every file it is in (as a venue's monthly and daily archives)."""
    n = (open_ms - JAN_2024_MS) // MINUTE_MS + len(native)
    close = Decimal("42000.00000000") + Decimal(n % 997) / 100
    volume = Decimal(n % 13 + 1) / 7 if n % 101 else Decimal(0)  # a kline without trades: no bar
    return (
        f"{open_ms},42000.10000000,{close + 5},41990.01000000,{close},{volume:.8f},{open_ms + 59_999},"
        f"{volume * close:.8f},{n % 50 + 1},0.6,25000.1,0"
    )


def archive(folder: Path, name: str, native: str, first_ms: int, days: int) -> Path:
    path = folder / name
    lines = [kline(native, first_ms + n * MINUTE_MS) for n in range(days * 1440)]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zipped:
        zipped.writestr(path.with_suffix(".csv").name, "\n".join(lines) + "\n")
    return path


def archives(folder: Path) -> list[Archive]:
    """Two monthly files of one symbol (about six blocks each), three daily files of another, and a
    daily file inside the second month, dealt to the other connection while that month is stored."""
    paths = [
        archive(folder, "BTCUSDT-1m-2024-01.zip", "BTCUSDT", JAN_2024_MS, 31),
        archive(folder, "ETHUSDT-1m-2024-01-01.zip", "ETHUSDT", JAN_2024_MS, 1),
        archive(folder, "BTCUSDT-1m-2024-02.zip", "BTCUSDT", FEB_2024_MS, 29),
        archive(folder, "BTCUSDT-1m-2024-02-15.zip", "BTCUSDT", FEB_2024_MS + 14 * DAY_MS, 1),
        archive(folder, "ETHUSDT-1m-2024-01-02.zip", "ETHUSDT", JAN_2024_MS + DAY_MS, 1),
        archive(folder, "ETHUSDT-1m-2024-01-03.zip", "ETHUSDT", JAN_2024_MS + 2 * DAY_MS, 1),
    ]
    return [open_archive(path, ImportOptions(publish_ns=1)) for path in paths]


@contextlib.asynccontextmanager
async def connections(url: str, count: int) -> AsyncIterator[list[Any]]:
    opened = [await asyncpg.connect(url) for _ in range(count)]
    try:
        yield opened
    finally:
        for conn in opened:
            await conn.close()


async def imported(url: str, files: list[Archive], lanes: int) -> list[Imported]:
    """The files imported as the CLI does (a worker converting), over `lanes` connections (1: one)."""
    async with connections(url, 1 + (lanes if lanes > 1 else 0)) as (conn, *more):
        importer = Importer(conn, workers=1, lanes=more)
        try:
            await importer.prepare()
            async with contextlib.aclosing(importer.run_all(files)) as done:
                return [each async for each in done]
        finally:
            importer.close()


async def held(url: str) -> list[tuple[Any, ...]]:
    async with connections(url, 1) as (conn,):
        rows = await conn.fetch(f"SELECT {COLUMNS} FROM bars ORDER BY venue, symbol, timeframe, open_time_ns")
        return [tuple(row) for row in rows]


async def partitions(url: str) -> list[str]:
    async with connections(url, 1) as (conn,):
        found = await conn.fetch(
            "SELECT child.relname FROM pg_inherits JOIN pg_class child ON child.oid = inhrelid "
            "WHERE inhparent = 'bars'::regclass AND child.relname <> 'bars_default' ORDER BY 1"
        )
        return [row[0] for row in found]


def added(files: list[Imported]) -> dict[str, tuple[int, int]]:
    return {done.path.name: (done.rows, done.added) for done in files}


async def test_two_connections_hold_the_same_bars_as_one_and_again_add_nothing(
    fresh_database: str, tmp_path: Path
) -> None:
    files = archives(tmp_path)
    rows = {each.path.name: sum(chunk.kept for chunk in each.chunks()) for each in files}
    expected = sum(rows.values()) - rows["BTCUSDT-1m-2024-02-15.zip"]  # held in February's file too

    first = await imported(fresh_database, files, lanes=2)  # the partitions made beside the files
    assert sorted(added(first)) == sorted(rows)
    assert sum(done.added for done in first) == expected
    made = await partitions(fresh_database)
    assert made[0] == "bars_20240101" and made[-1] == "bars_20240229" and len(made) == 60
    over_two = await held(fresh_database)
    assert len(over_two) == expected
    async with connections(fresh_database, 1) as (conn,):  # every row routed to its day's partition
        assert await conn.fetchval("SELECT count(*) FROM bars_default") == 0

    async with connections(fresh_database, 1) as (conn,):
        await conn.execute("TRUNCATE bars")
    once = await imported(fresh_database, files, lanes=1)
    assert [done.path.name for done in once] == [each.path.name for each in files]  # in turn: in order
    assert await held(fresh_database) == over_two  # the same rows, byte for byte

    again = await imported(fresh_database, files, lanes=2)
    assert {name: new for name, (_, new) in added(again).items()} == dict.fromkeys(rows, 0)
    assert await held(fresh_database) == over_two
    assert await partitions(fresh_database) == made


def descending(folder: Path, name: str, first_ms: int, days: int) -> Path:
    """A generic CSV of 1s bars, its days in reverse order: against an ascending file of the same
    days on the other connection, each holds a day the other waits for (PostgreSQL ends one
    transaction: a deadlock) when both store their first blocks at once."""
    lines = []
    for day in reversed(range(days)):
        start = first_ms + day * DAY_MS
        lines += [f"{start + n * 1000},100.5,101,100,100.{n % 10},{n % 7 + 1}" for n in range(86_400)]
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_files_of_the_same_rows_on_two_connections_are_held_once(
    fresh_database: str, tmp_path: Path
) -> None:
    """Two generic CSVs of the same three days of 1s bars, one descending, one ascending: whichever
    way PostgreSQL serves them (one waits for the other's rows, or a deadlock and the file rolled
    back imported again at the end, alone), the bars are held once, as one connection holds them."""
    down = descending(tmp_path, "down.csv", JAN_2024_MS, 3)
    up = tmp_path / "up.csv"
    up.write_text(
        "".join(sorted(down.read_text().splitlines(keepends=True), key=lambda line: int(line[:13])))
    )
    options = ImportOptions(
        "binance",
        "BTC/USDT",
        "1s",
        {"ts": 0, "open": 1, "high": 2, "low": 3, "close": 4, "volume": 5},
        "ms",
        1,
    )
    files = [open_archive(path, options) for path in (down, up)]
    both = await imported(fresh_database, files, lanes=2)
    assert sorted(done.rows for done in both) == [3 * 86_400] * 2
    assert sum(done.added for done in both) == 3 * 86_400
    over_two = await held(fresh_database)
    async with connections(fresh_database, 1) as (conn,):
        await conn.execute("TRUNCATE bars")
    await imported(fresh_database, files, lanes=1)
    assert await held(fresh_database) == over_two and len(over_two) == 3 * 86_400


async def test_the_cli_stores_over_two_connections_and_names_a_bad_count(
    fresh_database: str, tmp_path: Path
) -> None:
    archives(tmp_path)
    done = run_command(
        ["data", "import", str(tmp_path), "--connections", "2", "--database-url", fresh_database],
        timeout_s=120,
    )
    assert done.returncode == 0, done.stderr
    assert "6 files:" in done.stdout and "BTCUSDT-1m-2024-02-15.zip: 1,440 rows" in done.stdout, done.stdout
    bad = run_command(
        ["data", "import", str(tmp_path), "--connections", "0", "--database-url", fresh_database]
    )
    assert bad.returncode == 2 and "--connections '0' is not a whole number from 1 to 8" in bad.stderr
