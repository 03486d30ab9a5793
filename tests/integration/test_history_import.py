"""`trademesh data import` and `trademesh data coverage` on a real PostgreSQL: a month of 1m bars
written here as Binance publishes them (a zip with its .CHECKSUM) goes into the recorder's
`bars` table with the archive's exact decimals; importing it again adds nothing; coverage shows
its range and the hole the file leaves; a file refused half-way leaves nothing; over bars partly
held, only the missing ones are added and those held are kept; aggTrades go into `trades` once;
and `trademesh backtest` reads the imported range as it reads recorded history."""

from __future__ import annotations

import hashlib
import json
import subprocess
import zipfile
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from tests.forked_services import run_command
from tests.integration.postgres_server import database_url, recorder_database

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL and processes
__all__ = ["database_url", "recorder_database"]  # the fixtures, for pytest

MINUTE_MS = 60_000
JAN_2024_MS = 1_704_067_200_000
DAY_MS = 1440 * MINUTE_MS
# The hole the archive leaves: 2024-01-10 00:00 .. 01:00 (60 bars).
HOLE = (JAN_2024_MS + 9 * DAY_MS, JAN_2024_MS + 9 * DAY_MS + 60 * MINUTE_MS)
MONTH_BARS = 31 * 1440
TREND = "trademesh/core/detector/strategies/trend.toml"


def kline(open_ms: int) -> str:
    n = (open_ms - JAN_2024_MS) // MINUTE_MS
    close = Decimal("42000.00000000") + Decimal(n % 997) / 100
    return (
        f"{open_ms},42000.10000000,{close + 5},41990.01000000,{close},1.23456789,{open_ms + 59_999},"
        f"51851.87654321,{n % 50 + 1},0.6,25000.1,0"
    )


def month_archive(folder: Path, native: str, bad_last_row: bool = False) -> Path:
    times = [JAN_2024_MS + n * MINUTE_MS for n in range(MONTH_BARS)]
    lines = [kline(ms) for ms in times if not HOLE[0] <= ms < HOLE[1]]
    if bad_last_row:
        lines[-1] = lines[-1].replace("1.23456789", "1.2.3")
    path = folder / f"{native}-1m-2024-01.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{native}-1m-2024-01.csv", "\n".join(lines) + "\n")
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".CHECKSUM").write_text(f"{digest}  {path.name}\n")
    return path


def data(*args: str) -> subprocess.CompletedProcess[str]:
    return run_command(["data", *args], timeout_s=120)


