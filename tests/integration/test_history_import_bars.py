"""Imported bars are the bars the bar service records live (and `data download` stores), on a real
PostgreSQL through `trademesh data import`: the VWAP is the quote volume over the volume by the
bars' rule (trademesh.core.domain.bar.vwap_text: exact within 38 digits, else half-even at 16 places;
its text without trailing zeros), computed as the import converts each block; a kline with no
volume (an interval without trades) is no bar, so coverage shows it as a hole; a generic CSV
without a quote volume has no VWAP. Rows moved on a conflict (a file imported over bars partly
held) get theirs too."""

from __future__ import annotations

import json
import subprocess
import zipfile
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from tests.forked_services import run_command
from tests.integration.postgres_server import database_url, recorder_database
from trademesh.core.domain.bar import vwap_text

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL and processes
__all__ = ["database_url", "recorder_database"]  # the fixtures, for pytest

MINUTE_MS = 60_000
JAN_2024_MS = 1_704_067_200_000
# (volume, quote volume) of the day's first bars, then of every 7th: the VWAP's cases.
CASES = [
    ("2.73878288", "2737.87910095"),  # does not terminate: half-even at 16 places
    ("4", "10"),  # 2.5 exactly
    ("1024", "1"),  # 0.0009765625: exact, 10 places
    ("1048576", "3"),  # 2.86102294921875E-6 exactly: 20 places, 15 digits: kept whole
    ("3", "2"),  # 0.6666...: the 16th place rounded up
    ("0.00000001", "0.00000001"),  # 1
    ("4", "100000000000000000000000000.0000000000000002"),  # exact, 43 digits: rounded, a tie to even
    ("4", "100000000000000000000000000.0000000000000006"),  # the same, the tie up to the even 2
    ("12.5", "1250.00"),  # 100, no trailing zeros
]
ZERO_VOLUME = {20, 600, 601, 602}  # minutes of the day whose kline has no volume (no trades)


def kline(minute: int) -> str:
    volume, quote = CASES[minute % len(CASES)]
    count, open_ms = 11, JAN_2024_MS + minute * MINUTE_MS
    if minute in ZERO_VOLUME:  # Binance writes such a kline flat at the last close
        volume, quote, count = "0.00000000", "0.00000000", 0
    return f"{open_ms},100.5,101,100,100.5,{volume},{open_ms + 59_999},{quote},{count},0,0,0"


def day_archive(folder: Path) -> Path:
    path = folder / "BTCUSDT-1m-2024-01-01.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("BTCUSDT-1m-2024-01-01.csv", "\n".join(kline(m) for m in range(1440)) + "\n")
    return path


def data(*args: str) -> subprocess.CompletedProcess[str]:
    return run_command(["data", *args], timeout_s=120)


