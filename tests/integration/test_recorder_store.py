"""The recorder's store against a real PostgreSQL: migrations, every event kind recorded with
exact values, idempotent writes, versioned candles and bars, bad data refused whole,
partitions created on demand and dropped by retention.

Each test has a database of its own. The migration tests and the start's partitions begin from an
empty one; the others from a copy of a database the recorder prepared once for the module (its 8
migrations and 52 partitions took a test most of its time; a copy is one statement), where their
recorder's own start finds nothing left to do. The module's databases are dropped together at its
end (see Databases).

The builders at the top are shared with test_recorder_process.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from prometheus_client import REGISTRY

from tests.integration.postgres_server import Databases, database_url
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.codec import FIELD, decode, encode_market
from trademesh.core.platform.bus.consumer import Entry
from trademesh.core.platform.errors import Corrupt, FailedPrecondition
from trademesh.core.recorder.app import Recorder, RecorderConfig, prepare
from trademesh.core.recorder.database import open_pool
from trademesh.core.recorder.migrate import Migration, load_migrations, migrate
from trademesh.core.recorder.partitions import DAY_NS, day_of, partition_name
from trademesh.core.recorder.writer import Writer
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)
__all__ = ["database_url"]  # the fixture, for pytest

NOW_NS = time.time_ns()
MINUTE_NS = 60 * 10**9


# ---- builders (shared with test_recorder_process.py)


def trade(
    venue: str, n: int, price: str = "65000.50", size: str = "0.0120", at: int = NOW_NS
) -> md.MarketEvent:
    event = md.MarketEvent(venue=venue, symbol="BTC/USDT", ts_event_ns=at + n, ts_recv_ns=at + n + 1000)
    event.trade.CopyFrom(md.Trade(trade_id=f"t{n}", price=price, size=size, taker_side=common.SIDE_BUY))
    return event


def book(
    venue: str, sequence: int, snapshot: bool, bids: list[tuple[str, str]], asks: list[tuple[str, str]]
) -> md.MarketEvent:
    event = md.MarketEvent(
        venue=venue, symbol="BTC/USDT", ts_event_ns=NOW_NS + sequence % 10**6, ts_recv_ns=NOW_NS
    )
    target = event.book_snapshot if snapshot else event.book_delta
    target.sequence = sequence
    target.bids.extend(md.BookLevel(price=p, size=s) for p, s in bids)
    target.asks.extend(md.BookLevel(price=p, size=s) for p, s in asks)
    return event


def ticker(venue: str, n: int, last: str = "") -> md.MarketEvent:
    event = md.MarketEvent(venue=venue, symbol="ETH/USDT", ts_event_ns=NOW_NS + n, ts_recv_ns=NOW_NS + n)
    event.ticker.CopyFrom(
        md.Ticker(
            best_bid="3000.1", best_bid_size="1.5", best_ask="3000.20", best_ask_size="0.25", last_price=last
        )
    )
    return event


def candle(venue: str, close: str, closed: bool, at: int) -> md.MarketEvent:
    event = md.MarketEvent(venue=venue, symbol="BTC/USDT", ts_event_ns=at, ts_recv_ns=at + 7)
    event.candle.CopyFrom(
        md.Candle(
            timeframe=common.TIMEFRAME_1_MINUTE,
            open_time_ns=NOW_NS - NOW_NS % MINUTE_NS,
            open="100.00",
            high="101.5",
            low="99.25",
            close=close,
            volume="12.5",
            quote_volume="1250.75",
            trade_count=9,
            closed=closed,
        )
    )
    return event


def gap(venue: str, channel: md.Channel.ValueType, since_ns: int) -> md.MarketEvent:
    event = md.MarketEvent(venue=venue, symbol="BTC/USDT", ts_event_ns=NOW_NS, ts_recv_ns=NOW_NS + 3)
    event.notice.CopyFrom(
        md.StreamNotice(kind=md.NOTICE_KIND_GAP, channel=channel, reason="reconnect", since_ns=since_ns)
    )
    return event


def bar(venue: str, close: str, repaired: bool) -> bus.Bar:
    return bus.Bar(
        venue=venue,
        symbol="BTC/USDT",
        timeframe=common.TIMEFRAME_1_MINUTE,
        open_time_ns=NOW_NS - NOW_NS % MINUTE_NS,
        open="100",
        high="102.125",
        low="99",
        close=close,
        volume="3.5",
        quote_volume="350.5",
        trade_count=4,
        vwap="100.142857",
        repaired=repaired,
    )


def bars_data(bars: list[bus.Bar], published_ns: int = NOW_NS) -> bytes:
    return bus.Envelope(
        source="test", ts_publish_ns=published_ns, bars=bus.Bars(bars=bars)
    ).SerializeToString()


def entries(*payloads: bytes) -> list[Entry]:
    """Bus entries as the consumer hands them over."""
    return [(f"{i + 1}-0", decode({FIELD: data})) for i, data in enumerate(payloads)]


def market(*events: md.MarketEvent) -> bytes:
    return encode_market("test", events)


# ---- fixtures


@pytest.fixture(scope="module")
async def databases(database_url: str) -> AsyncIterator[Databases]:
    made = Databases(database_url, "rec")
    try:
        yield made
    finally:
        await made.drop_all()


@pytest.fixture(scope="module")
async def prepared(databases: Databases) -> str:
    """A database the recorder's start prepared: its migrations applied, its partitions made."""
    url = await databases.new()
    pool = await open_pool(url)
    try:
        await prepare(pool, RecorderConfig(database_url=url, redis_url="redis://unused"))
    finally:
        await pool.close()
    return url


