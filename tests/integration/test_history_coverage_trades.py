"""`trademesh data coverage` lists the trades held too, per venue and symbol (first and last trade,
their count), on a real PostgreSQL: aggTrades and klines imported with `trademesh data import`
(the archives written here as Binance publishes them); not with --timeframe (trades have none)."""

from __future__ import annotations

import json
import subprocess
import zipfile
from pathlib import Path

import pytest

from tests.forked_services import run_command
from tests.integration.postgres_server import database_url, fresh_database

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL and processes
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

START_MS = 1_735_689_600_000  # 2025-01-01T00:00:00Z


def data(*args: str) -> subprocess.CompletedProcess[str]:
    return run_command(["data", *args], timeout_s=120)


def agg_trades(folder: Path, native: str, count: int) -> Path:
    """`count` aggregate trades, one every 250 ms from 2025-01-01 00:00:00.250."""
    lines = [f"{n},93000.{n:02d},0.01,{n},{n},{START_MS + n * 250},true,True" for n in range(1, count + 1)]
    path = folder / f"{native}-aggTrades-2025-01-01.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(path.with_suffix(".csv").name, "\n".join(lines) + "\n")
    return path


def klines(folder: Path) -> Path:
    lines = [
        f"{START_MS + m * 60_000},1,1,1,1,2,{START_MS + m * 60_000 + 59_999},2,1,0,0,0" for m in range(10)
    ]
    path = folder / "BTCUSDT-1m-2025-01-01.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(path.with_suffix(".csv").name, "\n".join(lines) + "\n")
    return path


async def test_the_trades_held_are_listed_per_venue_and_symbol_with_their_first_last_and_count(
    fresh_database: str, tmp_path: Path
) -> None:
    db = ["--database-url", fresh_database]
    for path in (agg_trades(tmp_path, "BTCUSDT", 400), agg_trades(tmp_path, "ETHUSDT", 7), klines(tmp_path)):
        done = data("import", str(path), *db)
        assert done.returncode == 0, done.stderr

    text = data("coverage", "binance", *db)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    bars_line = next(line for line in lines if line.startswith("binance      BTC/USDT         1m"))
    assert "2025-01-01T00:00:00Z 2025-01-01T00:10:00Z         10" in bars_line
    at = lines.index(next(line for line in lines if line.startswith("venue") and "first trade" in line))
    assert lines[at + 1 :] == [
        "binance      BTC/USDT         2025-01-01T00:00:00.25Z  2025-01-01T00:01:40Z                400",
        "binance      ETH/USDT         2025-01-01T00:00:00.25Z  2025-01-01T00:00:01.75Z               7",
    ]

    shown = data("coverage", "binance", "ETH/USDT", "--json", *db)
    assert shown.returncode == 0, shown.stderr
    assert [json.loads(line) for line in shown.stdout.splitlines()] == [
        {
            "table": "trades", "venue": "binance", "symbol": "ETH/USDT",
            "first": "2025-01-01T00:00:00.25Z", "last": "2025-01-01T00:00:01.75Z",
            "first_ns": (START_MS + 250) * 10**6, "last_ns": (START_MS + 1750) * 10**6, "trades": 7,
        }
    ]  # fmt: skip

    # Bars of a timeframe asked for: no trades listed.
    framed = data("coverage", "binance", "--timeframe", "1m", "--json", *db)
    assert [json.loads(line)["table"] for line in framed.stdout.splitlines()] == ["bars"]
    nothing = data("coverage", "binance", "SOL/USDT", *db)
    assert nothing.returncode == 2 and nothing.stderr.strip() == (
        "trademesh: no bars or trades are held for binance SOL/USDT"
    )
