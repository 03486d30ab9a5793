"""Issue 59's end to end: bars downloaded from a venue backtest exactly as the same bars recorded live.

A sim venue (one symbol) runs inside the real recording chain: `trademesh ingest` (the venue's
market data onto the bus) -> `trademesh bars` (1s .. 1d bars from the trades, seams repaired
from the venue's candles) -> `trademesh recorder` (the trades and the bars into PostgreSQL,
database LIVE). The sim rather than Binance's replay stand-in: the recorded Binance session is
30 s holding two trades (fixtures/exchange-captures/BINANCE.ws.1.0), a minute no strategy trades
in; the sim's candles are its own trades', so its history is the market it streamed.

The recorder keeps the trades and the bars only, what a download can hold too (a venue serves no
order book history). Once LIVE holds [A, B) whole (A the first whole second 40 s after its first
trade: the strategy's 30 bars of warm-up before it; B the first minute boundary at least
MIN_WINDOW_S after A, and a minute more at a time, at most MAX_MINUTES after A, until the backtest
of [A, B) on LIVE signals: the sim's market is a random walk, and a minute may give trend no new
cross; A a second, not a minute, so that the test waits 70 to 130 s of market for B, not 100 to
160), `trademesh data download` fetches from the same running venue, into a second, fresh
database (DOWNLOADED), what LIVE holds up to B: the 1m bars from the minute of its first trade,
the 1s bars from that second, and the trades of [A, B).

Compared:
- the bars, row for row, every field but two, which differ by definition: `repaired` (a bar
  downloaded is the venue's candle, marked as the bar service marks a bar it rebuilt from one;
  live, only the seams, the first second and minute the chain joined mid-way, are) and
  `ts_publish_ns` (when each was written). VWAP included: a downloaded bar's is the candle's
  quote volume over its volume by the bar service's rule (trademesh.core.domain.bar.vwap_text), as
  the bar service computes a repaired one's (this test found the download storing none:
  trademesh.core.history.download.bar_records, tests/unit/test_history_download_rows.py);
- the trades of [A, B), every field but `ts_recv_ns` (when our ingest received it live; the
  trade's own time when downloaded, as the importer stores it);
- `trademesh backtest` of the shipped trend strategy over [A, B) on each database (the real
  CLI): the same summary line for line (events, signals, decisions, intents, fills, round trips,
  return, fees) and the same report, byte for byte (report.html and its charts: a run's id is a
  digest of its config, which leaves the database out).
"""

from __future__ import annotations

import functools
import hashlib
import os
import shutil
from pathlib import Path
from typing import IO, Any

import asyncpg
import pytest

from tests.forked_services import run_command
from tests.integration.gateway_support import at_once
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import TEST_TOKEN, start_venue, stop_venue, until
from trademesh.core.history.coverage import iso_ns
from trademesh.core.platform.config.env import REDIS_URL, TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]
__all__ = ["database_url", "redis_url"]  # the fixtures, for pytest

S = 10**9
MINUTE = 60 * S
SYMBOL = "BTC/USDT"
TREND = "trademesh/core/detector/strategies/trend.toml"
WARM_S = 40  # trend warms on 30 bars of 1s (and the 2 more the detector asks for)
MIN_WINDOW_S = 30  # [A, B) at least this long
MAX_MINUTES = 4
# One symbol, so the chain is light on a busy machine; the sim's default trade rate (20 a second:
# no second without a trade, so the 1s bars have no hole to tell apart).
SIM_CONFIG = f"""
[balances]
USDT = "100000"
[[symbols]]
symbol = "{SYMBOL}"
start_price = "65000"
tick_size = "0.01"
lot_size = "0.00001"
book_updates_per_s = 100.0
"""
# Every column of `bars` but the two that differ by definition (the module's docstring).
BAR_COLUMNS = (
    "open_time_ns", "open", "high", "low", "close", "volume", "quote_volume", "trade_count", "vwap",
)  # fmt: skip
ENV = {**os.environ, TOKEN: TEST_TOKEN}  # the download's client of the venue
TRADE_COLUMNS = ("ts_event_ns", "trade_id", "price", "size", "taker_side")


async def fetch(url: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url)
    try:
        return list(await conn.fetch(sql, *args))
    except asyncpg.UndefinedTableError:  # the recorder has not migrated yet
        return []
    finally:
        await conn.close()