@pytest.fixture
async def empty_database(databases: Databases) -> str:
    return await databases.new()


@pytest.fixture
async def fresh_database(databases: Databases, prepared: str) -> str:
    """The test's own new database, a copy of `prepared`. (test_recorder_signals.py imports `pool`
    and `recorder` with postgres_server's `fresh_database`: an empty one.)"""
    return await databases.new(copy_of=prepared)


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[Any]:
    opened = await open_pool(fresh_database)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
async def recorder(pool: Any, fresh_database: str) -> Recorder:
    options = RecorderConfig(database_url=fresh_database, redis_url="redis://unused", retention_days=3)
    return Recorder(pool, await prepare(pool, options), options)


async def write(recorder: Recorder, *payloads: bytes) -> int:
    before = recorder.rows_written
    await recorder.handle("md.test", entries(*payloads))
    return recorder.rows_written - before


# ---- migrations


async def tables(conn: Any) -> set[str]:
    records = await conn.fetch(
        "SELECT relname FROM pg_class WHERE relkind IN ('r', 'p') AND relnamespace = 'public'::regnamespace"
    )
    return {record["relname"] for record in records}


async def test_migrations_apply_once_and_again_change_nothing(empty_database: str) -> None:
    conn = await asyncpg.connect(empty_database)
    try:
        first = await migrate(conn)
        made = await tables(conn)
        again = await migrate(conn)
        assert [m.version for m in first] == [m.version for m in load_migrations()] and again == []
        assert {"trades", "book_events", "tickers", "candles", "notices", "bars", "schema_migrations"} <= made
        assert await tables(conn) == made
    finally:
        await conn.close()


async def test_recorders_migrating_together_apply_each_migration_once(empty_database: str) -> None:
    conns = [await asyncpg.connect(empty_database) for _ in range(4)]
    try:
        applied = await asyncio.gather(*(migrate(conn) for conn in conns))
        versions = await conns[0].fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert sorted(len(done) for done in applied) == [0, 0, 0, len(load_migrations())]
        assert [r["version"] for r in versions] == [m.version for m in load_migrations()]
    finally:
        for conn in conns:
            await conn.close()


async def test_a_migration_edited_after_it_was_applied_stops_the_recorder(empty_database: str) -> None:
    conn = await asyncpg.connect(empty_database)
    try:
        await migrate(conn)
        edited = [Migration(m.version, m.name, m.sql + "\n-- edited") for m in load_migrations()]
        with pytest.raises(
            FailedPrecondition, match=r"recorder: migration 001_helpers changed after it was applied"
        ):
            await migrate(conn, edited)
    finally:
        await conn.close()


# ---- every event kind, exactly


