"""BacktestStore (trademesh.core.backtest.store) against a real PostgreSQL, with a real run's results: a
backtest on synthetic history through the engine cores, stored, read back equal to the last
Decimal (fills, round trips, metrics, every curve and its drawdowns), a re-run replacing the
old one, a failed run keeping its error, unknown ids NotFound, and the tables' CHECKs; then
`trademesh backtest`'s run (trademesh.core.backtest.command) over history the real recorder wrote, stored
equal to the same run in-process, and a run that fails stored failed with its error."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import asyncpg
import pytest

from tests.integration.postgres_server import database_url, fresh_database, recorder_database
from trademesh.core.backtest.assemble import build
from trademesh.core.backtest.command import _run
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.metrics import TOTAL, drawdowns
from trademesh.core.backtest.outcome import RunOutcome, outcome
from trademesh.core.backtest.progress import ProgressBar
from trademesh.core.backtest.session import drive_sync
from trademesh.core.backtest.store import BacktestStore
from trademesh.core.backtest.summary import config_view, run_id
from trademesh.core.backtest.synthetic import Walk, walk
from trademesh.core.platform.bus.codec import FIELD, decode, encode_market
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument, NotFound
from trademesh.core.recorder.app import Recorder, RecorderConfig, prepare
from trademesh.core.recorder.database import open_pool

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL: not in the fast tier
__all__ = ["database_url", "fresh_database", "recorder_database"]  # the fixtures, for pytest

TREND = Path("trademesh/core/detector/strategies/trend.toml")
SPEC = Walk(steps=1800, volatility=0.001)
CONFIG = BacktestConfig(
    strategies=(TREND,), start_ns=SPEC.start_ns, end_ns=SPEC.start_ns + SPEC.steps * SPEC.step_ns,
    symbols=("BTC/USDT",), sample_s=60,
)  # fmt: skip
RUN = run_id(CONFIG)


@pytest.fixture(scope="module")
def done() -> RunOutcome:
    backtest = build(CONFIG)
    return outcome(drive_sync(backtest, walk(SPEC)), backtest.settings.sample_ns)


@pytest.fixture
async def store(fresh_database: str) -> AsyncIterator[BacktestStore]:
    opened = await BacktestStore.open(fresh_database)
    yield opened
    await opened.close()


async def stored(store: BacktestStore, done: RunOutcome, run: str = RUN) -> None:
    await store.start(run, config_view(CONFIG), CONFIG.start_ns, CONFIG.end_ns)
    await store.finish(run, done)


async def count(store: BacktestStore, table: str, run: str = RUN) -> int:
    async with store._pool.acquire() as conn:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table} WHERE run_id = $1", run))


async def test_a_run_reads_back_exactly_as_it_was_made(store: BacktestStore, done: RunOutcome) -> None:
    assert done.fills and done.trips and done.tape.orders, "the run trades"
    await stored(store, done)
    back = await store.result(RUN)
    assert (back.run_id, back.status, back.error) == (RUN, "done", None)
    assert back.config == config_view(CONFIG) and back.finished_at is not None
    assert (back.start_ns, back.end_ns, back.events) == (CONFIG.start_ns, CONFIG.end_ns, done.tape.events)
    assert back.fills == done.fills and back.trips == done.trips
    assert back.metrics == done.metrics and list(back.metrics) == list(done.metrics)
    assert back.curve == done.tape.curve and back.strategy_curves == done.tape.strategy_curves
    curves = {TOTAL: done.tape.curve, **done.tape.strategy_curves}
    assert back.drawdowns == {name: drawdowns(curve) for name, curve in curves.items() if curve}
    assert max(back.drawdowns[TOTAL]) == done.metrics[TOTAL].max_drawdown
    # Exact: Decimal in, Decimal out, to the last digit.
    assert all(isinstance(f.price, Decimal) and isinstance(f.fee, Decimal) for f in back.fills)
    assert [str(f.size) for f in back.fills] == [str(f.size) for f in done.fills]
    assert await count(store, "backtest_orders") == len(done.tape.orders)
    assert await count(store, "backtest_signals") == len(done.tape.signals)
    assert await count(store, "backtest_decisions") == len(done.tape.decisions)
    async with store._pool.acquire() as conn:
        intents = await conn.fetchval(
            "SELECT count(*) FROM backtest_decisions WHERE run_id = $1 AND intent_id IS NOT NULL", RUN
        )
        last = await conn.fetchrow(
            "SELECT * FROM backtest_orders WHERE run_id = $1 ORDER BY seq DESC LIMIT 1", RUN
        )
    assert intents == sum(1 for d in done.tape.decisions if d.HasField("intent"))
    final = done.tape.orders[-1]
    assert (last["client_order_id"], last["status"], last["filled_size"], last["ts_ns"]) == (
        final.order.client_order_id, final.order.status.value, final.order.filled_size, final.ts_event_ns,
    )  # fmt: skip


async def test_the_list_shows_each_run_with_its_total(store: BacktestStore, done: RunOutcome) -> None:
    await stored(store, done)
    await store.start("other", {"venue": "sim"}, 0, 10)
    listed = await store.runs()
    assert [r.run_id for r in listed] == ["other", RUN]  # newest first
    assert listed[0].status == "running" and listed[0].total is None
    assert listed[1].total == done.metrics[TOTAL] and listed[1].config == config_view(CONFIG)
    assert [r.run_id for r in await store.runs(limit=1, offset=1)] == [RUN]
    with pytest.raises(InvalidArgument):
        await store.runs(limit=0)


async def test_running_the_same_id_again_replaces_the_old_run(store: BacktestStore, done: RunOutcome) -> None:
    await stored(store, done)
    first = await store.result(RUN)
    await store.start(RUN, config_view(CONFIG), CONFIG.start_ns, CONFIG.end_ns)
    again = await store.result(RUN)
    assert again.status == "running" and again.fills == [] and again.metrics == {} and again.curve == []
    assert await count(store, "backtest_orders") == 0
    await store.finish(RUN, done)
    back = await store.result(RUN)
    assert back.created_at >= first.created_at
    assert back.fills == done.fills and back.metrics == done.metrics
    assert await count(store, "backtest_fills") == len(done.fills)  # once, not twice
    with pytest.raises(FailedPrecondition):
        await store.finish(RUN, done)  # done already: nothing written twice


async def test_starts_of_one_id_together_leave_one_run(store: BacktestStore) -> None:
    await asyncio.gather(*(store.start("same", {"n": str(n)}, 0, 10) for n in range(6)))
    assert [r.run_id for r in await store.runs()] == ["same"]
    assert (await store.result("same")).status == "running"


async def test_a_failed_run_keeps_its_error_and_no_results(store: BacktestStore) -> None:
    await store.start("broken", {"venue": "sim"}, 0, 10)
    await store.fail("broken", "Unavailable: the recorder's database went away")
    back = await store.result("broken")
    assert (back.status, back.error, back.metrics, back.fills) == (
        "failed", "Unavailable: the recorder's database went away", {}, [],
    )  # fmt: skip
    assert back.finished_at is not None
    await store.start("stopped", {}, 0, 10)
    await store.fail("stopped", "interrupted", status="cancelled")
    assert (await store.result("stopped")).status == "cancelled"
    with pytest.raises(InvalidArgument):
        await store.fail("stopped", "x", status="done")
    with pytest.raises(FailedPrecondition):
        await store.fail("broken", "again")


async def test_unknown_ids_are_not_found_and_delete_removes_everything(
    store: BacktestStore, done: RunOutcome
) -> None:
    for call in (
        store.result("nope"),
        store.delete("nope"),
        store.finish("nope", done),
        store.fail("nope", "x"),
    ):
        with pytest.raises(NotFound):
            await call
    await stored(store, done)
    await store.delete(RUN)
    with pytest.raises(NotFound):
        await store.result(RUN)
    for table in (
        "backtest_fills",
        "backtest_orders",
        "backtest_equity",
        "backtest_metrics",
        "backtest_trips",
    ):
        assert await count(store, table) == 0, table


async def test_the_database_refuses_what_no_run_makes(store: BacktestStore, done: RunOutcome) -> None:
    fill = done.fills[0]
    for bad, constraint in (
        (replace(fill, size=Decimal("-0.001")), "backtest_fills_size"),
        (replace(fill, side="long"), "backtest_fills_side"),
    ):
        await store.start("bad", {}, 0, 10)
        with pytest.raises(InvalidArgument, match=constraint):
            await store.finish("bad", replace(done, fills=[bad]))
        back = await store.result("bad")  # nothing of it was kept
        assert back.status == "running" and back.fills == [] and back.metrics == {}
    async with store._pool.acquire() as conn:
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute("UPDATE backtest_runs SET status = 'lost' WHERE run_id = 'bad'")
        config = await conn.fetchval("SELECT config FROM backtest_runs WHERE run_id = 'bad'")
    assert json.loads(config) == {}


async def test_opening_again_applies_nothing(fresh_database: str) -> None:
    first = await BacktestStore.open(fresh_database)
    try:
        assert await first.migrate() == []
    finally:
        await first.close()


# ---- trademesh backtest: the command's run, stored


async def test_the_command_stores_its_run_over_recorded_history(recorder_database: str) -> None:
    spec = replace(SPEC, start_ns=time.time_ns() // 60_000_000_000 * 60_000_000_000 - 3600 * 10**9)
    settings = replace(
        CONFIG, start_ns=spec.start_ns, end_ns=spec.start_ns + spec.steps * spec.step_ns,
        database_url=recorder_database,
    )  # fmt: skip
    pool = await open_pool(recorder_database)
    try:
        options = RecorderConfig(database_url=recorder_database, redis_url="redis://unused")
        recorder = Recorder(pool, await prepare(pool, options), options)
        events = list(walk(spec))
        entries = [(f"{i + 1}-0", decode({FIELD: encode_market("test", events[i : i + 500])}))
                   for i in range(0, len(events), 500)]  # fmt: skip
        await recorder.handle("md.test", entries)
    finally:
        await pool.close()
    with ProgressBar(enabled=False) as bar:
        text = await _run(settings, bar)
    identity = run_id(settings)
    assert f"stored: backtest run {identity}" in text
    in_process = build(settings)
    expected = outcome(drive_sync(in_process, walk(spec)), in_process.settings.sample_ns)
    store = await BacktestStore.open(recorder_database)
    try:
        back = await store.result(identity)
    finally:
        await store.close()
    assert (back.status, back.events, back.config) == ("done", len(events), config_view(settings))
    assert "database_url" not in back.config  # a secret, never stored
    assert back.fills and back.fills == expected.fills and back.trips == expected.trips
    assert back.metrics == expected.metrics and back.curve == expected.tape.curve


async def test_a_command_run_that_fails_is_stored_failed_with_its_error(fresh_database: str) -> None:
    settings = replace(CONFIG, database_url=fresh_database)  # no recorder tables: it cannot read
    with (
        ProgressBar(enabled=False) as bar,
        pytest.raises(FailedPrecondition, match=r"the database has no [a-z_]+ table"),
    ):
        await _run(settings, bar)
    store = await BacktestStore.open(fresh_database)
    try:
        back = await store.result(run_id(settings))
    finally:
        await store.close()
    assert back.status == "failed" and back.finished_at is not None
    assert back.error is not None and back.error.startswith("FailedPrecondition: the database has no ")
    assert back.fills == [] and back.metrics == {}