async def count(url: str, symbol: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        found: int = await conn.fetchval(
            "SELECT count(*) FROM bars WHERE venue = 'binance' AND symbol = $1", symbol
        )
        return found
    finally:
        await conn.close()


async def test_a_month_imported_twice_is_held_once_with_its_hole_in_the_coverage(
    recorder_database: str, tmp_path: Path
) -> None:
    path = month_archive(tmp_path, "BTCUSDT")
    held = MONTH_BARS - 60
    first = data("import", str(path), "--database-url", recorder_database)
    assert first.returncode == 0, first.stderr
    assert (
        f"{held:,} rows into bars (binance BTC/USDT 1m)" in first.stdout and f"{held:,} new" in first.stdout
    )
    assert await count(recorder_database, "BTC/USDT") == held
    again = data("import", str(path), "--database-url", recorder_database)
    assert again.returncode == 0, again.stderr
    assert f"{held:,} rows into bars" in again.stdout and " 0 new" in again.stdout
    assert await count(recorder_database, "BTC/USDT") == held

    conn = await asyncpg.connect(recorder_database)
    try:
        row = await conn.fetchrow(
            "SELECT open, high, close, volume, quote_volume, trade_count, repaired FROM bars "
            "WHERE venue = 'binance' AND symbol = 'BTC/USDT' AND timeframe = '1m' AND open_time_ns = $1",
            (JAN_2024_MS + 5 * MINUTE_MS) * 10**6,
        )
    finally:
        await conn.close()
    assert row is not None
    assert (row["open"], row["high"], row["close"]) == (
        Decimal("42000.1"),
        Decimal("42005.05"),
        Decimal("42000.05"),
    )
    assert (row["volume"], row["quote_volume"], row["trade_count"]) == (
        Decimal("1.23456789"), Decimal("51851.87654321"), 6,
    )  # fmt: skip

    shown = data("coverage", "binance", "BTC/USDT", "--json", "--database-url", recorder_database)
    assert shown.returncode == 0, shown.stderr
    series = json.loads(shown.stdout)
    assert (series["from"], series["to"]) == ("2024-01-01T00:00:00Z", "2024-02-01T00:00:00Z")
    assert (series["bars"], series["hole_count"], series["missing_bars"]) == (held, 1, 60)
    assert series["holes"] == [{"start_ns": HOLE[0] * 10**6, "end_ns": HOLE[1] * 10**6}]
    text = data("coverage", "--database-url", recorder_database)
    assert "hole 2024-01-10T00:00:00Z .. 2024-01-10T01:00:00Z (60 bars)" in text.stdout


async def test_a_file_refused_half_way_leaves_nothing_and_says_where(
    recorder_database: str, tmp_path: Path
) -> None:
    path = month_archive(tmp_path, "ETHUSDT", bad_last_row=True)  # two blocks: the first is COPied before
    done = data("import", str(path), "--database-url", recorder_database)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert f"{path}: row {MONTH_BARS - 60}: volume '1.2.3' is not a plain decimal" in lines[0]
    assert await count(recorder_database, "ETH/USDT") == 0


async def test_a_corrupt_file_read_ahead_does_not_undo_the_one_before_it(
    recorder_database: str, tmp_path: Path
) -> None:
    """The worker converts the next file's first blocks while this one's last are stored: the next
    file's checksum mismatch or bad row is raised in its turn, after this one has committed."""
    month_archive(tmp_path, "BTCUSDT")
    month_archive(tmp_path, "ETHUSDT", bad_last_row=True)
    listed = month_archive(tmp_path, "SOLUSDT").with_suffix(".zip.CHECKSUM")
    listed.write_text(f"{'0' * 64}  SOLUSDT-1m-2024-01.zip\n")
    for workers in ("1", "0"):
        done = data("import", str(tmp_path), "--workers", workers, "--database-url", recorder_database)
        assert done.returncode == 2 and "BTCUSDT-1m-2024-01.zip: 44,580 rows" in done.stdout, done.stderr
        assert "volume '1.2.3' is not a plain decimal" in done.stderr
        assert await count(recorder_database, "BTC/USDT") == MONTH_BARS - 60
        assert await count(recorder_database, "ETH/USDT") == 0
        (tmp_path / "ETHUSDT-1m-2024-01.zip").unlink()
        done = data("import", str(tmp_path), "--workers", workers, "--database-url", recorder_database)
        assert done.returncode == 2 and "does not match SOLUSDT-1m-2024-01.zip.CHECKSUM" in done.stderr
        assert "BTCUSDT-1m-2024-01.zip: 44,580 rows" in done.stdout and "0 new" in done.stdout
        month_archive(tmp_path, "ETHUSDT", bad_last_row=True)


async def test_unknown_coverage_is_one_line_and_exit_code_2(recorder_database: str, tmp_path: Path) -> None:
    month = data("import", str(month_archive(tmp_path, "BTCUSDT")), "--database-url", recorder_database)
    assert month.returncode == 0, month.stderr
    done = data("coverage", "kraken", "--database-url", recorder_database)
    assert done.returncode == 2 and done.stderr.strip() == "trademesh: no bars or trades are held for kraken"


async def test_a_backtest_reads_the_imported_bars_as_recorded_history(
    recorder_database: str, tmp_path: Path
) -> None:
    imported = data("import", str(month_archive(tmp_path, "BTCUSDT")), "--database-url", recorder_database)
    assert imported.returncode == 0, imported.stderr
    out = tmp_path / "report"
    done = run_command(
        [
            "backtest", "--strategy", TREND, "--venue", "binance", "--symbols", "BTC/USDT",
            "--from", "2024-01-09T23:00:00", "--to", "2024-01-10T02:00:00",
            "--database-url", recorder_database, "--out", str(out), "--no-progress",
        ],
        timeout_s=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # Each bar is an event at its close, in [23:00, 02:00): those opened 22:59 .. 23:59 (61),
    # then none in the hole, then 01:00 .. 01:58 (59; the last closes at the range's end).
    assert done.stdout.startswith("120 events"), done.stdout
    assert (out / "report.html").is_file() and "trend" in (out / "report.html").read_text()


async def test_a_file_over_bars_partly_held_adds_only_the_missing_ones_and_keeps_those_held(
    recorder_database: str, tmp_path: Path
) -> None:
    path = month_archive(tmp_path, "BTCUSDT")
    assert data("import", str(path), "--database-url", recorder_database).returncode == 0
    day_ns = (JAN_2024_MS + 20 * DAY_MS) * 10**6
    kept_ns = (JAN_2024_MS + 3 * DAY_MS) * 10**6
    conn = await asyncpg.connect(recorder_database)
    try:
        dropped = await conn.execute(
            "DELETE FROM bars WHERE open_time_ns >= $1 AND open_time_ns < $2", day_ns, day_ns + DAY_MS * 10**6
        )
        # As the bar service would have it: its own bar for one interval, not the archive's.
        await conn.execute("UPDATE bars SET close = 1.5, repaired = false WHERE open_time_ns = $1", kept_ns)
        done = data("import", str(path), "--database-url", recorder_database)
        kept = await conn.fetchrow("SELECT close, repaired FROM bars WHERE open_time_ns = $1", kept_ns)
    finally:
        await conn.close()
    assert dropped == "DELETE 1440"
    assert done.returncode == 0 and " 1,440 new" in done.stdout, done.stdout + done.stderr
    assert await count(recorder_database, "BTC/USDT") == MONTH_BARS - 60
    assert kept is not None and (kept["close"], kept["repaired"]) == (Decimal("1.5"), False)


async def test_agg_trades_imported_twice_are_held_once_with_the_taker_side(
    recorder_database: str, tmp_path: Path
) -> None:
    start_us = 1_735_689_600_000_000  # 2025-01-01, in µs as Binance's spot archives since
    lines = [
        f"{n},93000.{n:02d},0.0{n % 9 + 1},{n * 2},{n * 2 + 1},{start_us + n * 250_000},{n % 3 != 0},True"
        for n in range(1, 401)
    ]
    path = tmp_path / "BTCUSDT-aggTrades-2025-01-01.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("BTCUSDT-aggTrades-2025-01-01.csv", "\n".join(lines) + "\n")
    for _ in range(2):
        done = data("import", str(path), "--database-url", recorder_database)
        assert done.returncode == 0 and "400 rows into trades (binance BTC/USDT)" in done.stdout, done.stderr
    conn = await asyncpg.connect(recorder_database)
    try:
        rows = await conn.fetch(
            "SELECT trade_id, price, size, taker_side, ts_event_ns FROM trades ORDER BY ts_event_ns"
        )
    finally:
        await conn.close()
    assert len(rows) == 400
    first = rows[0]
    assert (first["trade_id"], first["price"], first["size"]) == ("1", Decimal("93000.01"), Decimal("0.02"))
    assert (first["taker_side"], first["ts_event_ns"]) == ("sell", (start_us + 250_000) * 1000)
    assert rows[2]["taker_side"] == "buy"  # n = 3: the buyer did not make the book


async def test_a_file_converted_in_turn_is_held_as_with_a_worker_and_bad_workers_are_named(
    recorder_database: str, tmp_path: Path
) -> None:
    path = month_archive(tmp_path, "SOLUSDT")
    done = data("import", str(path), "--workers", "0", "--database-url", recorder_database)
    assert done.returncode == 0, done.stderr
    assert await count(recorder_database, "SOL/USDT") == MONTH_BARS - 60
    bad = data("import", str(path), "--workers", "many", "--database-url", recorder_database)
    assert bad.returncode == 2 and "--workers 'many' is not a whole number from 0 to 16" in bad.stderr