async def test_every_market_event_kind_is_recorded_with_exact_decimals(recorder: Recorder, pool: Any) -> None:
    written = await write(
        recorder,
        market(trade("v", 1), trade("v", 2, price="0.00000001", size="123456789.123456789")),
        market(
            book("v", 10, True, [("65000.5", "1.25"), ("64999", "3")], [("65001.00", "0.5")]),
            book("v", 11, False, [("65000.5", "0")], []),
        ),
        market(ticker("v", 1, last="3000.15"), ticker("v", 2)),
        market(candle("v", "100.75", closed=True, at=NOW_NS)),
        market(gap("v", md.CHANNEL_TRADES, NOW_NS - 5 * 10**9), gap("v", md.CHANNEL_BOOK, 0)),
    )
    assert written == 9
    async with pool.acquire() as conn:
        trades = await conn.fetch("SELECT * FROM trades ORDER BY trade_id")
        books = await conn.fetch("SELECT * FROM book_events ORDER BY sequence")
        tickers = await conn.fetch("SELECT * FROM tickers ORDER BY ts_event_ns")
        candles = await conn.fetch("SELECT * FROM candles")
        notices = await conn.fetch("SELECT * FROM notices ORDER BY channel")
    assert [(r["trade_id"], r["price"], r["size"], r["taker_side"]) for r in trades] == [
        ("t1", Decimal("65000.50"), Decimal("0.0120"), "buy"),
        ("t2", Decimal("0.00000001"), Decimal("123456789.123456789"), "buy"),
    ]
    assert str(trades[0]["price"]) == "65000.50", "NUMERIC keeps the wire's digits"
    assert (trades[0]["ts_event_ns"], trades[0]["ts_recv_ns"]) == (NOW_NS + 1, NOW_NS + 1001)
    assert [
        (r["sequence"], r["snapshot"], r["bid_prices"], r["bid_sizes"], r["ask_prices"]) for r in books
    ] == [
        (
            10,
            True,
            [Decimal("65000.5"), Decimal("64999")],
            [Decimal("1.25"), Decimal("3")],
            [Decimal("65001.00")],
        ),
        (11, False, [Decimal("65000.5")], [Decimal("0")], []),
    ]
    assert [r["last_price"] for r in tickers] == [Decimal("3000.15"), None]
    assert tickers[0]["best_ask"] == Decimal("3000.20") and tickers[0]["best_bid_size"] == Decimal("1.5")
    assert [
        (c["timeframe"], c["close"], c["quote_volume"], c["trade_count"], c["closed"]) for c in candles
    ] == [("1m", Decimal("100.75"), Decimal("1250.75"), 9, True)]
    assert [(n["channel"], n["kind"], n["since_ns"], n["ts_event_ns"]) for n in notices] == [
        ("book", "gap", None, NOW_NS),
        ("trades", "gap", NOW_NS - 5 * 10**9, NOW_NS),
    ]
    assert all(r["recorded_at"] is not None for r in [*trades, *books, *tickers, *candles, *notices])


async def test_the_same_entries_written_twice_are_recorded_once(recorder: Recorder, pool: Any) -> None:
    payloads = (
        market(*(trade("v", n) for n in range(50))),
        market(book("v", 1, True, [("1", "1")], [("2", "1")]), book("v", 2, False, [("1", "0")], [])),
        market(ticker("v", 1), gap("v", md.CHANNEL_BOOK, 1)),
        bars_data([bar("v", "101", repaired=False)]),
    )
    assert await write(recorder, *payloads) == 55
    assert await write(recorder, *payloads) == 0
    assert await write(recorder, payloads[0], payloads[0]) == 0
    async with pool.acquire() as conn:
        counts = [
            await conn.fetchval(f"SELECT count(*) FROM {table}")
            for table in ("trades", "book_events", "tickers", "notices", "bars")
        ]
    assert counts == [50, 2, 1, 1, 1]


async def test_a_closed_candle_replaces_the_open_one_and_never_the_reverse(
    recorder: Recorder, pool: Any
) -> None:
    await write(recorder, market(candle("v", "100.10", closed=False, at=NOW_NS)))
    await write(recorder, market(candle("v", "100.20", closed=False, at=NOW_NS + 1)))
    await write(recorder, market(candle("v", "100.30", closed=True, at=NOW_NS + 2)))
    await write(recorder, market(candle("v", "999", closed=False, at=NOW_NS + 3)))
    # Open and closed versions in one batch: the closed one wins.
    await write(
        recorder,
        market(candle("w", "5", closed=True, at=NOW_NS), candle("w", "6", closed=False, at=NOW_NS + 1)),
    )
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT venue, close, closed FROM candles ORDER BY venue")
    assert [tuple(r) for r in rows] == [("v", Decimal("100.30"), True), ("w", Decimal("5"), True)]