async def held_bars(url: str, timeframe: str, start_ns: int, end_ns: int) -> list[dict[str, Any]]:
    rows = await fetch(
        url,
        f"SELECT {', '.join(BAR_COLUMNS)}, repaired FROM bars WHERE venue = 'sim' AND symbol = $1 "
        "AND timeframe = $2 AND open_time_ns >= $3 AND open_time_ns < $4 ORDER BY open_time_ns",
        SYMBOL, timeframe, start_ns, end_ns,
    )  # fmt: skip
    return [dict(row) for row in rows]


async def held_trades(url: str, start_ns: int, end_ns: int) -> list[tuple[Any, ...]]:
    rows = await fetch(
        url,
        f"SELECT {', '.join(TRADE_COLUMNS)} FROM trades WHERE venue = 'sim' AND symbol = $1 "
        "AND ts_event_ns >= $2 AND ts_event_ns < $3 ORDER BY ts_event_ns, trade_id",
        SYMBOL, start_ns, end_ns,
    )  # fmt: skip
    return [tuple(row) for row in rows]


def differences(live: list[dict[str, Any]], downloaded: list[dict[str, Any]]) -> list[str]:
    """Each field of each bar that is not the same in both, said (and a bar only one holds)."""
    said: list[str] = []
    mine = {row["open_time_ns"]: row for row in downloaded}
    for row in live:
        other = mine.pop(row["open_time_ns"], None)
        if other is None:
            said.append(f"{iso_ns(row['open_time_ns'])}: recorded live, not downloaded")
            continue
        for name in BAR_COLUMNS:
            if row[name] != other[name]:
                said.append(
                    f"{iso_ns(row['open_time_ns'])} {name}: live {row[name]!r}, downloaded {other[name]!r}"
                )
    said += [f"{iso_ns(at)}: downloaded, not recorded live" for at in sorted(mine)]
    return said


def start(args: list[str], log: IO[str], env: dict[str, str] | None = None) -> ServiceProcess:
    return start_service(args, env={TOKEN: TEST_TOKEN, **(env or {})}, stderr=log, timeout_s=60)


def backtest(
    url: str, config: Path, start_ns: int, end_ns: int, out: Path
) -> tuple[list[str], dict[str, str]]:
    """The real CLI's run: its summary lines (the report's path left out) and its report's files' digests."""
    done = run_command(
        ["backtest", "--strategy", TREND, "--venue", "sim", "--symbols", SYMBOL, "--from", iso_ns(start_ns),
         "--to", iso_ns(end_ns), "--sim-config", str(config), "--database-url", url, "--out", str(out),
         "--no-progress"],
        timeout_s=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == f"report: {out / 'report.html'}", done.stdout
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(out.iterdir())}
    return lines[:-1], digests


