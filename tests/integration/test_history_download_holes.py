"""`trademesh data download` fills the holes of a range it already holds, without --refetch: the
bars before the first held, between held ones and after the last are fetched from Binance's live
venue on its replay stand-in (its synthetic klines before the capture), the bars held are kept,
and the range ends exactly as the venue serves it (the rows compared value for value)."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from tests.integration.postgres_server import database_url, recorder_database
from tests.integration.test_history_download import (
    MINUTE_NS,
    OCT_1_2021_NS,
    SYMBOL,
    binance,
    download,
    held_bars,
    venue_candles,
)
from trademesh.common.v1 import common_pb2 as common

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL and processes
__all__ = ["database_url", "recorder_database"]  # the fixtures, for pytest

SINCE, UNTIL = "2021-10-01", "2021-10-04"
DAYS = 3 * 1440
# Bars taken out after a first download, as minutes from the range's start: its first half hour,
# an hour in the second day, one bar in the second day's afternoon.
TAKEN = [(0, 30), (1440 + 720, 1440 + 780), (1440 + 1000, 1440 + 1001)]


async def take_out(url: str, ranges: list[tuple[int, int]]) -> int:
    conn = await asyncpg.connect(url)
    try:
        taken = 0
        for first, end in ranges:
            status = await conn.execute(
                "DELETE FROM bars WHERE venue = 'binance' AND symbol = $1 AND timeframe = '1m' "
                "AND open_time_ns >= $2 AND open_time_ns < $3",
                SYMBOL, OCT_1_2021_NS + first * MINUTE_NS, OCT_1_2021_NS + end * MINUTE_NS,
            )  # fmt: skip
            taken += int(status.rsplit(" ", 1)[-1])
        return taken
    finally:
        await conn.close()


async def test_holes_before_the_last_bar_held_are_fetched_without_refetch_and_the_held_bars_kept(
    recorder_database: str, tmp_path: Path
) -> None:
    async with binance(tmp_path) as venue:
        target = ["--venue-addr", venue.address, "--database-url", recorder_database]
        first = download(SYMBOL, "--since", SINCE, "--until", UNTIL, *target)
        assert first.returncode == 0, first.stderr
        expected = await venue_candles(
            venue, SYMBOL, common.TIMEFRAME_1_MINUTE, OCT_1_2021_NS, OCT_1_2021_NS + DAYS * MINUTE_NS
        )
        assert (
            len(expected) == DAYS and await held_bars(recorder_database, "binance", SYMBOL, "1m") == expected
        )

        assert await take_out(recorder_database, TAKEN) == 30 + 60 + 1
        filled = download(SYMBOL, "--since", SINCE, "--until", UNTIL, *target)
        assert filled.returncode == 0, filled.stderr
        # The first half hour is asked alone; the hour and the bar after it, 281 bars apart, in one
        # call (the 220 held between them come again and are kept): 30 + 281 rows, 91 new.
        assert (
            f"binance {SYMBOL} 1m: 311 rows, 91 new, 2021-10-01T00:00:00Z .. 2021-10-04T00:00:00Z, "
            "3 holes before the last bar held, 2 pages"
        ) in filled.stdout, filled.stdout
        assert await held_bars(recorder_database, "binance", SYMBOL, "1m") == expected

        # Holes only after a later start: the run resumes at the first, and the tail is asked too.
        assert await take_out(recorder_database, [(1440 + 60, 1440 + 61), (DAYS - 10, DAYS)]) == 11
        tail = download(SYMBOL, "--since", SINCE, "--until", UNTIL, *target)
        assert tail.returncode == 0, tail.stderr
        assert (
            f"binance {SYMBOL} 1m: 11 rows, 11 new, 2021-10-01T00:00:00Z .. 2021-10-04T00:00:00Z, "
            "resumed at 2021-10-02T01:00:00Z, 1 hole before the last bar held, 2 pages"
        ) in tail.stdout, tail.stdout
        assert await held_bars(recorder_database, "binance", SYMBOL, "1m") == expected

        again = download(SYMBOL, "--since", SINCE, "--until", UNTIL, *target)
        assert f"binance {SYMBOL} 1m: 0 rows, 0 new" in again.stdout, again.stdout
        assert "resumed at 2021-10-04T00:00:00Z, 0 pages" in again.stdout, again.stdout
