"""The Screener's results kept in PostgreSQL, with real parts: a real `trademesh screener` ranks
bars on a real Redis and publishes each evaluation on screens.<name>, and a real `trademesh
recorder` keeps each in `screen_results`, exactly as published; a recorder killed (-9)
mid-stream and started again records every result once, and a republished result changes
nothing.

Each test has a Redis database of its own and a fresh PostgreSQL database.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO, Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, fresh_database
from tests.integration.recorded_support import recorded_after_a_kill, recorder_args, start
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.codec import decode, encode_bars, encode_screen_result
from trademesh.core.platform.bus.names import screens_stream
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.screener.v1 import screener_pb2 as sc

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL, Redis and processes
__all__ = ["database_url", "fresh_database", "redis_url"]  # the fixtures, for pytest

WAIT_S = 30.0
MINUTE_NS = 60 * 10**9
T0 = 1_763_700_000_000_000_000 // MINUTE_NS * MINUTE_NS
COLUMNS = (
    "screen, venue, computed_ns, top_n, top, ranked, universe, left_out, missing, stale, filtered_out,"
    " oldest_input_ns, newest_input_ns"
)
# Momentum on 1m bars, evaluated every second: three of the four symbols published rank.
SCREEN = """
name = "recorded"
venue = "rec"
cadence_s = 1
top = 2
max_age_s = 86400
filters = ["bar_volume >= 10"]

[bars]
timeframe = "1m"
momentum = 3
volatility = 2
volume = 3

[score]
weights = { momentum = 1.0 }
"""
CLOSES = {"AAA/USDT": "150", "BBB/USDT": "125", "CCC/USDT": "75", "DDD/USDT": "200"}  # DDD: thin


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
async def db(fresh_database: str) -> AsyncIterator[Any]:
    conn = await asyncpg.connect(fresh_database)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def processes() -> AsyncIterator[list[tuple[ServiceProcess, IO[str]]]]:
    started: list[tuple[ServiceProcess, IO[str]]] = []
    yield started
    for process, log in started:
        await asyncio.to_thread(process.terminate)
        log.close()


async def recorded(db: Any) -> list[tuple[Any, ...]]:
    try:
        rows = await db.fetch(f"SELECT {COLUMNS} FROM screen_results ORDER BY screen, computed_ns")
    except asyncpg.UndefinedTableError:
        return []  # the recorder has not migrated yet
    return [tuple(json.loads(v) if isinstance(v, str) and v[:1] in "[{" else v for v in row) for row in rows]


def as_row(result: sc.ScreenResult) -> tuple[Any, ...]:
    """The row a result should become: its top's symbols, every ranked one as published."""
    ranked = [
        {"rank": r.rank, "symbol": r.symbol, "score": r.score, "as_of_ns": r.as_of_ns,
         "metrics": {m.metric: m.value for m in r.metrics}}
        for r in result.ranked
    ]  # fmt: skip
    top = [r.symbol for r in result.ranked[: result.top_n]]
    return (result.screen, result.venue, result.computed_ns, result.top_n, top, ranked, result.universe,
            result.left_out, dict(result.missing), result.stale, result.filtered_out,
            result.oldest_input_ns, result.newest_input_ns)  # fmt: skip


async def on_stream(client: Any, stream: str) -> list[sc.ScreenResult]:
    return [decode(fields).screen_result for _, fields in await client.xrange(stream)]


def minute_bars(symbol: str, last: str, quote_volume: str) -> list[bus.Bar]:
    """Four 1m bars closed by the last whole minute (not stale), closing 100, 100, 100 then `last`."""
    closes = ["100", "100", "100", last]
    end = time.time_ns() // MINUTE_NS * MINUTE_NS
    return [
        bus.Bar(venue="rec", symbol=symbol, timeframe=common.TIMEFRAME_1_MINUTE,
                open_time_ns=end - (4 - i) * MINUTE_NS, open=c, high=c, low=c, close=c, volume="1",
                quote_volume=quote_volume, trade_count=1)
        for i, c in enumerate(closes)
    ]  # fmt: skip