async def test_a_backtest_on_history_downloaded_from_the_venue_reports_what_it_reports_on_it_recorded_live(
    database_url: str, redis_url: str, tmp_path: Path
) -> None:
    async with (
        new_database(database_url, "live") as live,
        new_database(database_url, "downloaded") as downloaded,
        redis_db(redis_url) as bus_url,
    ):
        config = tmp_path / "market.toml"  # the backtest's venue: the same instrument as the sim's
        config.write_text(SIM_CONFIG)
        # The same --out for every run (a run's id is its config's digest, the directory in it),
        # emptied between them.
        out = tmp_path / "report"
        venue, venue_log = start_venue(tmp_path, SIM_CONFIG, "sim")
        logs = [(tmp_path / f"{name}.log").open("w") for name in ("ingest", "bars", "recorder")]
        started: list[ServiceProcess] = []

        def starting(args: list[str], log: IO[str], env: dict[str, str] | None = None) -> None:
            started.append(start(args, log, env))

        try:
            # At once (each start waits for its serving line on a thread of its own).
            await at_once(
                functools.partial(
                    starting,
                    ["ingest", "--port", "0", "--metrics-port", "-1", "--venue", f"sim={venue.address}",
                     "--no-executions", "--funding-every-s", "0", "--instruments-every-s", "0"],
                    logs[0], {REDIS_URL: bus_url},
                ),
                functools.partial(
                    starting,
                    ["bars", "--port", "0", "--metrics-port", "-1", "--redis-url", bus_url,
                     "--venue", f"sim={venue.address}"],
                    logs[1],
                ),
                functools.partial(
                    starting,
                    ["recorder", "--port", "0", "--metrics-port", "-1", "--redis-url", bus_url,
                     "--database-url", live, "--stream-pattern", "md.*.trades", "--stream-pattern",
                     "bars.*"],
                    logs[2],
                ),
            )  # fmt: skip

            async def first_trade() -> int | None:
                rows = await fetch(live, "SELECT min(ts_event_ns) AS first FROM trades")
                return rows[0]["first"] if rows and rows[0]["first"] is not None else None

            first = await until(first_trade, 60, interval_s=0.2, what="the chain's first trade recorded")
            minute0, second0 = first // MINUTE * MINUTE, first // S * S
            start_ns = -(-(first + WARM_S * S) // S) * S  # A

            async def recorded_to(end_ns: int) -> bool | None:
                """LIVE holds [A, end) whole: a later trade, the range's last 1s and 1m bars, and the
                first second's and minute's bars rebuilt from the venue's candles (the seams)."""
                later = await fetch(live, "SELECT 1 FROM trades WHERE ts_event_ns >= $1 LIMIT 1", end_ns)
                seams = await fetch(
                    live,
                    "SELECT count(*) AS n FROM bars WHERE repaired AND "
                    "((timeframe = '1s' AND open_time_ns = $1) OR (timeframe = '1m' AND open_time_ns = $2))",
                    second0, minute0,
                )  # fmt: skip
                last = await fetch(
                    live,
                    "SELECT count(*) AS n FROM bars WHERE (timeframe = '1s' AND open_time_ns = $1) "
                    "OR (timeframe = '1m' AND open_time_ns = $2)",
                    end_ns - S, end_ns - MINUTE,
                )  # fmt: skip
                return True if later and seams[0]["n"] == 2 and last[0]["n"] == 2 else None

            # B: the first minute boundary MIN_WINDOW_S or more after A whose backtest on LIVE
            # signals (the sim's market is a random walk: a minute may give trend no new cross), at
            # most MAX_MINUTES after A.
            end_ns = -(-(start_ns + MIN_WINDOW_S * S) // MINUTE) * MINUTE
            while True:
                await until(
                    functools.partial(recorded_to, end_ns), 240, interval_s=0.2, what="LIVE holding [A, B)"
                )
                live_summary, live_report = backtest(live, config, start_ns, end_ns, out)
                shutil.rmtree(out)
                if (
                    not live_summary[0].split(" · ")[1].startswith("0 ")
                    or end_ns + MINUTE - start_ns > MAX_MINUTES * MINUTE
                ):
                    break
                end_ns += MINUTE

            # The same venue's history of the same range, downloaded into DOWNLOADED.
            target = ["--venue-addr", venue.address, "--database-url", downloaded]
            for args in (
                ["--timeframes", "1m", "--since", iso_ns(minute0)],
                ["--timeframes", "1s", "--since", iso_ns(second0)],
                ["--trades", "--since", iso_ns(start_ns)],
            ):
                command = ["data", "download", SYMBOL, *args, "--until", iso_ns(end_ns), *target]
                done = run_command(command, env=ENV, timeout_s=120)
                assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
        finally:
            for service in reversed(started):
                service.terminate()
            await stop_venue(venue, venue_log)
            for log in logs:
                log.close()

        for timeframe, since in (("1m", minute0), ("1s", second0)):
            recorded = await held_bars(live, timeframe, since, end_ns)
            fetched = await held_bars(downloaded, timeframe, since, end_ns)
            assert len(recorded) == (end_ns - since) // (MINUTE if timeframe == "1m" else S)
            assert differences(recorded, fetched) == [], timeframe
            assert all(row["repaired"] for row in fetched)
            # Live, only the seam (the chain joined inside it) was rebuilt from the venue's candle.
            assert [row["open_time_ns"] for row in recorded if row["repaired"]] == [since], timeframe
        trades = await held_trades(live, start_ns, end_ns)
        assert len(trades) > 100 and await held_trades(downloaded, start_ns, end_ns) == trades

        summary, report = backtest(downloaded, config, start_ns, end_ns, out)
        assert summary == live_summary
        assert report == live_report and "report.html" in report
        # Not vacuous: the strategy signalled and the advisor decided. Intents, orders and fills are
        # compared as the rest (any intent's orders fill on the symbol's bars, both databases holding
        # no order book and the same bars: docs/backtest-market.md, "History of bars alone").
        counts = {
            name: int(n.replace(",", "")) for n, name in (p.split(" ", 1) for p in summary[0].split(" · "))
        }
        assert counts["signals"] > 0 and counts["decisions"] == counts["signals"], summary