async def test_a_repaired_bar_replaces_the_live_one_and_never_the_reverse(
    recorder: Recorder, pool: Any
) -> None:
    await write(recorder, bars_data([bar("v", "100.5", repaired=False)], NOW_NS))
    await write(recorder, bars_data([bar("v", "100.75", repaired=True)], NOW_NS - 1))
    await write(recorder, bars_data([bar("v", "1", repaired=False)], NOW_NS + 10))
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT close, repaired, vwap, high FROM bars")
    assert [tuple(r) for r in rows] == [(Decimal("100.75"), True, Decimal("100.142857"), Decimal("102.125"))]


async def test_a_batch_written_in_many_chunks_is_still_one_transaction(recorder: Recorder, pool: Any) -> None:
    writer = Writer(pool, recorder.partitions, chunk_events=7)
    good = [market(*(trade("v", n * 5 + i) for i in range(5))) for n in range(10)]
    with pytest.raises(Corrupt, match="not a plain decimal"):
        await writer.write(entries(*good, market(trade("v", 99, price="x"))))
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM trades") == 0, "the earlier chunks rolled back"
    assert await writer.write(entries(*good, market(ticker("v", 1)), *good)) == 51
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(DISTINCT trade_id) FROM trades") == 50


# ---- COPY straight into the table, or staged: the same rows


async def _market_rows(pool: Any) -> list[tuple[Any, ...]]:
    """Every market row, recorded_at aside, in one order."""
    async with pool.acquire() as conn:
        found = []
        for table, key in (("trades", "trade_id"), ("book_events", "sequence"), ("tickers", "ts_event_ns")):
            records = await conn.fetch(f"SELECT * FROM {table} ORDER BY {key}")
            found += [(table, *(v for k, v in r.items() if k != "recorded_at")) for r in records]
    return found


def _copied_direct() -> float:
    return sum(
        REGISTRY.get_sample_value("trademesh_recorder_rows_copied_direct_total", {"table": table}) or 0.0
        for table in ("trades", "book_events", "tickers")
    )


def _staged() -> float:
    """Rows staged or copied for recording (trademesh_recorder_rows_staged_total), trades."""
    return REGISTRY.get_sample_value("trademesh_recorder_rows_staged_total", {"table": "trades"}) or 0.0


def _odd_but_valid() -> list[bytes]:
    """Values only the staged path takes (COPY escapes), beside plain ones."""
    tabbed, sideless = trade("v", 7), trade("v", 8)
    tabbed.trade.trade_id = "t\t7\\N"
    sideless.trade.taker_side = common.SIDE_UNSPECIFIED
    slashed = ticker("v\\x", 9, last="1")
    return [market(tabbed, sideless), market(slashed)]


async def test_the_copy_straight_in_stores_what_the_staged_path_stores(pool: Any, recorder: Recorder) -> None:
    payloads = (
        market(*(trade("v", n, price=f"{65000 + n}.{n}") for n in range(5)), trade("v", 6, size="0")),
        market(
            book("v", 10, True, [("65000.5", "1.25"), ("64999", "3")], [("65001.00", "0.5")]),
            book("v", 11, False, [("65000.5", "0")], []),
            book("v", 12, False, [], [("1", "NaN")]),  # a level the plain cast lets in
        ),
        market(ticker("v", 1, last="3000.15"), ticker("v", 2)),
    )
    recorded = []
    for direct in (True, False):
        before = _copied_direct()
        writer = Writer(pool, recorder.partitions, direct=direct)
        assert await writer.write(entries(*payloads)) == 11
        assert _copied_direct() - before == (11 if direct else 0)
        assert await writer.write(entries(*_odd_but_valid())) == 3
        assert _copied_direct() - before == (11 if direct else 0), "a chunk with an odd value is staged"
        recorded.append(await _market_rows(pool))
        async with pool.acquire() as conn:
            await conn.execute("TRUNCATE trades, book_events, tickers")
    assert list(map(repr, recorded[0])) == list(map(repr, recorded[1]))  # repr: NaN is not NaN
    assert ("trades", "v", "BTC/USDT", NOW_NS + 7, NOW_NS + 1007, "t\t7\\N") in [r[:6] for r in recorded[0]]


