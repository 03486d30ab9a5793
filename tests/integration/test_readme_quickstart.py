"""The README's "Quick start: backtest on history", run as written, offline.

The commands are read out of the README's section (its first `sh` block, `\\`-continued lines
joined) and run as a user runs them, from a directory of the test's own (the checkout's `.venv`
and `core` linked into it, so `report/` is written there and not in the checkout), with
`DATABASE_URL` a fresh database. Two changes are made, mechanically, and nothing else:

- the download gets `--venue-arg=--replay --venue-arg=<file>...`: the Binance venue it starts
  runs against its replay stand-in on the recorded session in fixtures/exchange-captures/, not
  the exchange (the download starts it with `--symbols BTC/USDT`, the symbol named: no config
  is written);
- the README's month (2026-10-01 .. 2026-11-01, 31 days) becomes one the stand-in holds,
  2021-08-01 .. 2021-09-01 (31 days: the session is 2021-10-12, and its history before it is
  made up; a symbol the session never streamed, BTC/USDT here, has synthetic klines up to its
  clock: trademesh/venues/binance/standin/history.py).
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import asyncpg
import pytest

from tests.integration.postgres_server import database_url, fresh_database
from tests.integration.replay import capture_files

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL, processes, a replay venue
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

ROOT = Path(__file__).resolve().parents[2]
SECTION = "## Quick start: backtest on history"
DATES = {"2026-10-01": "2021-08-01", "2026-11-01": "2021-09-01"}  # the README's month -> the stand-in's
AUG_1_2021_NS = 1_627_776_000 * 10**9
MONTH_BARS = 31 * 1440


def readme_commands() -> list[str]:
    """The section's first sh block: its commands, continuation lines joined, comments dropped."""
    text = (ROOT / "README.md").read_text()
    section = text[text.index(SECTION) :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block is not None, f"no sh block under {SECTION!r}"
    joined = block[1].replace("\\\n", " ")
    return [
        line.strip() for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")
    ]


def adapted(command: str) -> list[str]:
    """The command as the test runs it: the stand-in's month, and the download pointed at it."""
    for readme, standin in DATES.items():
        command = command.replace(readme, standin)
    args = shlex.split(command)
    if args[1:3] == ["data", "download"]:
        args += ["--venue-arg=--replay", *(f"--venue-arg={path}" for path in capture_files("BINANCE"))]
    return args


def test_the_quick_start_is_three_commands_of_the_month_named() -> None:
    commands = readme_commands()
    assert [shlex.split(c)[:3] for c in commands] == [
        [".venv/bin/trademesh", "data", "download"],
        [".venv/bin/trademesh", "data", "coverage"],
        [".venv/bin/trademesh", "backtest", "--strategy"],
    ]
    assert all(date in commands[0] and date in commands[2] for date in DATES)


async def test_the_quick_start_downloads_the_month_sees_it_held_and_backtests_on_it(
    fresh_database: str, tmp_path: Path
) -> None:
    for name in (".venv", "trademesh"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = {**os.environ, "DATABASE_URL": fresh_database}
    download, coverage, backtest = (adapted(c) for c in readme_commands())

    def run(args: list[str]) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0 and "Traceback" not in done.stderr, (args, done.stdout, done.stderr)
        return done

    downloaded = run(download)
    month = "2021-08-01T00:00:00Z .. 2021-09-01T00:00:00Z"
    assert f"binance BTC/USDT 1m: {MONTH_BARS:,} rows, {MONTH_BARS:,} new, {month}" in downloaded.stdout
    conn = await asyncpg.connect(fresh_database)
    try:
        held = await conn.fetch(
            "SELECT open_time_ns FROM bars WHERE venue = 'binance' AND symbol = 'BTC/USDT' "
            "AND timeframe = '1m' ORDER BY open_time_ns"
        )
    finally:
        await conn.close()
    assert [row[0] for row in held] == [AUG_1_2021_NS + n * 60 * 10**9 for n in range(MONTH_BARS)]

    covered = run(coverage).stdout.splitlines()
    row = [line.split() for line in covered if line.split()[:3] == ["binance", "BTC/USDT", "1m"]]
    assert row == [
        [
            "binance",
            "BTC/USDT",
            "1m",
            "2021-08-01T00:00:00Z",
            "2021-09-01T00:00:00Z",
            f"{MONTH_BARS:,}",
            "0",
            "0",
        ]
    ], covered

    tested = run(backtest)
    lines = tested.stdout.strip().splitlines()
    # A bar is an event at its close, in [from, to): the month's last closes at `to`, left out.
    assert lines[0].startswith(f"{MONTH_BARS - 1:,} events"), tested.stdout
    # On bars alone the example's source (bars built from trades) is fed the downloaded 1m bars
    # (--bars 1m): it signals, and the advisor decides on each signal, the replayed venue's book
    # made from the bars (docs/backtest-market.md, "History of bars alone"). No intent here: the
    # stand-in's made-up BTC/USDT is a zig-zag of +-0.1 % around 1.0000 (trademesh/venues/binance/standin/
    # history.py), whose swings are shorter than a round trip's fees and whose 1 % spread (the
    # demo market's tick, 0.01) is over the advisor's limit; tests/integration/
    # test_backtest_on_bars.py trades a month of bars made to, with every fill checked.
    counts = re.match(r"[\d,]+ events · (\d+) signals · (\d+) decisions · ", lines[0])
    assert counts is not None, lines[0]
    assert int(counts[1]) > 0 and counts[2] == counts[1], lines[0]
    assert lines[-1] == "report: report/report.html", lines
    assert "trend" in (tmp_path / "report" / "report.html").read_text()
