"""`trademesh data download` on real processes and a real PostgreSQL: the CLI asks a venue process
(the sim, Binance's live venue on its replay stand-in, Kraken's) for its candles over the
MarketData contract and writes them into the recorder's `bars`; every test compares the rows
held with what GetCandles itself answers for the range, value for value.

Binance's stand-in serves its capture's 1m klines (2021-10-12) and synthetic ones before them,
with Binance's paging (at most 1000 a call; the live venue asks 500 at a time).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.forked_services import launch_command, run_command
from tests.integration.postgres_server import database_url, fresh_database, recorder_database
from tests.integration.replay import capture_files, start_replay_venue
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, Venue, start_venue, stop_venue, until
from tests.node_venue import running
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.bar import vwap_text
from trademesh.core.history.coverage import iso_ns
from trademesh.core.history.download import parse_time
from trademesh.core.platform.config.env import TOKEN
from trademesh.core.recorder.migrate import migrate
from trademesh.core.recorder.partitions import Partitions, day_of
from trademesh.core.recorder.schema import BARS
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL and processes
__all__ = ["database_url", "fresh_database", "recorder_database"]  # the fixtures, for pytest

MINUTE_NS = 60 * 10**9
SECOND_NS = 10**9
OCT_1_2021_NS = 1_633_046_400 * SECOND_NS
# Four days of 1m bars before Binance's capture: synthetic, 5760 bars, six GetCandles pages.
SINCE, UNTIL = "2021-10-01", "2021-10-05"
FOUR_DAYS = 4 * 1440
SYMBOL = "NKN/USDT"
BINANCE_FILES = capture_files("BINANCE")
ENV = {**os.environ, TOKEN: TEST_TOKEN}
_COLUMNS = "open_time_ns, open, high, low, close, volume, quote_volume, trade_count, vwap, repaired"


def download(*args: str, timeout_s: float = 120.0) -> Any:
    return run_command(["data", "download", *args], env=ENV, timeout_s=timeout_s)


def replay_args() -> list[str]:
    return ["--venue-arg=--replay", *(f"--venue-arg={path}" for path in BINANCE_FILES)]


@contextlib.asynccontextmanager
async def binance(directory: Path, faults: tuple[str, ...] = ()) -> AsyncIterator[Venue]:
    venue, log = start_replay_venue(directory, "binance", BINANCE_FILES, faults=faults)
    try:
        yield venue
    finally:
        await stop_venue(venue, log)


async def venue_candles(
    venue: Venue, symbol: str, timeframe: common.Timeframe.ValueType, start_ns: int, end_ns: int
) -> list[tuple[Any, ...]]:
    """The closed candles GetCandles answers for [start, end), paged here, as bars rows hold them."""
    stubs = venue.stubs()
    found: list[md.Candle] = []
    while start_ns < end_ns:
        request = md.GetCandlesRequest(
            symbol=symbol, timeframe=timeframe, start_ns=start_ns, end_ns=end_ns, limit=1000
        )
        answer = await stubs.md.GetCandles(request, timeout=CALL_TIMEOUT_S)
        page = [c for c in answer.candles if c.closed]
        if not page:
            break
        found += page
        start_ns = page[-1].open_time_ns + 1
    # As the bar service stores a bar rebuilt from a candle: its VWAP from the quote volume, and
    # no bar for a candle with no volume (trademesh.core.history.download.bar_records).
    return [
        (
            c.open_time_ns, Decimal(c.open), Decimal(c.high), Decimal(c.low), Decimal(c.close),
            Decimal(c.volume),
            Decimal(c.quote_volume) if c.quote_volume else None, c.trade_count,
            Decimal(vwap_text(Decimal(c.quote_volume), Decimal(c.volume))) if c.quote_volume else None, True,
        )
        for c in found
        if Decimal(c.volume) != 0
    ]  # fmt: skip


async def held_bars(url: str, venue: str, symbol: str, timeframe: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            f"SELECT {_COLUMNS} FROM bars WHERE venue = $1 AND symbol = $2 AND timeframe = $3 "
            "ORDER BY open_time_ns",
            venue, symbol, timeframe,
        )  # fmt: skip
        return [tuple(row) for row in rows]
    finally:
        await conn.close()


async def count_bars(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        found: int = await conn.fetchval("SELECT count(*) FROM bars")
        return found
    finally:
        await conn.close()


# ---- Binance's live venue on its stand-in


async def test_four_days_of_1m_bars_in_six_pages_are_held_exactly_once_however_often_downloaded(
    recorder_database: str, tmp_path: Path
) -> None:
    async with binance(tmp_path) as venue:
        address = ["--venue-addr", venue.address, "--database-url", recorder_database]
        first = download(SYMBOL, "--since", SINCE, "--until", UNTIL, *address)
        assert first.returncode == 0, first.stderr
        assert f"binance {SYMBOL} 1m: {FOUR_DAYS:,} rows, {FOUR_DAYS:,} new" in first.stdout
        assert "6 pages" in first.stdout and "Traceback" not in first.stderr
        expected = await venue_candles(
            venue, SYMBOL, common.TIMEFRAME_1_MINUTE, OCT_1_2021_NS, OCT_1_2021_NS + FOUR_DAYS * MINUTE_NS
        )
        assert len(expected) == FOUR_DAYS
        # Binance's klines state their quote volume and trade count (GetCandles keeps them: the
        # venue reads /klines, not ccxt's OHLCV), so the bars hold them and a VWAP.
        assert all(row[6] is not None and row[7] > 0 and row[8] is not None for row in expected)
        assert await held_bars(recorder_database, "binance", SYMBOL, "1m") == expected

        again = download(SYMBOL, "--since", SINCE, "--until", UNTIL, *address)
        assert again.returncode == 0, again.stderr
        assert (
            f"binance {SYMBOL} 1m: 0 rows, 0 new" in again.stdout
            and "resumed at 2021-10-05T00:00:00Z" in again.stdout
        )
        refetched = download(SYMBOL, "--since", SINCE, "--until", UNTIL, "--refetch", *address)
        assert refetched.returncode == 0, refetched.stderr
        assert f"binance {SYMBOL} 1m: {FOUR_DAYS:,} rows, 0 new" in refetched.stdout
        assert await held_bars(recorder_database, "binance", SYMBOL, "1m") == expected

    # A backtest reads them as it reads recorded history: a bar an event at its close, in [00:00, 03:00).
    out = tmp_path / "report"
    market = tmp_path / "nkn.toml"
    market.write_text(
        '[[symbols]]\nsymbol = "NKN/USDT"\ntick_size = "0.0001"\nlot_size = "1"\nmin_size = "1"\n'
        'min_notional = "5"\nstart_price = "1"\n'
    )
    backtest = run_command(
        [
            "backtest", "--strategy", "trademesh/core/detector/strategies/trend.toml", "--venue", "binance",
            "--symbols", SYMBOL, "--from", "2021-10-02T00:00:00", "--to", "2021-10-02T03:00:00",
            "--sim-config", str(market), "--database-url", recorder_database, "--out", str(out),
            "--no-progress",
        ],
        timeout_s=300,
    )  # fmt: skip
    assert backtest.returncode == 0, backtest.stderr
    assert backtest.stdout.startswith("180 events"), backtest.stdout


async def test_a_download_killed_mid_way_resumes_after_its_last_page_and_ends_with_the_full_set(
    fresh_database: str, tmp_path: Path
) -> None:
    # The second page's first bar is held by a transaction of ours, not committed: the download's
    # insert of that page waits on it (ON CONFLICT waits for the other row's fate), after its
    # first page committed. It is killed there.
    second_page = OCT_1_2021_NS + 1000 * MINUTE_NS
    blocker = await asyncpg.connect(fresh_database)
    watcher = await asyncpg.connect(fresh_database)
    try:
        await migrate(blocker)
        partitions = Partitions()
        await partitions.load(blocker)
        for day in range(day_of(OCT_1_2021_NS), day_of(OCT_1_2021_NS) + 4):
            await partitions.create(blocker, BARS, day)
        holding = blocker.transaction()
        await holding.start()
        await blocker.execute(
            "INSERT INTO bars (venue, symbol, timeframe, open_time_ns, open, high, low, close, volume, "
            "trade_count, repaired, ts_publish_ns) "
            "VALUES ('binance', $1, '1m', $2, 1, 1, 1, 1, 1, 0, false, 0)",
            SYMBOL, second_page,
        )  # fmt: skip
        async with binance(tmp_path) as venue:
            target = ["--venue-addr", venue.address, "--database-url", fresh_database]
            args = ["data", "download", SYMBOL, "--since", SINCE, "--until", UNTIL, *target]
            process, stdout, stderr = launch_command(args, ENV)
            try:

                async def waiting_on_us() -> bool | None:
                    committed = await watcher.fetchval("SELECT count(*) FROM bars")
                    waits = await watcher.fetchval(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                        "AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO bars%'"
                    )
                    return True if committed == 1000 and waits == 1 else None

                await until(waiting_on_us, 60, what="the download's first page committed, its second waiting")
            finally:
                process.kill()
                await asyncio.to_thread(process.wait, 30)
                stdout.read(), stderr.read()
                stdout.close(), stderr.close()
            await holding.rollback()

            async def download_gone() -> bool | None:
                others = await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND pid <> ALL($1::int[])",
                    [blocker.get_server_pid(), watcher.get_server_pid()],
                )  # fmt: skip
                return True if others == 0 else None

            await until(download_gone, 30, what="the killed download's session ended")
            assert await count_bars(fresh_database) == 1000  # its first page, nothing of the second

            resumed = download(SYMBOL, "--since", SINCE, "--until", UNTIL, *target)
            assert resumed.returncode == 0, resumed.stderr
            assert f"{FOUR_DAYS - 1000:,} rows, {FOUR_DAYS - 1000:,} new" in resumed.stdout
            assert "resumed at 2021-10-01T16:40:00Z" in resumed.stdout
            expected = await venue_candles(
                venue, SYMBOL, common.TIMEFRAME_1_MINUTE, OCT_1_2021_NS, OCT_1_2021_NS + FOUR_DAYS * MINUTE_NS
            )
            assert await held_bars(fresh_database, "binance", SYMBOL, "1m") == expected
    finally:
        await blocker.close()
        await watcher.close()


async def test_a_venue_rate_limiting_then_banning_its_history_calls_is_waited_out_and_the_range_ends_complete(
    recorder_database: str, tmp_path: Path
) -> None:
    # The stand-in answers its next history calls 429 four times, then 418 (Binance's ban) three
    # times: the venue tries each call 3 times, then answers RESOURCE_EXHAUSTED; the download waits
    # and asks again, twice at least.
    async with binance(tmp_path, faults=("history-ratelimit@4", "ban@3")) as venue:
        target = ["--venue-addr", venue.address, "--database-url", recorder_database]
        done = download(SYMBOL, "--since", SINCE, "--until", "2021-10-02", *target)
        assert done.returncode == 0, done.stderr
        assert (
            "RESOURCE_EXHAUSTED" in done.stderr
            and "waiting" in done.stderr
            and "Traceback" not in done.stderr
        )
        waits = int(done.stdout.rsplit("s; ", 1)[1].split(" rate-limit waits")[0])
        assert waits >= 2, done.stdout
        assert f"binance {SYMBOL} 1m: 1,440 rows, 1,440 new" in done.stdout
        assert f"{waits} waits (" in done.stdout  # said on the series' line too
        day = (OCT_1_2021_NS, OCT_1_2021_NS + 1440 * MINUTE_NS)
        expected = await venue_candles(venue, SYMBOL, common.TIMEFRAME_1_MINUTE, *day)
        assert await held_bars(recorder_database, "binance", SYMBOL, "1m") == expected


async def test_a_venue_started_by_name_serves_an_empty_range_as_nothing_and_its_child_is_stopped(
    recorder_database: str,
) -> None:
    # After the capture (2021-10-12) the stand-in has no klines: the range is empty, not an error.
    done = download("binance", SYMBOL, "--since", "2022-01-01", "--until", "2022-01-02", *replay_args(),
                    "--database-url", recorder_database)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"binance {SYMBOL} 1m: 0 rows, 0 new, 2022-01-01T00:00:00Z .. 2022-01-02T00:00:00Z" in done.stdout
    assert await count_bars(recorder_database) == 0
    started = re.search(
        r"venue binance started for the download \(pid (\d+), 127\.0\.0\.1:\d+\)", done.stderr
    )
    assert started is not None, done.stderr
    assert "venue binance stopped (exit code 0)" in done.stderr
    with pytest.raises(ProcessLookupError):  # stopped and reaped
        os.kill(int(started[1]), 0)


async def test_a_symbol_the_exchange_lists_beyond_the_venues_defaults_is_downloaded_as_the_venue_serves_it(
    recorder_database: str, tmp_path: Path
) -> None:
    # ETH/USDT: neither Binance's default (BTC/USDT) nor a market of the session (NKN/USDT, ...),
    # but the exchange (the stand-in's exchangeInfo) lists it: started by name with --symbols
    # ETH/USDT, the venue serves it, with no config written.
    symbol, day = "ETH/USDT", ["--since", "2021-10-01", "--until", "2021-10-02"]
    done = download("binance", symbol, *day, *replay_args(), "--database-url", recorder_database)
    assert done.returncode == 0, done.stderr
    venue, log = start_replay_venue(tmp_path, "binance", BINANCE_FILES, extra=["--symbols", symbol])
    try:
        expected = await venue_candles(venue, symbol, common.TIMEFRAME_1_MINUTE, OCT_1_2021_NS,
                                       OCT_1_2021_NS + 1440 * MINUTE_NS)  # fmt: skip
    finally:
        await stop_venue(venue, log)
    assert len(expected) == 1440
    assert f"binance {symbol} 1m: 1,440 rows, 1,440 new, 2021-10-01T00:00:00Z .. 2021-10-02T00:00:00Z" in (
        done.stdout
    )
    assert await held_bars(recorder_database, "binance", symbol, "1m") == expected


async def test_a_symbol_the_venue_does_not_list_is_named_and_nothing_is_downloaded(
    fresh_database: str, tmp_path: Path
) -> None:
    # Asked for with --symbols, the exchange's missing market is refused at the venue's start.
    done = download("binance", SYMBOL, "FOO/USDT", "--since", SINCE, "--until", UNTIL, *replay_args(),
                    "--database-url", fresh_database)  # fmt: skip
    assert done.returncode == 2, done.stderr
    refused = "venue binance does not serve the symbols asked for: binance has no market FOO/USDT"
    assert f"trademesh: {refused}" in done.stderr
    assert "Traceback" not in done.stderr and "its log ends" not in done.stderr
    # Given a config of its own, the venue serves the config's symbols (no --symbols added): the
    # symbol it does not list is said at ListInstruments, and why.
    config = tmp_path / "binance.toml"
    config.write_text('symbols = ["NKN/USDT"]\n')
    own = download("binance", SYMBOL, "ETH/USDT", "--since", SINCE, "--until", UNTIL, *replay_args(),
                   "--venue-arg=--config", f"--venue-arg={config}",
                   "--database-url", fresh_database)  # fmt: skip
    assert own.returncode == 2, own.stderr
    assert "binance does not list ETH/USDT (it lists NKN/USDT); it serves the symbols its --config names" in (
        own.stderr
    )
    conn = await asyncpg.connect(fresh_database)
    try:
        assert await conn.fetchval("SELECT to_regclass('bars')") is None  # not even migrated
    finally:
        await conn.close()


def test_bad_dates_and_timeframes_are_refused_naming_the_value() -> None:
    for args, named in (
        (["--since", "2024-13-01"], "'2024-13-01' is not a date"),
        (["--since", "2024-01-01", "--timeframes", "1m,3m"], "'3m' is not a timeframe"),
        (["--since", "2024-02-01", "--until", "2024-01-01"], "the range must end after --since"),
        (["--since", "2024-01-01", "--venue-addr", "nowhere"], "'nowhere' is not HOST:PORT"),
        (["--since", "2024-01-01", "--patience-s", "0"], "'0' is not a number of seconds"),
    ):
        done = download("binance", SYMBOL, *args, timeout_s=60)
        assert done.returncode == 2, args
        assert named in done.stderr and "Traceback" not in done.stderr, done.stderr


async def test_a_timeframe_the_venue_cannot_serve_is_said_per_symbol_and_range_while_the_others_go_on(
    recorder_database: str, tmp_path: Path
) -> None:
    # Kraken's 1w candles open on Thursdays, off the mesh's Monday weeks: its venue refuses them.
    venue, log = start_replay_venue(tmp_path, "kraken", capture_files("KRAKEN"))
    try:
        answer = await venue.stubs().md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
        symbol = sorted(i.symbol for i in answer.instruments)[0]
        done = download(symbol, "--since", "2024-01-01", "--until", "2024-03-01", "--timeframes", "1w,1d",
                        "--venue-addr", venue.address, "--database-url", recorder_database)  # fmt: skip
    finally:
        await stop_venue(venue, log)
    assert done.returncode == 1, done.stderr
    refusals = [line for line in done.stderr.splitlines() if line.startswith("trademesh: ")]
    assert len(refusals) == 1, done.stderr
    said = f"trademesh: kraken {symbol} 1w: not served 2024-01-01T00:00:00Z .. 2024-03-01T00:00:00Z (0 rows"
    assert refusals[0].startswith(said), done.stderr
    assert refusals[0].endswith("kraken's 1w candles open off the mesh's 1w grid"), done.stderr
    assert f"kraken {symbol} 1d:" in done.stdout and "Traceback" not in done.stderr


async def venue_trades(venue: Venue, symbol: str, start_ns: int, end_ns: int) -> list[tuple[Any, ...]]:
    """The trades GetTrades answers for [start, end), paged here with its token, as trades rows hold them."""
    stubs, token, found = venue.stubs(), "", []
    while True:
        request = md.GetTradesRequest(symbol=symbol, start_ns=start_ns, end_ns=end_ns, page_token=token)
        answer = await stubs.md.GetTrades(request, timeout=CALL_TIMEOUT_S)
        found += list(answer.trades)
        token = answer.next_page_token
        if not token:
            break
    sides = {common.SIDE_BUY: "buy", common.SIDE_SELL: "sell"}
    return sorted(
        (t.ts_event_ns, t.ts_event_ns, t.trade.trade_id, Decimal(t.trade.price), Decimal(t.trade.size),
         sides.get(t.trade.taker_side))
        for t in found
    )  # fmt: skip


async def held_trades(url: str, venue: str, symbol: str) -> list[tuple[Any, ...]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT ts_event_ns, ts_recv_ns, trade_id, price, size, taker_side FROM trades "
            "WHERE venue = $1 AND symbol = $2 ORDER BY ts_event_ns, trade_id",
            venue, symbol,
        )  # fmt: skip
        return sorted(tuple(row) for row in rows)
    finally:
        await conn.close()


async def test_six_hours_of_trades_are_paged_with_the_venues_token_and_held_once_however_often_downloaded(
    recorder_database: str, tmp_path: Path
) -> None:
    # Before the capture (2021-10-12T00:28) the stand-in's aggTrades are a made-up past; the venue
    # reads them an hour a call.
    since, until_ = "2021-10-11T20:00:00Z", "2021-10-12T02:00:00Z"
    async with binance(tmp_path) as venue:
        target = ["--venue-addr", venue.address, "--database-url", recorder_database]
        done = download(SYMBOL, "--trades", "--since", since, "--until", until_, *target)
        assert done.returncode == 0, done.stderr
        expected = await venue_trades(venue, SYMBOL, parse_time(since, "since"), parse_time(until_, "until"))
        assert len(expected) > 1000
        assert f"binance {SYMBOL} trades: {len(expected):,} rows, {len(expected):,} new" in done.stdout
        assert "1m:" not in done.stdout  # trades alone unless --timeframes
        assert await held_trades(recorder_database, "binance", SYMBOL) == expected
        again = download(SYMBOL, "--trades", "--since", since, "--until", until_, *target)
        assert again.returncode == 0 and ", 0 new" in again.stdout and "resumed at" in again.stdout, (
            again.stdout
        )
        refetched = download(SYMBOL, "--trades", "--since", since, "--until", until_, "--refetch", *target)
        assert f"binance {SYMBOL} trades: {len(expected):,} rows, 0 new" in refetched.stdout, refetched.stderr
        assert await held_trades(recorder_database, "binance", SYMBOL) == expected


# ---- the sim


SIM_CONFIG = "history_s = 3600\n"


async def test_the_sims_last_50_minutes_of_1s_bars_are_downloaded_in_pages_exactly_as_it_serves_them(
    recorder_database: str, tmp_path: Path
) -> None:
    venue, log = start_venue(tmp_path, SIM_CONFIG, "sim")
    try:
        symbol = "BTC/USDT"
        end_ns = time.time_ns() // SECOND_NS * SECOND_NS - 2 * SECOND_NS
        start_ns = end_ns - 3000 * SECOND_NS
        since, until_ = iso_ns(start_ns), iso_ns(end_ns)
        args = ["--timeframes", "1s", "--venue-addr", venue.address, "--database-url", recorder_database]
        done = download(symbol, "--since", since, "--until", until_, *args)
        assert done.returncode == 0, done.stderr
        expected = await venue_candles(venue, symbol, common.TIMEFRAME_1_SECOND, start_ns, end_ns)
        assert len(expected) > 2000  # three pages and more
        assert f"sim {symbol} 1s: {len(expected):,} rows, {len(expected):,} new" in done.stdout
        assert await held_bars(recorder_database, "sim", symbol, "1s") == expected
        again = download(symbol, "--since", since, "--until", until_, "--refetch", *args)
        assert f"sim {symbol} 1s: {len(expected):,} rows, 0 new" in again.stdout, again.stderr
        empty = download(symbol, "--since", "2024-01-01", "--until", "2024-01-02", *args)
        assert empty.returncode == 0 and f"sim {symbol} 1s: 0 rows, 0 new" in empty.stdout, empty.stderr
        assert await held_bars(recorder_database, "sim", symbol, "1s") == expected
        # Its trades of the range's last minute (the sim keeps its latest 20,000 a symbol).
        trades_since = iso_ns(end_ns - 60 * SECOND_NS)
        trades = download(symbol, "--trades", "--since", trades_since, "--until", until_, *args[2:])
        assert trades.returncode == 0, trades.stderr
        sim_trades = await venue_trades(venue, symbol, end_ns - 60 * SECOND_NS, end_ns)
        assert (
            sim_trades
            and f"sim {symbol} trades: {len(sim_trades):,} rows, {len(sim_trades):,} new" in trades.stdout
        )
        assert await held_trades(recorder_database, "sim", symbol) == sim_trades
    finally:
        await stop_venue(venue, log)


# ---- node-ref: a venue in TypeScript, the same contract


async def test_node_refs_1s_bars_and_trades_download_as_any_venues_do(
    recorder_database: str, tmp_path: Path
) -> None:
    async with running(tmp_path / "node-ref.log", history_s=1500) as venue:
        symbol = "BTC/USDT"
        end_ns = time.time_ns() // SECOND_NS * SECOND_NS - 2 * SECOND_NS
        start_ns = end_ns - 1500 * SECOND_NS
        target = ["--venue-addr", venue.address, "--database-url", recorder_database]
        span = ["--since", iso_ns(start_ns), "--until", iso_ns(end_ns)]
        done = download(symbol, *span, "--timeframes", "1s", *target)
        assert done.returncode == 0, done.stderr
        expected = await venue_candles(venue, symbol, common.TIMEFRAME_1_SECOND, start_ns, end_ns)
        assert len(expected) > 1000, len(expected)  # two pages at least
        assert f"node-ref {symbol} 1s: {len(expected):,} rows, {len(expected):,} new" in done.stdout
        assert await held_bars(recorder_database, "node-ref", symbol, "1s") == expected

        last_minute = ["--since", iso_ns(end_ns - 60 * SECOND_NS), "--until", iso_ns(end_ns)]
        trades = download(symbol, *last_minute, "--trades", *target)
        assert trades.returncode == 0, trades.stderr
        node_trades = await venue_trades(venue, symbol, end_ns - 60 * SECOND_NS, end_ns)
        assert node_trades and f"node-ref {symbol} trades: {len(node_trades):,} rows" in trades.stdout
        assert await held_trades(recorder_database, "node-ref", symbol) == node_trades
