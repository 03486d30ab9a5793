"""A backtest over history of bars alone (no trades, no book): a month of 1m bars imported from a
generic CSV (`trademesh data import`), the shipped trend strategy on them with `--bars 1m`
(`trademesh backtest`), its `trade_bars` source fed the imported bars and its orders filled on
them (docs/backtest-market.md, "History of bars alone").

The month, January 2024 (44,640 bars of BTC/USDT on binance), is flat at 50,000 but for one
V: from bar FALL, 40 bars down 50 each, then 60 bars up 100 each, then flat at the top. Every
bar's range reaches 50 beyond its open and close, so the ATR is never 0. The fast EMA (12) crosses
above the slow one (26) with the RSI (14) above 50 on the way up: one signal, its long entry
bought at the open of the bar after it, its stop and target then filled as the bars reach them.
The second test: a day of the same bars with trades and no book (a download with --trades).
The third: a day of the bars alone run through the backtest hub's StartBacktest with bars "1m"
(what Studio's Backtest page and the MCP tool send), the same trades as the CLI's.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from tests.forked_services import run_command
from tests.integration.postgres_server import database_url, recorder_database
from tests.integration.support import CALL_TIMEOUT_S
from tests.integration.test_backtester_process import AUTH, START_S, _hub_stub, progress_to_end
from trademesh.backtest.v1 import backtest_pb2 as bt

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL, processes
__all__ = ["database_url", "recorder_database"]

TREND = "trademesh/core/detector/strategies/trend.toml"
JAN_1_2024_S = 1_704_067_200
MONTH_BARS = 31 * 1440
FALL, DOWN, UP = 10_000, 40, 60
FLAT, STEP_DOWN, STEP_UP, WICK = Decimal(50_000), Decimal(50), Decimal(100), Decimal(50)
D = Decimal


def closes(count: int = MONTH_BARS, fall: int = FALL) -> list[Decimal]:
    out, price = [], FLAT
    for i in range(count):
        if fall <= i < fall + DOWN:
            price -= STEP_DOWN
        elif fall + DOWN <= i < fall + DOWN + UP:
            price += STEP_UP
        out.append(price)
    return out


def month_csv(path: Path, count: int = MONTH_BARS, fall: int = FALL) -> Path:
    """ts (s), open, high, low, close, volume: each bar opens at the close before it."""
    lines, last = ["ts,open,high,low,close,volume"], FLAT
    for i, close in enumerate(closes(count, fall)):
        # A rising bar closes at its high (so the swing high is the entry's: no cap on its target).
        high, low = (close if close > last else last + WICK), min(last, close) - WICK
        lines.append(f"{JAN_1_2024_S + 60 * i},{last},{high},{low},{close},10")
        last = close
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_the_trend_strategy_trades_a_month_of_imported_1m_bars(
    recorder_database: str, tmp_path: Path
) -> None:
    imported = run_command(
        [
            "data", "import", str(month_csv(tmp_path / "bars.csv")), "--venue", "binance",
            "--symbol", "BTC/USDT", "--timeframe", "1m", "--time-unit", "s",
            "--columns", "ts=0,open=1,high=2,low=3,close=4,volume=5", "--database-url", recorder_database,
        ],
        timeout_s=120,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    done = run_command(
        [
            "backtest", "--strategy", TREND, "--venue", "binance", "--symbols", "BTC/USDT", "--bars", "1m",
            "--from", "2024-01-01", "--to", "2024-02-01", "--database-url", recorder_database,
            "--no-progress",
        ],
        timeout_s=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # A bar is an event at its close, in [from, to): the month's last closes at `to`, left out.
    assert done.stdout.startswith(
        f"{MONTH_BARS - 1:,} events · 1 signals · 1 decisions · 1 intents · 2 fills · 1 round trips"
    ), done.stdout
    conn = await asyncpg.connect(recorder_database)
    try:
        signals = await conn.fetch("SELECT ts_ns, symbol, direction, strategy_id FROM backtest_signals")
        decisions = await conn.fetch("SELECT outcome FROM backtest_decisions")
        orders = await conn.fetch(
            "SELECT ts_ns, side, type, status, price, size, filled_size FROM backtest_orders ORDER BY seq"
        )
        fills = await conn.fetch("SELECT ts_ns, side, price, size, fee FROM backtest_fills ORDER BY seq")
        trips = await conn.fetch(
            "SELECT opened_ns, closed_ns, entry_price, exit_price, fees, pnl FROM backtest_trips"
        )
    finally:
        await conn.close()
    bottom = FLAT - DOWN * STEP_DOWN  # 48,000, bar FALL + DOWN - 1's close
    # The EMA cross with RSI > 50: at the close of the rise's 11th bar (49,100).
    signal_bar = FALL + DOWN + 10
    entry = bottom + 11 * STEP_UP
    assert closes()[signal_bar] == entry == D(49_100)
    assert [tuple(r) for r in signals] == [(close_ns(signal_bar), "BTC/USDT", "long", "trend")]
    assert [r[0] for r in decisions] == ["intent"]
    # The advisor's entry: a limit buy at the ask (the close, 49,100); its stop 1.5 ATRs below
    # and its target 2.5 above (the ATR of the rise's bars: 150): 48,875 and 49,475. The size its
    # notional cap gives (0.008 of the equity: 8,000 USDT / 49,100, to the lot).
    size, stop, target = D("0.16293"), entry - D(225), entry + D(375)
    # The entry reaches the venue 20 ms after the signal and waits for the next bar: placed at its
    # open (49,100, the close before it), it fills at once, a taker (0.05 %), reported at that
    # bar's close. The stop and target are placed at the open of the bar after it; the target is
    # reached by the rise's 15th bar (high 49,500) and fills at its price, a maker (0.02 %),
    # and the stop is cancelled (one cancels the other) once that is heard.
    entry_bar, target_bar = signal_bar + 1, FALL + DOWN + 14
    fee_in, fee_out = entry * size * D("0.0005"), target * size * D("0.0002")
    assert [tuple(r) for r in fills] == [
        (close_ns(entry_bar), "buy", entry, size, fee_in),
        (close_ns(target_bar), "sell", target, size, fee_out),
    ]
    assert [(r["side"], r["type"], r["status"], r["price"]) for r in orders] == [
        ("buy", "limit", "open", entry),
        ("buy", "limit", "filled", entry),
        ("sell", "stop_market", "open", None),
        ("sell", "limit", "open", target),
        ("sell", "limit", "filled", target),
        ("sell", "stop_market", "canceled", None),
    ]
    assert [r["ts_ns"] for r in orders][2:4] == [close_ns(entry_bar + 1)] * 2
    pnl = (target - entry) * size - fee_in - fee_out
    assert pnl == D("55.48662615")
    assert [tuple(r) for r in trips] == [
        (close_ns(entry_bar), close_ns(target_bar), entry, target, fee_in + fee_out, pnl)
    ]
    assert stop == D(48_875)  # never reached: the bars only rose after the entry


def close_ns(bar: int) -> int:
    """The close of the month's bar `bar` (its open plus a minute), in ns."""
    return (JAN_1_2024_S + 60 * (bar + 1)) * 10**9