async def test_a_batch_holding_rows_already_recorded_is_written_again_staged_and_recorded_once(
    pool: Any, recorder: Recorder
) -> None:
    writer = Writer(pool, recorder.partitions, chunk_events=10)
    assert await writer.write(entries(market(*(trade("v", n) for n in range(10, 20))))) == 10
    before, staged = _copied_direct(), _staged()
    written = await writer.write(
        entries(*(market(*(trade("v", n) for n in range(m, m + 10))) for m in (0, 10, 20)))
    )
    assert written == 20
    assert _copied_direct() == before, "the COPY straight in of its first chunk was rolled back"
    assert _staged() - staged == 30, "then the whole batch was staged"
    async with pool.acquire() as conn:
        assert tuple(await conn.fetchrow("SELECT count(*), count(DISTINCT trade_id) FROM trades")) == (30, 30)


async def test_a_market_batch_of_one_chunk_is_committed_in_its_copies_and_refused_whole_when_repeated(
    fresh_database: str, recorder: Recorder
) -> None:
    """The one-chunk path (BEGIN and COMMIT sent with the COPYs): committed for every other
    connection to see; a repeat refused by a COPY after the first leaves nothing of it, the one
    connection rolled back and usable, and the repeat staged and recorded once."""
    first = (market(*(trade("v", n) for n in range(3))), market(book("v", 1, True, [("1", "1")], [])))
    repeat = (market(trade("v", 9)), market(book("v", 1, True, [("1", "1")], [])))  # its book row is there
    single = await open_pool(fresh_database, size=1)
    try:
        writer = Writer(single, recorder.partitions)
        before = _copied_direct()
        assert await writer.write(entries(*first)) == 4
        assert _copied_direct() - before == 4
        other = await asyncpg.connect(fresh_database)
        try:
            counts = [await other.fetchval(f"SELECT count(*) FROM {t}") for t in ("trades", "book_events")]
            assert counts == [3, 1]
            staged = _staged()
            assert await writer.write(entries(*repeat)) == 1  # the new trade; the book row was there
            assert _copied_direct() - before == 4 and _staged() - staged == 1
            counts = [await other.fetchval(f"SELECT count(*) FROM {t}") for t in ("trades", "book_events")]
            assert counts == [4, 1]
        finally:
            await other.close()
        async with single.acquire() as conn:
            assert not conn.is_in_transaction()
    finally:
        await single.close()


async def test_market_entries_beside_bars_in_one_batch_are_copied_straight_in(
    recorder: Recorder, pool: Any
) -> None:
    """A read of every stream brings bars beside market data: the market rows still go straight
    in (their COPY text), the bars staged, all of it once."""
    payloads = (
        market(*(trade("v", n) for n in range(4))),
        bars_data([bar("v", "101", repaired=False)]),
        market(book("v", 1, True, [("1", "1")], [("2", "1")]), ticker("v", 1)),
    )
    before = _copied_direct()
    assert await write(recorder, *payloads) == 7
    assert _copied_direct() - before == 6
    assert await write(recorder, *payloads) == 0
    async with pool.acquire() as conn:
        counts = [
            await conn.fetchval(f"SELECT count(*) FROM {t}")
            for t in ("trades", "book_events", "tickers", "bars")
        ]
    assert counts == [4, 1, 1, 1]


# ---- bad data


@pytest.mark.parametrize("price", ["abc", "NaN", "1e5", "", " 1", "1.2.3", "Infinity"])
async def test_a_price_that_is_not_a_plain_decimal_fails_the_whole_batch(
    recorder: Recorder, pool: Any, price: str
) -> None:
    with pytest.raises(Corrupt, match=r"not a plain decimal|invalid input syntax"):
        await write(recorder, market(trade("v", 1)), market(trade("v", 2, price=price)))
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM trades") == 0, "nothing of the batch is kept"
    assert await write(recorder, market(trade("v", 1))) == 1, "the connection is usable afterwards"


