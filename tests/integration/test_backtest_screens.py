"""A screen-driven strategy in a backtest over recorded history (PostgreSQL, the real recorder's
tables): the recorded bars before the start fill the screen's windows, so the run's first
evaluation, at its start, ranks and starts the leader's patch; the leader overtaken later
retires after the strategy's hold, its successor started then, as the same bars give in memory
(tests/unit/test_backtest_screens.py)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.integration.postgres_server import database_url, fresh_database
from tests.unit.test_backtest_screens import BARS, HOLD_S, MINUTE, SCREEN, STRATEGY, bars, config
from trademesh.core.backtest.assemble import build, run_recorded
from trademesh.core.platform.bus.codec import FIELD, decode, encode_bars
from trademesh.core.recorder.app import Recorder, RecorderConfig, prepare
from trademesh.core.recorder.database import open_pool

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

# The bars end about now: they fall in the partitions the recorder keeps (yesterday on).
T0 = time.time_ns() // MINUTE * MINUTE - (BARS + 5) * MINUTE
START_BAR = 15  # the run starts here: the 11 bars the screen's momentum reads are history


async def _record(url: str, recorded: list[Any]) -> None:
    pool = await open_pool(url)
    try:
        options = RecorderConfig(database_url=url, redis_url="redis://unused")
        recorder = Recorder(pool, await prepare(pool, options), options)
        entries: list[Any] = [
            (f"{i + 1}-0", decode({FIELD: encode_bars("bars/test", recorded[start : start + 60])}))
            for i, start in enumerate(range(0, len(recorded), 60))
        ]
        await recorder.handle("bars.{sim}.1m", entries)
    finally:
        await pool.close()


async def test_a_recorded_run_starts_the_leaders_patch_at_its_start_and_swaps_after_the_hold(
    fresh_database: str, tmp_path: Path
) -> None:
    await _record(fresh_database, bars(T0))
    (tmp_path / "screens").mkdir()
    (tmp_path / "screens" / "leaders.toml").write_text(SCREEN)
    (tmp_path / "leading.toml").write_text(STRATEGY)
    start = T0 + START_BAR * MINUTE
    settings = config((tmp_path / "leading.toml", tmp_path / "screens"), start_ns=start,
                      end_ns=T0 + BARS * MINUTE + 1, database_url=fresh_database)  # fmt: skip
    backtest = build(settings)
    done = await run_recorded(settings, backtest)

    changes = [(c.at_ns, c.start, c.retire) for _, c in done.tape.screens]
    # ETH leads from its 28th minute (its momentum over 10 bars passes BTC's), past BTC's hold.
    assert changes == [(start, ("BTC/USDT",), ()), (T0 + 28 * MINUTE, ("ETH/USDT",), ("BTC/USDT",))]
    assert changes[1][0] - start >= HOLD_S * 10**9
    assert {s.symbol for s in done.tape.signals if s.ts_signal_ns < T0 + 28 * MINUTE} == {"BTC/USDT"}
    assert {s.symbol for s in done.tape.signals if s.ts_signal_ns >= T0 + 28 * MINUTE} == {"ETH/USDT"}