async def held(url: str, symbol: str) -> dict[int, tuple[Decimal, Decimal | None, str | None]]:
    """minute -> (volume, quote volume, the VWAP's text as held)."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT open_time_ns, volume, quote_volume, vwap::text AS vwap FROM bars "
            "WHERE venue = 'binance' AND symbol = $1 AND timeframe = '1m' ORDER BY open_time_ns",
            symbol,
        )
    finally:
        await conn.close()
    first_ns = JAN_2024_MS * 10**6
    return {
        (row["open_time_ns"] - first_ns) // (MINUTE_MS * 10**6): (
            row["volume"],
            row["quote_volume"],
            row["vwap"],
        )
        for row in rows
    }


def live_vwap(volume: str, quote: str) -> str:
    """The VWAP the bar service publishes for a bar of these volumes (its Bar.to_wire)."""
    return vwap_text(Decimal(quote), Decimal(volume))


async def test_imported_klines_have_the_live_bars_vwap_and_none_without_volume(
    recorder_database: str, tmp_path: Path
) -> None:
    path = day_archive(tmp_path)
    done = data("import", str(path), "--database-url", recorder_database)
    assert done.returncode == 0, done.stderr
    kept = 1440 - len(ZERO_VOLUME)
    assert "1,440 rows into bars (binance BTC/USDT 1m)" in done.stdout and f" {kept:,} new" in done.stdout
    bars = await held(recorder_database, "BTC/USDT")
    assert sorted(bars) == [m for m in range(1440) if m not in ZERO_VOLUME]
    for minute, (volume, quote, vwap) in bars.items():
        want = CASES[minute % len(CASES)]
        assert (volume, quote) == (Decimal(want[0]), Decimal(want[1]))
        assert vwap == live_vwap(*want), minute  # the same text: no trailing zeros
    # The cases, as the rule has them.
    texts = [bars[n][2] for n in range(len(CASES))]
    assert texts[:6] == ["999.6700070470719461", "2.5", "0.0009765625", "0.00000286102294921875",
                         "0.6666666666666667", "1"]  # fmt: skip
    assert texts[6:] == ["25000000000000000000000000", "25000000000000000000000000.0000000000000002", "100"]

    # The minutes without trades are holes, as a live recording's.
    shown = data("coverage", "binance", "BTC/USDT", "--json", "--database-url", recorder_database)
    series = json.loads(shown.stdout.splitlines()[0])
    assert (series["bars"], series["hole_count"], series["missing_bars"]) == (kept, 2, len(ZERO_VOLUME))

    # Over bars partly held (the conflict's way), the bars added get their VWAP as well.
    conn = await asyncpg.connect(recorder_database)
    try:
        await conn.execute(
            "DELETE FROM bars WHERE open_time_ns >= $1 AND open_time_ns < $2",
            (JAN_2024_MS + 700 * MINUTE_MS) * 10**6, (JAN_2024_MS + 760 * MINUTE_MS) * 10**6,
        )  # fmt: skip
    finally:
        await conn.close()
    again = data("import", str(path), "--database-url", recorder_database)
    assert again.returncode == 0 and " 60 new" in again.stdout, again.stdout + again.stderr
    assert await held(recorder_database, "BTC/USDT") == bars


async def test_a_generic_csvs_bars_have_a_vwap_only_with_a_quote_volume_and_none_without_volume(
    recorder_database: str, tmp_path: Path
) -> None:
    rows = ["ts,open,high,low,close,volume,quote"]
    rows += [f"{1_704_067_200 + n * 60},10,11,9,10.5,{n % 4},{(n % 4) * 10 + 1}" for n in range(8)]
    path = tmp_path / "bars.csv"
    path.write_text("\n".join(rows) + "\n")
    common = ["--venue", "kraken", "--timeframe", "1m", "--time-unit", "s",
              "--database-url", recorder_database]  # fmt: skip
    with_quote = data("import", str(path), "--symbol", "BTC/USD", "--columns",
                      "ts=0,open=1,high=2,low=3,close=4,volume=5,quote_volume=6", *common)  # fmt: skip
    without = data("import", str(path), "--symbol", "ETH/USD", "--columns",
                   "ts=0,open=1,high=2,low=3,close=4,volume=5", *common)  # fmt: skip
    assert with_quote.returncode == 0 and without.returncode == 0, with_quote.stderr + without.stderr
    assert "8 rows into bars (kraken BTC/USD 1m)" in with_quote.stdout and " 6 new" in with_quote.stdout
    conn = await asyncpg.connect(recorder_database)
    try:
        found = {
            (row["symbol"], row["volume"]): row["vwap"]
            for row in await conn.fetch(
                "SELECT symbol, volume, vwap::text AS vwap FROM bars WHERE venue = 'kraken'"
            )
        }
    finally:
        await conn.close()
    assert found == {
        ("BTC/USD", Decimal(1)): "11",
        ("BTC/USD", Decimal(2)): "10.5",
        ("BTC/USD", Decimal(3)): "10.3333333333333333",
        ("ETH/USD", Decimal(1)): None,
        ("ETH/USD", Decimal(2)): None,
        ("ETH/USD", Decimal(3)): None,
    }