async def test_an_event_without_a_venue_fails_the_batch(recorder: Recorder) -> None:
    with pytest.raises(Corrupt, match="trades_venue_check"):
        await write(recorder, market(trade("", 1)))


async def test_a_book_level_that_is_not_a_number_fails_the_batch(recorder: Recorder) -> None:
    with pytest.raises(Corrupt, match="invalid input syntax for type numeric"):
        await write(recorder, market(book("v", 1, True, [("65000", "x1")], [])))


async def test_a_sequence_beyond_bigint_fails_the_batch(recorder: Recorder) -> None:
    with pytest.raises(Corrupt, match="int64"):
        await write(recorder, market(book("v", 2**63, False, [], [])))
    assert await write(recorder, market(book("v", 2**63 - 1, False, [], []))) == 1


# ---- executions


def executions_data(epoch: int, *sequences: int, fee: str = "0.0325", gap: str = "") -> bytes:
    batch = bus.Executions(venue="v", epoch=epoch, position=max(sequences, default=0), gap=bool(gap))
    batch.gap_reason = gap
    for n in sequences:
        execution = batch.executions.add(venue="v", ts_event_ns=NOW_NS + n, sequence=n)
        execution.order.CopyFrom(
            tf.Order(
                venue="v", order_id=f"o{n}", symbol="BTC/USDT", side=common.SIDE_SELL,
                type=tf.ORDER_TYPE_LIMIT, time_in_force=tf.TIME_IN_FORCE_IOC, price="65000.10",
                size="0.5", filled_size="0.5", average_fill_price="65000.10",
                status=tf.ORDER_STATUS_FILLED, created_ns=NOW_NS, updated_ns=NOW_NS + n,
            )
        )  # fmt: skip
        execution.fill.CopyFrom(
            tf.Fill(
                fill_id=f"f{n}", order_id=f"o{n}", symbol="BTC/USDT", side=common.SIDE_SELL,
                price="65000.10", size="0.5", fee=fee, fee_asset="USDT",
                liquidity=tf.LIQUIDITY_TAKER, trade_id=f"t{n}", ts_event_ns=NOW_NS + n,
            )
        )  # fmt: skip
    envelope = bus.Envelope(source="test", ts_publish_ns=NOW_NS, executions=batch)
    return envelope.SerializeToString()


async def test_executions_are_recorded_once_with_exact_decimals_and_gaps_as_notices(
    recorder: Recorder, pool: Any
) -> None:
    payloads = (executions_data(7, 1, 2), executions_data(8, gap="venue restarted"), executions_data(8, 1))
    assert await write(recorder, *payloads) == 4
    assert await write(recorder, *payloads) == 0, "an entry delivered twice is recorded once"
    async with pool.acquire() as conn:
        rows = await conn.fetch("SELECT * FROM executions ORDER BY epoch, sequence")
        notice = await conn.fetchrow("SELECT * FROM notices WHERE channel = 'executions'")
    assert [(r["epoch"], r["sequence"]) for r in rows] == [(7, 1), (7, 2), (8, 1)]
    first = rows[0]
    assert (first["side"], first["order_type"], first["time_in_force"], first["status"]) == (
        "sell", "limit", "ioc", "filled"
    )  # fmt: skip
    assert first["price"] == Decimal("65000.10") and first["fee"] == Decimal("0.0325")
    assert first["liquidity"] == "taker" and first["fill_id"] == "f1"
    assert (notice["venue"], notice["symbol"], notice["kind"], notice["reason"]) == (
        "v", "", "gap", "venue restarted"
    )  # fmt: skip


async def test_an_execution_with_a_bad_fee_fails_the_whole_batch(recorder: Recorder, pool: Any) -> None:
    with pytest.raises(Corrupt, match="not a plain decimal"):
        await write(recorder, executions_data(7, 1), executions_data(7, 2, fee="1e3"))
    async with pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM executions") == 0, "nothing of the batch is kept"
    assert await write(recorder, executions_data(7, 1)) == 1


# ---- partitions and retention


async def partitions_of(pool: Any, table: str) -> list[str]:
    async with pool.acquire() as conn:
        records = await conn.fetch(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = $1::regclass ORDER BY 1",
            table,
        )
    return [r["relname"] for r in records]


