"""Overwatch's regime changes kept in PostgreSQL, with real parts: a real `trademesh overwatch`
reads bars from a real Redis and publishes its changes on regimes.1m, and a real `trademesh
recorder` keeps each in `regime_changes`, exactly as published; the recorder killed (-9)
mid-stream and started again records every change once, and a republished change changes
nothing.

Each test has a Redis database of its own (regimes.1m is one stream for every market) and a
fresh PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import IO, Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, recorder_database
from tests.integration.recorded_support import recorded_after_a_kill, recorder_args, start
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from tests.overwatch_support import bus_bar
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import Candle, Timeframe
from trademesh.core.domain.regime import Regime
from trademesh.core.overwatch.synthetic import SeriesSpec, segment_bars
from trademesh.core.platform.bus.codec import decode, encode_bars, encode_regimes
from trademesh.core.platform.bus.names import regimes_stream
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.overwatch.v1 import overwatch_pb2 as ow

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL, Redis and processes
__all__ = ["database_url", "recorder_database", "redis_url"]  # the fixtures, for pytest

STREAM = regimes_stream(Timeframe.M1)
WAIT_S = 30.0
MINUTE_NS = 60 * 10**9
T0 = 1_763_700_000_000_000_000 // MINUTE_NS * MINUTE_NS
WARM_BARS = 150  # before Overwatch starts: more than its 100-bar warm-up
THIN_BARS = 60  # then thin volume, read as thin_liquidity within ~25 bars
REGIMES = {v: name.removeprefix("REGIME_").lower() for name, v in ow.Regime.items() if v}
COLUMNS = (
    "venue, symbol, timeframe, at_ns, at_bar_ns, since_ns, previous, regime, adx, di_plus, di_minus,"
    " vol_ratio, volume_ratio"
)


@pytest.fixture
async def bus_url(redis_url: str) -> AsyncIterator[str]:
    async with redis_db(redis_url) as url:
        yield url


@pytest.fixture
async def client(bus_url: str) -> AsyncIterator[Any]:
    made = aioredis.Redis.from_url(bus_url)
    try:
        yield made
    finally:
        await made.aclose()


@pytest.fixture
async def processes(tmp_path: Path) -> AsyncIterator[list[tuple[ServiceProcess, IO[str]]]]:
    """The processes a test starts, with their logs; stopped after it."""
    started: list[tuple[ServiceProcess, IO[str]]] = []
    yield started
    for process, log in started:
        await asyncio.to_thread(process.terminate)
        log.close()


@pytest.fixture
async def db(recorder_database: str) -> AsyncIterator[Any]:
    conn = await asyncpg.connect(recorder_database)
    try:
        yield conn
    finally:
        await conn.close()


async def recorded(db: Any, where: str = "TRUE") -> list[tuple[Any, ...]]:
    try:
        rows = await db.fetch(f"SELECT {COLUMNS} FROM regime_changes WHERE {where} ORDER BY at_ns, symbol")
    except asyncpg.UndefinedTableError:
        return []  # the recorder has not migrated yet
    return [tuple(row) for row in rows]


def as_row(change: ow.RegimeChange) -> tuple[Any, ...]:
    """The row a change should become: the figures exactly the wire's doubles."""
    f = change.features
    return (change.venue, change.symbol, "1m", change.at_ns, change.at_bar_ns, change.since_ns,
            REGIMES[change.previous], REGIMES[change.regime], f.adx, f.di_plus, f.di_minus,
            f.vol_ratio, f.volume_ratio)  # fmt: skip


async def on_stream(client: Any) -> list[ow.RegimeChange]:
    return [c for _, fields in await client.xrange(STREAM) for c in decode(fields).regimes.changes]


async def publish_bars(client: Any, venue: str, candles: Sequence[Candle], per_entry: int) -> None:
    for first in range(0, len(candles), per_entry):
        chunk = [bus_bar(c, venue) for c in candles[first : first + per_entry]]
        await client.xadd(f"bars.{{{venue}}}.1m", {b"d": encode_bars("bars/test", chunk)})