DAY_BARS, DAY_FALL = 1440, 300


def trades_csv(directory: Path) -> Path:
    """Binance's aggTrades of the day (unzipped): one trade a minute, 30 s into it, at its close."""
    lines = [
        f"{i + 1},{close},0.1,{i + 1},{i + 1},{(JAN_1_2024_S + 60 * i + 30) * 1000},true,true"
        for i, close in enumerate(closes(DAY_BARS, DAY_FALL))
    ]
    path = directory / "BTCUSDT-aggTrades-2024-01-01.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


async def test_a_day_of_trades_and_bars_without_a_book_fills_on_the_bars(
    recorder_database: str, tmp_path: Path
) -> None:
    """Trades and bars, no book (what a download with --trades holds): the source builds its 1m
    bars from the trades, as live, and the orders fill on the imported bars (the day's V as the
    month's, from bar DAY_FALL): the same entry, target and PnL, the signal a second after the
    bar's close (the trade-built bar closes at a tick `lateness_ms` past its end)."""
    for args in (
        [str(month_csv(tmp_path / "bars.csv", DAY_BARS, DAY_FALL)), "--venue", "binance",
         "--symbol", "BTC/USDT", "--timeframe", "1m", "--time-unit", "s",
         "--columns", "ts=0,open=1,high=2,low=3,close=4,volume=5"],
        [str(trades_csv(tmp_path))],
    ):  # fmt: skip
        imported = run_command(["data", "import", *args, "--database-url", recorder_database], timeout_s=120)
        assert imported.returncode == 0, imported.stderr
    done = run_command(
        [
            "backtest", "--strategy", TREND, "--venue", "binance", "--symbols", "BTC/USDT", "--bars", "1m",
            "--from", "2024-01-01", "--to", "2024-01-02", "--database-url", recorder_database,
            "--no-progress",
        ],
        timeout_s=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert " · 1 signals · 1 decisions · 1 intents · 2 fills · 1 round trips" in done.stdout, done.stdout
    conn = await asyncpg.connect(recorder_database)
    try:
        signals = await conn.fetch("SELECT ts_ns FROM backtest_signals")
        fills = await conn.fetch("SELECT ts_ns, side, price, size, fee FROM backtest_fills ORDER BY seq")
        trips = await conn.fetch("SELECT pnl FROM backtest_trips")
    finally:
        await conn.close()
    signal_bar = DAY_FALL + DOWN + 10
    assert [r[0] for r in signals] == [close_ns(signal_bar) + 10**9]
    entry, target, size = D(49_100), D(49_475), D("0.16293")
    assert [tuple(r) for r in fills] == [
        (close_ns(signal_bar + 1), "buy", entry, size, entry * size * D("0.0005")),
        (close_ns(DAY_FALL + DOWN + 14), "sell", target, size, target * size * D("0.0002")),
    ]
    assert [r[0] for r in trips] == [D("55.48662615")]


async def test_the_hubs_run_with_bars_1m_trades_a_day_of_imported_1m_bars(
    recorder_database: str, tmp_path: Path
) -> None:
    """StartBacktest's options.bars goes to the run's config as --bars does: the trend strategy
    (its trade_bars source on 1s bars) runs on the imported 1m bars, signals, and its orders fill
    on them; the run's options, listed and in its result, say bars 1m."""
    imported = run_command(
        [
            "data", "import", str(month_csv(tmp_path / "bars.csv", DAY_BARS, DAY_FALL)), "--venue",
            "binance", "--symbol", "BTC/USDT", "--timeframe", "1m", "--time-unit", "s",
            "--columns", "ts=0,open=1,high=2,low=3,close=4,volume=5", "--database-url", recorder_database,
        ],
        timeout_s=120,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    options = bt.BacktestOptions(
        strategies=["trend"], venue="binance", symbols=["BTC/USDT"], start_ns=JAN_1_2024_S * 10**9,
        end_ns=(JAN_1_2024_S + 86_400) * 10**9, bars="1m",
    )  # fmt: skip
    async with _hub_stub(recorder_database, tmp_path) as stub:
        started = await stub.StartBacktest(
            bt.StartBacktestRequest(options=options), metadata=AUTH, timeout=START_S
        )
        seen = await progress_to_end(stub, started.run_id)
        assert seen[-1].status == bt.RUN_STATUS_DONE, (seen[-1], (tmp_path / "backtester.log").read_text())
        result = await stub.GetResult(
            bt.GetResultRequest(run_id=started.run_id), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
        runs = await stub.ListRuns(bt.ListRunsRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    assert result.run.options.bars == "1m"
    assert [(r.run_id, r.options.bars) for r in runs.runs] == [(started.run_id, "1m")]
    entry, target, size = D(49_100), D(49_475), D("0.16293")
    signal_bar = DAY_FALL + DOWN + 10
    assert [(f.ts_ns, f.side, D(f.price), D(f.size)) for f in result.fills] == [
        (close_ns(signal_bar + 1), "buy", entry, size),
        (close_ns(DAY_FALL + DOWN + 14), "sell", target, size),
    ]
    assert [D(t.pnl) for t in result.trips] == [D("55.48662615")]
    conn = await asyncpg.connect(recorder_database)
    try:
        signals = await conn.fetch("SELECT ts_ns, direction FROM backtest_signals")
    finally:
        await conn.close()
    assert [tuple(r) for r in signals] == [(close_ns(signal_bar), "long")]