async def rows_in(pool: Any, relation: str) -> int:
    async with pool.acquire() as conn:
        count: int = await conn.fetchval(f"SELECT count(*) FROM {relation}")
    return count


async def test_start_creates_partitions_from_yesterday_to_two_days_ahead(empty_database: str) -> None:
    pool = await open_pool(empty_database)
    try:
        await prepare(pool, RecorderConfig(database_url=empty_database, redis_url="redis://unused"))
        today = day_of(time.time_ns())
        expected = [partition_name("trades", day) for day in range(today - 1, today + 3)]
        assert await partitions_of(pool, "trades") == [*expected, "trades_default"]
    finally:
        await pool.close()


async def test_a_row_of_a_day_without_partition_gets_one_and_out_of_range_times_go_to_default(
    recorder: Recorder, pool: Any
) -> None:
    old = NOW_NS - 40 * DAY_NS
    assert await write(recorder, market(trade("v", 1, at=old), trade("v", 2, at=0), trade("v", 3))) == 3
    old_partition = partition_name("trades", day_of(old + 1))
    assert old_partition in await partitions_of(pool, "trades")
    assert await rows_in(pool, old_partition) == 1
    assert await rows_in(pool, "trades_default") == 1, "1970 is outside the partitioned years"


async def test_rows_that_fell_into_the_default_partition_move_to_their_day(
    recorder: Recorder, pool: Any
) -> None:
    day = day_of(NOW_NS) - 100
    async with pool.acquire() as conn:  # as if another process had dropped the day meanwhile
        await conn.execute(
            "INSERT INTO trades (venue, symbol, ts_event_ns, ts_recv_ns, trade_id, price, size)"
            " VALUES ('v', 'BTC/USDT', $1, $1, 'early', 1, 1)",
            day * DAY_NS + 5,
        )
    assert await rows_in(pool, "trades_default") == 1
    assert await write(recorder, market(trade("v", 1, at=day * DAY_NS + 10))) == 1
    assert await rows_in(pool, "trades_default") == 0
    assert await rows_in(pool, partition_name("trades", day)) == 2


async def test_a_partition_made_by_a_batch_that_failed_is_made_again(recorder: Recorder, pool: Any) -> None:
    writer = Writer(pool, recorder.partitions, chunk_events=1)
    old = NOW_NS - 50 * DAY_NS
    with pytest.raises(Corrupt):
        await writer.write(entries(market(trade("v", 1, at=old)), market(trade("v", 2, price="x"))))
    name = partition_name("trades", day_of(old + 1))
    assert name not in await partitions_of(pool, "trades"), "rolled back with the batch"
    assert await writer.write(entries(market(trade("v", 1, at=old)))) == 1
    assert await rows_in(pool, name) == 1, "not in the default partition"


async def test_retention_drops_whole_days_older_than_configured(recorder: Recorder, pool: Any) -> None:
    now = time.time_ns()
    ages = [10, 5, 4, 3, 2, 0]
    await write(
        recorder, market(*(trade("v", age, at=now - age * DAY_NS) for age in ages), trade("v", 99, at=0))
    )
    dropped = await recorder.maintain_once(now)  # retention_days=3
    today = day_of(now)
    assert set(dropped) >= {partition_name("trades", today - age) for age in (10, 5, 4)}
    assert partition_name("trades", today - 3) not in dropped and "trades_default" not in dropped
    async with pool.acquire() as conn:
        kept = await conn.fetch("SELECT trade_id FROM trades ORDER BY trade_id")
    assert [r["trade_id"] for r in kept] == ["t0", "t2", "t3"], "days 3 and younger kept; 1970 purged"
    assert partition_name("trades", today + 2) in await partitions_of(pool, "trades")


async def test_keep_forever_drops_nothing(pool: Any, fresh_database: str) -> None:
    options = RecorderConfig(database_url=fresh_database, redis_url="redis://unused", retention_days=0)
    keeper = Recorder(pool, await prepare(pool, options), options)
    await write(keeper, market(trade("v", 1, at=NOW_NS - 400 * DAY_NS)))
    assert await keeper.maintain_once(time.time_ns()) == []
    assert await rows_in(pool, "trades") == 1
