"""Recorded funding, end to end with real parts: ingest reads a real sim venue's funding history
into funding.{sim} and the real recorder keeps it in PostgreSQL (values as the venue lists
them), and likewise a replayed Binance USD-M venue's, whose rates come from its rate history
(the stand-in's /fapi/v1/fundingRate); a backtest over recorded history pays the recorded rate
at the funding times the recorder covers and the sim config's rate at the others, and says
which in its summary."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, fresh_database, recorder_database
from tests.integration.replay import capture_files, running_replay_venue
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, VenueFactory, until
from tests.integration.test_backtest_funding_cli import SPEC, TREND, record
from tests.integration.test_funding_payments import PERP as SIM_PERP
from tests.integration.test_funding_payments import RATE, SIM_CONFIG, STANDINS
from tests.unit.test_backtest_funding import PERP, sim_config
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.backtest.assemble import build, run_recorded
from trademesh.core.backtest.config import BacktestConfig
from trademesh.core.backtest.funding_rates import load_funding_rates
from trademesh.core.backtest.summary import summary
from trademesh.core.backtest.synthetic import walk
from trademesh.core.platform.bus.codec import FIELD, decode, encode_funding
from trademesh.core.platform.config.env import REDIS_URL, TOKEN
from trademesh.core.platform.service.process import start_service
from trademesh.core.recorder.app import Recorder, RecorderConfig, prepare
from trademesh.core.recorder.database import open_pool
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL, Redis and processes
__all__ = ["database_url", "fresh_database", "recorder_database"]  # the fixtures, for pytest

D = Decimal
S = 10**9
MINUTE_NS = 60 * S
CONFIG_RATE = D("0.001")  # sim_config's


# ---- the feed: venue -> ingest -> funding.{sim} -> recorder -> funding


async def _recorded(url: str, venue: str) -> list[Any]:
    connection = await asyncpg.connect(url)
    try:
        return list(
            await connection.fetch(
                "SELECT funding_id, symbol, asset, amount, rate, position_size, funding_time_ns "
                "FROM funding WHERE venue = $1 ORDER BY funding_time_ns, funding_id",
                venue,
            )
        )
    except asyncpg.UndefinedTableError:
        return []  # the recorder has not migrated yet
    finally:
        await connection.close()


async def _published_ids(bus: str, venue: str) -> list[str]:
    client = aioredis.Redis.from_url(bus)
    try:
        entries: Any = await client.xrange(f"funding.{{{venue}}}")
    finally:
        await client.aclose()
    return [p.funding_id for _, fields in entries for p in decode(fields).funding.payments]


async def _ingest_and_record(
    name: str, address: str, redis_url: str, database: str, tmp_path: Path, count: int
) -> tuple[list[Any], list[str]]:
    """Runs ingest (funding every second) and the recorder on the venue until `count` rows are
    recorded: the rows, and the ids ingest published."""
    async with redis_db(redis_url) as bus:
        with (
            (tmp_path / "ingest.log").open("w") as ingest_log,
            (tmp_path / "recorder.log").open("w") as rec_log,
        ):
            ingest = start_service(
                ["ingest", "--port", "0", "--metrics-port", "-1", "--venue", f"{name}={address}",
                 "--funding-every-s", "1"],
                env={TOKEN: TEST_TOKEN, REDIS_URL: bus}, stderr=ingest_log,
            )  # fmt: skip
            recorder = start_service(
                ["recorder", "--port", "0", "--metrics-port", "-1", "--redis-url", bus,
                 "--database-url", database, "--stream-pattern", "funding.*"],
                stderr=rec_log, timeout_s=60,
            )  # fmt: skip
            try:

                async def recorded() -> list[Any] | None:
                    found = await _recorded(database, name)
                    return found if len(found) >= count else None

                what = f"{count} funding rows recorded"
                rows = await until(recorded, timeout_s=30, interval_s=0.2, what=what)
            finally:
                await asyncio.to_thread(ingest.terminate)
                await asyncio.to_thread(recorder.terminate)
        return rows, await _published_ids(bus, name)


async def test_ingest_and_the_recorder_keep_a_venues_funding_with_its_rates(
    fresh_venue: VenueFactory, redis_url: str, recorder_database: str, tmp_path: Path
) -> None:
    venue = fresh_venue(SIM_CONFIG, "perp")  # funding every 2 s at 0.0003
    stubs = venue.stubs()
    placed = await stubs.tf.PlaceOrder(
        tf.PlaceOrderRequest(symbol=SIM_PERP, side=common.SIDE_SELL, type=tf.ORDER_TYPE_MARKET, size="0.5"),
        timeout=CALL_TIMEOUT_S,
    )
    assert placed.order.status == tf.ORDER_STATUS_FILLED
    rows, published = await _ingest_and_record(
        "sim", venue.address, redis_url, recorder_database, tmp_path, 3
    )
    # ingest asked again every second for the last funding time (since_ns is inclusive) and
    # published each payment once all the same
    assert len(published) == len(set(published)) >= len(rows)
    listed = await stubs.tf.ListFundingPayments(
        tf.ListFundingPaymentsRequest(limit=1000), timeout=CALL_TIMEOUT_S
    )
    await stubs.close()
    by_id = {p.funding_id: p for p in listed.payments}
    for row in rows:
        payment = by_id[row["funding_id"]]  # recorded: one the venue lists, exactly
        assert (row["symbol"], row["asset"], row["funding_time_ns"]) == (
            payment.symbol,
            payment.asset,
            payment.ts_ns,
        )
        assert (row["amount"], row["rate"], row["position_size"]) == (
            D(payment.amount), D(payment.rate), D(payment.position_size),
        )  # fmt: skip
        assert row["rate"] == RATE and row["position_size"] == D("-0.5")
    times = [row["funding_time_ns"] for row in rows]
    assert times == sorted(set(times)), "each funding time once, however often it was read"
    assert all(b - a == 2 * S for a, b in itertools.pairwise(times)), "none missed between"


@pytest.mark.replay(env=STANDINS["binanceusdm"][1])
async def test_a_live_venues_funding_is_recorded_with_the_rates_of_its_rate_history(
    request: pytest.FixtureRequest, redis_url: str, recorder_database: str, tmp_path: Path
) -> None:
    """Binance USD-M's income carries no rate: the connector takes each from the venue's public
    rate history, and the recorder keeps it (NUMERIC, exactly)."""
    prefix, _, table, _ = STANDINS["binanceusdm"]
    async with running_replay_venue(tmp_path, request, "binanceusdm", capture_files(prefix)) as venue:
        rows, published = await _ingest_and_record(
            "binanceusdm", venue.address, redis_url, recorder_database, tmp_path, len(table)
        )
    assert sorted(published) == sorted(row[0] for row in table), "each payment published once"
    recorded = [
        (
            row["funding_id"],
            row["symbol"],
            row["amount"],
            row["rate"],
            row["position_size"],
            row["funding_time_ns"],
        )
        for row in rows
    ]
    assert recorded == [
        (i, symbol, D(amount), D(rate), None, ms * 1_000_000)
        for i, symbol, amount, ms, rate in sorted(table, key=lambda row: (row[3], row[0]))
    ]


# ---- the backtest: recorded rates where there are, the config's elsewhere


def _funding_times() -> list[int]:
    first = (SPEC.start_ns // MINUTE_NS + 1) * MINUTE_NS
    return list(range(first, SPEC.start_ns + SPEC.steps * SPEC.step_ns + 1, MINUTE_NS))


def _recorded_rates() -> dict[int, Decimal]:
    """A rate for two funding times out of three (a third left to the config), alternating in
    sign; each recorded 250 ms after its funding time, as a venue's clock may put it."""
    rates = (D("0.0005"), D("-0.0007"))
    return {t: rates[i % 2] for i, t in enumerate(_funding_times()) if i % 3 != 2}