async def test_overwatchs_live_change_is_recorded_as_it_published_it(
    bus_url: str, client: Any, recorder_database: str, db: Any, processes: Any, tmp_path: Path
) -> None:
    venue = "t" + uuid.uuid4().hex[:10]
    series = segment_bars(Regime.THIN_LIQUIDITY, THIN_BARS, seed=7, spec=SeriesSpec(warmup_bars=WARM_BARS))
    await publish_bars(client, venue, series.bars[:WARM_BARS], per_entry=50)
    start(processes, tmp_path, "overwatch", "--port", "0", "--metrics-port", "-1", "--redis-url", bus_url,
          "--discover-s", "0.2")  # fmt: skip
    start(processes, tmp_path, *recorder_args(bus_url, recorder_database, "regimes.*"))
    await publish_bars(client, venue, series.bars[WARM_BARS:], per_entry=10)

    async def thin_recorded() -> list[tuple[Any, ...]] | None:
        rows = await recorded(db)
        return rows if any(row[7] == "thin_liquidity" for row in rows) else None

    rows = await until(thin_recorded, WAIT_S, interval_s=0.2, what="the thin_liquidity change recorded")
    published = await on_stream(client)
    assert published and all(c.venue == venue for c in published)
    assert rows == [as_row(c) for c in published], "each published change, exactly"
    change = next(c for c in published if c.regime == ow.REGIME_THIN_LIQUIDITY)
    assert change.features.volume_ratio <= 0.35 and change.at_ns == change.at_bar_ns + MINUTE_NS
    stamped = await db.fetchval("SELECT ts_publish_ns FROM regime_changes WHERE regime = 'thin_liquidity'")
    assert stamped == decode((await client.xrange(STREAM))[-1][1]).ts_publish_ns


def change(n: int, symbols: int = 10) -> ow.RegimeChange:
    """The n-th of a run of changes: `symbols` markets, each changing on every bar in turn; the
    figures doubles no decimal text would keep exactly."""
    return ow.RegimeChange(
        venue="sim", symbol=f"S{n % symbols}/USDT", timeframe=common.TIMEFRAME_1_MINUTE,
        previous=ow.REGIME_RANGE if n % 2 else ow.REGIME_TREND_UP,
        regime=ow.REGIME_TREND_UP if n % 2 else ow.REGIME_RANGE,
        since_ns=T0 + (n // symbols - 2) * MINUTE_NS, at_bar_ns=T0 + (n // symbols) * MINUTE_NS,
        at_ns=T0 + (n // symbols + 1) * MINUTE_NS,
        features=ow.Features(adx=25 + n / 7, di_plus=1 / 3, di_minus=n * 0.1, vol_ratio=2.0**-40,
                             volume_ratio=1e300 if n == 0 else 0.7),
    )  # fmt: skip


async def test_a_recorder_killed_mid_stream_and_restarted_records_every_change_once(
    bus_url: str, client: Any, recorder_database: str, db: Any, processes: Any, tmp_path: Path
) -> None:
    total, per_entry = 6000, 20
    changes = [change(n) for n in range(total)]
    entries = [encode_regimes("overwatch", changes[i : i + per_entry]) for i in range(0, total, per_entry)]
    for data in entries:
        await client.xadd(STREAM, {b"d": data})
    args = recorder_args(bus_url, recorder_database, "regimes.*")
    rows = await recorded_after_a_kill(processes, tmp_path, args, lambda: recorded(db), total, "every change")

    async def counted(expected: int) -> list[tuple[Any, ...]] | None:
        rows = await recorded(db)
        return rows if len(rows) == expected else None

    assert sorted(rows) == sorted(as_row(c) for c in changes)

    # Published again (a retry), with one new change: only the new one is added.
    new = change(total)
    await client.xadd(STREAM, {b"d": entries[0]})
    await client.xadd(STREAM, {b"d": encode_regimes("overwatch", [*changes[-3:], new])})
    rows = await until(lambda: counted(total + 1), WAIT_S, what="the new change")
    assert as_row(new) in rows
    assert await db.fetchval(
        "SELECT count(DISTINCT (venue, symbol, timeframe, at_ns)) FROM regime_changes"
    ) == (total + 1)

    async def acknowledged() -> bool | None:
        pending = await client.xpending(STREAM, "recorder")
        return True if int(pending["pending"]) == 0 else None

    await until(acknowledged, WAIT_S, what="every entry acknowledged")
    assert len(await recorded(db)) == total + 1
