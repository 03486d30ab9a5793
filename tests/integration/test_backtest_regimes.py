"""A regime-gated strategy in a backtest over recorded history (PostgreSQL, the real recorder's
tables): the recorded 1m bars before the start warm the regimes, so a run that starts inside a
trend up signals from its first bar, exactly where the classifier over the whole history says."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.postgres_server import database_url, fresh_database
from tests.unit.test_backtest_regime import GATED, SEED, bus_bar, close_of
from trademesh.core.backtest.assemble import build, run_recorded
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.domain.regime import Classifier, Regime
from trademesh.core.overwatch.synthetic import SeriesSpec, regime_series
from trademesh.core.platform.bus.codec import FIELD, decode, encode_bars
from trademesh.core.recorder.app import Recorder, RecorderConfig, prepare
from trademesh.core.recorder.database import open_pool

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

MINUTE_NS = 60 * 10**9
# The series ends about now: its bars fall in the partitions the recorder keeps (yesterday on).
SPEC = SeriesSpec(start_ns=time.time_ns() // MINUTE_NS * MINUTE_NS - 800 * MINUTE_NS)
START_BAR = 500  # the run starts at this bar's open: the classifier reads trend_up there


async def _record(url: str, bars: list[Any]) -> None:
    pool = await open_pool(url)
    try:
        options = RecorderConfig(database_url=url, redis_url="redis://unused")
        recorder = Recorder(pool, await prepare(pool, options), options)
        entries: list[Any] = [
            (f"{i + 1}-0", decode({FIELD: encode_bars("bars/test", bars[start : start + 100])}))
            for i, start in enumerate(range(0, len(bars), 100))
        ]
        await recorder.handle("bars.{sim}.1m", entries)
    finally:
        await pool.close()


async def test_a_recorded_run_starts_with_the_regime_its_history_made(
    fresh_database: str, tmp_path: Path
) -> None:
    series = regime_series(SEED, segments=3, spec=SPEC)
    await _record(fresh_database, [bus_bar(candle) for candle in series.bars])
    path = tmp_path / "gated.toml"
    path.write_text(GATED)
    start = series.bars[START_BAR].open_time_ns
    config = BacktestConfig(
        strategies=(path,), start_ns=start, end_ns=close_of(series.bars[-1]) + 1, symbols=("BTC/USDT",),
        database_url=fresh_database,
    )  # fmt: skip
    backtest = build(config)
    done = await run_recorded(config, backtest)

    classifier = Classifier()
    after = [classifier.update(candle).regime for candle in series.bars]
    assert after[START_BAR - 2] is Regime.TREND_UP  # the regime as of the start
    # The run's bars close from the start on (the bar opened a minute before closes at it).
    expected = [
        close_of(candle)
        for k, candle in enumerate(series.bars)
        if close_of(candle) >= start and after[k - 1] is Regime.TREND_UP
    ]
    signalled = [s.ts_signal_ns for s in done.tape.signals]
    assert signalled == expected
    assert signalled[0] == start  # at once: the warm-up told the patch the start's regime
    # The changes heard in the run are those after the start (the warm-up's were told, not kept).
    assert done.tape.regimes and done.tape.regimes[0].regime is not Regime.TREND_UP
    assert all(v.ts_event_ns > start for v in done.tape.regimes)