async def _record_funding(url: str) -> None:
    """The rates through the recorder's own bus handler (as ingest publishes them), and a
    payment without a rate, which is no recorded rate."""
    pool = await open_pool(url)
    try:
        options = RecorderConfig(database_url=url, redis_url="redis://unused")
        recorder = Recorder(pool, await prepare(pool, options), options)
        payments = [
            tf.FundingPayment(
                funding_id=f"BTCUSDT-PERP-{t}", symbol=PERP, asset="USDT", amount="-1", rate=str(rate),
                position_size="0.1", ts_ns=t + 250_000_000,
            )
            for t, rate in sorted(_recorded_rates().items())
        ]  # fmt: skip
        unsaid = next(t for t in _funding_times() if t not in _recorded_rates())
        payments.append(
            tf.FundingPayment(funding_id="no-rate", symbol=PERP, asset="USDT", amount="1", ts_ns=unsaid)
        )
        entry = ("1-0", decode({FIELD: encode_funding("test", "sim", payments)}))
        await recorder.handle("funding.{sim}", [entry])
    finally:
        await pool.close()


def _mids() -> dict[int, Decimal]:
    """The walk's mid at each step (its book is mid +- a tick a level)."""
    mids: dict[int, Decimal] = {}
    for event in walk(SPEC):
        if event.HasField("book_snapshot"):
            book = event.book_snapshot
            mids[event.ts_event_ns] = (D(book.bids[0].price) + D(book.asks[0].price)) / 2
    return mids


