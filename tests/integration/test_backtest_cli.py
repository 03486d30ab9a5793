"""`trademesh backtest` over history the real recorder wrote in PostgreSQL: the run through the
engine cores, its summary and its report; the same as the run over the same events in memory
(the recorder and the source change nothing); a bad option is one line and exit code 2."""

from __future__ import annotations

import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.forked_services import run_command
from tests.integration.postgres_server import database_url, recorder_database
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.outcome import outcome
from trademesh.core.backtest.session import drive_sync
from trademesh.core.backtest.summary import summary
from trademesh.core.backtest.synthetic import Walk, walk
from trademesh.core.detector.engine.io import event_time
from trademesh.core.platform.bus.codec import FIELD, decode, encode_market
from trademesh.core.recorder.app import Recorder, RecorderConfig, prepare
from trademesh.core.recorder.database import open_pool

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL and a process
__all__ = ["database_url", "recorder_database"]  # the fixtures, for pytest

MINUTE_NS = 60 * 10**9
# Twenty minutes of a 1 s walk ending a minute ago: partitions the recorder made.
SPEC = Walk(start_ns=time.time_ns() // MINUTE_NS * MINUTE_NS - 21 * MINUTE_NS, steps=1200, volatility=0.001)
TREND = "trademesh/core/detector/strategies/trend.toml"


def iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat()


async def record(url: str) -> int:
    """The walk through the recorder's own bus handler; the number of events."""
    pool = await open_pool(url)
    try:
        options = RecorderConfig(database_url=url, redis_url="redis://unused")
        recorder = Recorder(pool, await prepare(pool, options), options)
        events = list(walk(SPEC))
        chunks = [events[i : i + 1000] for i in range(0, len(events), 1000)]
        entries: list[Any] = [
            (f"{i + 1}-0", decode({FIELD: encode_market("test", c)})) for i, c in enumerate(chunks)
        ]
        await recorder.handle("md.{sim}.trades", entries)
        return len(events)
    finally:
        await pool.close()


def backtest(*args: str) -> subprocess.CompletedProcess[str]:
    return run_command(["backtest", *args], timeout_s=300)


async def test_a_backtest_of_recorded_history_runs_from_the_cli_with_its_report(
    recorder_database: str, tmp_path: Path
) -> None:
    recorded = await record(recorder_database)
    end = SPEC.start_ns + SPEC.steps * SPEC.step_ns
    out = tmp_path / "report"
    done = backtest(
        "--strategy", TREND, "--symbols", "BTC/USDT", "--from", iso(SPEC.start_ns), "--to", iso(end),
        "--database-url", recorder_database, "--out", str(out), "--sample-s", "60", "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[0].startswith(f"{recorded:,} events")
    # The same run over the same events in memory says the same, line for line.
    config = BacktestConfig(
        strategies=(Path(TREND),), start_ns=SPEC.start_ns, end_ns=end, symbols=("BTC/USDT",), sample_s=60
    )
    backtest_in_memory = build(config)
    expected = summary(outcome(drive_sync(backtest_in_memory, walk(SPEC)), 60 * 10**9))
    assert lines[: len(expected)] == expected
    assert " 0 fills" not in lines[0], "the run traded"
    html = (out / "report.html").read_text()
    assert lines[-1] == f"report: {out / 'report.html'}"
    assert "trend" in html and "equity.png" in html and (out / "equity.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--from", "2026-13-01", "--to", "2026-02-01"], "from"),
        (["--from", "2026-02-01", "--to", "2026-01-01"], "to"),
        (["--from", "2026-01-01", "--to", "2026-02-01", "--order-latency-ms", "fast"], "order_latency_ms"),
        (["--from", "2026-01-01", "--to", "2026-02-01", "--symbols", "DOGE/USDT"], "symbols"),
    ],
)
def test_a_bad_option_is_one_line_naming_it_and_exit_code_2(args: list[str], named: str) -> None:
    done = backtest("--strategy", TREND, "--database-url", "postgresql://nobody@127.0.0.1:1/none", *args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert named in lines[0] and "Traceback" not in done.stderr


def test_a_missing_strategy_file_is_named() -> None:
    done = backtest("--strategy", "nowhere.toml", "--from", "2026-01-01", "--to", "2026-01-02")
    assert done.returncode == 2 and "nowhere.toml" in done.stderr and "Traceback" not in done.stderr


async def test_patches_start_warm_from_the_recorded_bars_before_the_range(recorder_database: str) -> None:
    """As the live detector warms its patches from the venue's candles at its start, a
    backtest warms them from the bar service's recorded bars before its range; and the
    advisor's context starts with the recorded bars closed by then, as the live advisor's
    first context reads them from the bar store."""
    from trademesh.core.backtest.advise import BarKeeper
    from trademesh.core.backtest.assemble import advisor_bars, recorded_history

    events = list(walk(SPEC))
    keeper = BarKeeper("sim", "1s", 10_000)
    for event in events:
        keeper.on_trades([event] if event.HasField("trade") else [], event.ts_event_ns)
    seconds = [_bar(c) for c in keeper.bars("BTC/USDT")]
    pool = await open_pool(recorder_database)
    try:
        options = RecorderConfig(database_url=recorder_database, redis_url="redis://unused")
        recorder = Recorder(pool, await prepare(pool, options), options)
        envelope = bus.Envelope(source="bars", ts_publish_ns=time.time_ns(), bars=bus.Bars(bars=seconds))
        await recorder.handle("bars", [("1-0", decode({FIELD: envelope.SerializeToString()}))])
    finally:
        await pool.close()
    start = SPEC.start_ns + 15 * MINUTE_NS  # after the advisor's 700 bars of 1 s (its regime's)
    config = BacktestConfig(
        strategies=(Path(TREND),), start_ns=start, end_ns=start + MINUTE_NS, symbols=("BTC/USDT",),
        database_url=recorder_database, timeframe="1s",  # the advisor on the bars recorded here
    )  # fmt: skip
    backtest = build(config)
    assert backtest.detect.warming, "the patch waits for history"
    history = await recorded_history(config, backtest)
    assert history and all(event_time(bar) <= start for _, bar in history)  # closed before it
    assert len(history) == max(need.bars for need in _needs(backtest))
    backtest.detect.warm_from_history(history, start)
    assert backtest.detect.warming == [], "warm at the start, as live"
    assert backtest.bars.bars("BTC/USDT") == ()
    backtest.bars.warm(await advisor_bars(config, backtest))
    closed = [c for c in keeper.bars("BTC/USDT") if c.open_time_ns + 10**9 <= start]
    assert backtest.bars.bars("BTC/USDT") == tuple(closed[-backtest.bars.kept :])
    assert len(closed) > backtest.bars.kept  # it kept the newest
    # Without the recorded bars it would warm from the run's first events instead.
    cold = build(replace(config, database_url=""))
    cold.detect.warm_from_history([], start)
    assert cold.detect.warming


def _needs(backtest: Any) -> list[Any]:
    from trademesh.core.detector.needs import bar_needs

    return [
        need for patch_id in backtest.detect.warming for need in bar_needs(backtest.detect.engine, patch_id)
    ]


def _bar(candle: Any) -> bus.Bar:
    return bus.Bar(
        venue="sim", symbol="BTC/USDT", timeframe=common.TIMEFRAME_1_SECOND, open_time_ns=candle.open_time_ns,
        open=str(candle.open), high=str(candle.high), low=str(candle.low), close=str(candle.close),
        volume=str(candle.volume), quote_volume=str(candle.quote_volume), trade_count=candle.trade_count,
    )  # fmt: skip