async def test_the_screeners_results_are_recorded_as_it_published_them(
    bus_url: str, client: Any, fresh_database: str, db: Any, processes: Any, tmp_path: Path
) -> None:
    for symbol, last in CLOSES.items():
        volume = "1" if symbol == "DDD/USDT" else "5"
        bars = minute_bars(symbol, last, volume)
        await client.xadd("bars.{rec}.1m", {b"d": encode_bars("bars/test", bars)})
    screens = tmp_path / "screens"
    screens.mkdir()
    (screens / "recorded.toml").write_text(SCREEN)
    screener = start(processes, tmp_path, "screener", "--port", "0", "--metrics-port", "-1", "--redis-url",
                     bus_url, "--screens", str(screens))  # fmt: skip
    start(processes, tmp_path, *recorder_args(bus_url, fresh_database, "screens.*"))
    stream = screens_stream("recorded")

    async def two_recorded() -> list[tuple[Any, ...]] | None:
        rows = await recorded(db)
        return rows if len(rows) >= 2 else None

    await until(two_recorded, WAIT_S, interval_s=0.2, what="two evaluations recorded")
    await asyncio.to_thread(screener.terminate)  # no more results: the stream is what there is

    async def all_recorded() -> list[tuple[Any, ...]] | None:
        rows, published = await recorded(db), await on_stream(client, stream)
        return rows if len(rows) == len(published) else None

    rows = await until(all_recorded, WAIT_S, interval_s=0.2, what="every published result recorded")
    published = await on_stream(client, stream)
    assert rows == [as_row(r) for r in published], "each published result, exactly"
    first = rows[0]
    assert first[4] == ["AAA/USDT", "BBB/USDT"] and [r["symbol"] for r in first[5]][2:] == ["CCC/USDT"]
    assert first[5][0]["metrics"] == {"bar_volume": "15.0", "momentum": "0.5"}  # the wire's text
    assert (first[6], first[10]) == (4, 1)  # DDD/USDT: filtered out by its volume
    stamped = await db.fetchval("SELECT ts_publish_ns FROM screen_results ORDER BY computed_ns LIMIT 1")
    assert stamped == decode((await client.xrange(stream))[0][1]).ts_publish_ns


def result(n: int) -> sc.ScreenResult:
    """The n-th of a run of results of two screens, one a second each, with scores no decimal
    text would keep exactly."""
    made = sc.ScreenResult(
        screen=f"s{n % 2}", venue="sim", computed_ns=T0 + (n // 2) * 10**9, top_n=2, universe=3,
        missing={"momentum": n % 3} if n % 3 else {}, oldest_input_ns=T0 - n, newest_input_ns=T0 + n,
    )  # fmt: skip
    for rank, symbol in enumerate(["BTC/USDT", "ETH/USDT", "SOL/USDT"][n % 3 :], start=1):
        made.ranked.add(rank=rank, symbol=symbol, score=1 / (rank + n), as_of_ns=T0 + rank,
                        metrics=[sc.MetricValue(metric="momentum", value=f"0.{n}")])  # fmt: skip
    return made


async def test_a_recorder_killed_mid_stream_and_restarted_records_every_result_once(
    bus_url: str, client: Any, fresh_database: str, db: Any, processes: Any, tmp_path: Path
) -> None:
    total = 1500
    results = [result(n) for n in range(total)]
    entries = [(screens_stream(r.screen), encode_screen_result("screener", r)) for r in results]
    pipe = client.pipeline(transaction=False)
    for stream, data in entries:
        pipe.xadd(stream, {b"d": data})
    await pipe.execute()
    args = recorder_args(bus_url, fresh_database, "screens.*")
    rows = await recorded_after_a_kill(processes, tmp_path, args, lambda: recorded(db), total, "every result")

    async def counted(expected: int) -> list[tuple[Any, ...]] | None:
        rows = await recorded(db)
        return rows if len(rows) == expected else None

    assert sorted(rows) == sorted(as_row(r) for r in results)

    # Published again (a retry), with one new result: only the new one is added.
    new = result(total)
    await client.xadd(entries[0][0], {b"d": entries[0][1]})
    await client.xadd(screens_stream(new.screen), {b"d": encode_screen_result("screener", new)})
    rows = await until(lambda: counted(total + 1), WAIT_S, what="the new result")
    assert as_row(new) in rows

    async def acknowledged() -> bool | None:
        pending = [await client.xpending(f"screens.s{i}", "recorder") for i in range(2)]
        return True if all(int(p["pending"]) == 0 for p in pending) else None

    await until(acknowledged, WAIT_S, what="every entry acknowledged")
    assert len(await recorded(db)) == total + 1