async def test_a_backtest_pays_the_recorded_rates_and_the_configs_where_none_is_recorded(
    recorder_database: str, tmp_path: Path
) -> None:
    await record(recorder_database)
    await _record_funding(recorder_database)
    config = BacktestConfig(
        strategies=(Path(TREND),), start_ns=SPEC.start_ns, end_ns=SPEC.start_ns + SPEC.steps * SPEC.step_ns,
        symbols=(PERP,), sample_s=60, sim_config=sim_config(tmp_path), database_url=recorder_database,
    )  # fmt: skip
    backtest = build(config)
    done = await run_recorded(config, backtest)
    payments, recorded, mids = done.tape.funding, _recorded_rates(), _mids()
    at_recorded = [p for p in payments if p.ts_ns in recorded]
    assert at_recorded and len(at_recorded) < len(payments), "payments at recorded and unrecorded times"
    for payment in payments:
        assert payment.rate == recorded.get(payment.ts_ns, CONFIG_RATE)
        size = payment.position_size
        assert size is not None and size != 0
        # size x mark x rate, the mark the replayed book's mid then (the step at or before it)
        marks = {mids.get(payment.ts_ns), mids.get(payment.ts_ns - S)} - {None}
        assert payment.amount in {-(size * mark * payment.rate) for mark in marks if mark is not None}
    assert done.tape.funding_recorded == len(at_recorded)
    total = sum((p.amount for p in payments), D(0))
    line = next(text for text in summary(done) if text.startswith("funding:"))
    rates = f"{len(at_recorded)} at recorded rates, {len(payments) - len(at_recorded)} at the sim config's"
    assert line == f"funding: {len(payments)} payments ({rates}) · {total.normalize():f} USDT"
    assert backtest.books.refused == []
    assert sum((line.funding for line in backtest.books.pnl({}).values()), D(0)) == total


async def test_a_database_without_recorded_funding_gives_no_rates(fresh_database: str) -> None:
    # before the recorder's migration 009 (no funding table), and with the table but no row
    assert await load_funding_rates(fresh_database, "sim", {PERP: 60}, SPEC.start_ns, SPEC.start_ns + S) == {}
    await _record_funding(fresh_database)
    rates = await load_funding_rates(fresh_database, "sim", {PERP: 60}, 0, 2**62)
    assert rates[PERP] == [(t + 250_000_000, rate) for t, rate in sorted(_recorded_rates().items())]
    assert await load_funding_rates(fresh_database, "other", {PERP: 60}, 0, 2**62) == {}
    assert await load_funding_rates(fresh_database, "sim", {"ETH/USDT:USDT": 60}, 0, 2**62) == {}
