"""`trademesh recorder` as a real process between a real Redis and a real PostgreSQL: what is
published is recorded exactly and once, through republished entries and kill -9; a poison
entry is dead-lettered while the rest is recorded; an unreachable database is one clear line."""

from __future__ import annotations

import asyncio
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import asyncpg
import pytest
import redis.asyncio as aioredis

from tests.forked_services import run_command
from tests.integration.postgres_server import database_url, fresh_database
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from tests.integration.test_recorder_store import (
    NOW_NS,
    bar,
    bars_data,
    book,
    candle,
    gap,
    market,
    ticker,
    trade,
)
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.domain.model import Timeframe
from trademesh.core.inspector.input_journal import InputJournal
from trademesh.core.platform.bus.codec import FIELD
from trademesh.core.platform.bus.names import bars_stream, dead_letter_stream, journal_stream
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)
__all__ = ["database_url", "fresh_database", "redis_url"]  # the fixtures, for pytest

SECRET = "s3cret-test-password"
WAIT_S = 30.0


class Bus:
    """A test's own corner of the session's Redis: a venue name, a consumer group, a publisher."""

    def __init__(self, client: Any, url: str) -> None:
        self.client = client
        self.url = url
        self.venue = f"rec{uuid.uuid4().hex[:8]}"
        self.group = f"recorder-{self.venue}"
        self.publisher = Publisher(client, Retention(entries_per_s=10_000, outage_minutes=1))

    def stream(self, channel: str) -> str:
        return f"md.{{{self.venue}}}.{channel}"

    async def publish(self, stream: str, *payloads: bytes) -> list[bytes]:
        for data in payloads:
            self.publisher.add(stream, data)
        return [entry_id for entry_id in await self.publisher.flush() if entry_id is not None]  # plain adds

    async def dead_letters(self, channel: str) -> list[dict[bytes, bytes]]:
        return [fields for _, fields in await self.client.xrange(dead_letter_stream(self.stream(channel)))]

    async def pending(self, stream: str) -> int:
        return int((await self.client.xpending(stream, self.group))["pending"])

    async def clean(self) -> None:
        keys = [key async for key in self.client.scan_iter(match=f"*{self.venue}*")]
        if keys:  # the venue's streams, its bars' too (bars.{<venue>}.<tf>)
            await self.client.delete(*keys)


@pytest.fixture
async def bus(redis_url: str) -> AsyncIterator[Bus]:
    client = aioredis.Redis.from_url(redis_url)
    made = Bus(client, redis_url)
    try:
        yield made
    finally:
        await made.clean()
        await client.aclose()


def with_password(url: str) -> str:
    """The URL with a password the local or embedded server (trust auth) ignores, so the test can
    check it never shows; a configured DATABASE_URL keeps its own."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is not None or "@" not in parts.netloc:
        return url
    user, _, host = parts.netloc.rpartition("@")
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{SECRET}@{host}"))


Start = Callable[..., ServiceProcess]


@pytest.fixture
async def recorders(fresh_database: str, bus: Bus, tmp_path: Path) -> AsyncIterator[Start]:
    """Starts `trademesh recorder` processes for the test's bus and database; stops them after."""
    started: list[tuple[ServiceProcess, IO[str]]] = []

    def start(*extra: str, consumer: str = "c1") -> ServiceProcess:
        log = (tmp_path / f"recorder-{len(started)}.log").open("w")
        args = ["recorder", "--port", "0", "--metrics-port", "-1", "--redis-url", bus.url]
        args += ["--database-url", with_password(fresh_database), "--group", bus.group]
        args += ["--consumer", consumer, "--stream-pattern", f"md.{{{bus.venue}}}.*", *extra]
        process = start_service(args, stderr=log, timeout_s=60)
        started.append((process, log))
        return process

    yield start
    for process, log in started:
        await asyncio.to_thread(process.terminate)
        log.close()


@pytest.fixture
async def db(fresh_database: str) -> AsyncIterator[Any]:
    conn = await asyncpg.connect(fresh_database)
    try:
        yield conn
    finally:
        await conn.close()


async def count_when(db: Any, sql: str, expected: int) -> int | None:
    """For `until`: the count once it is `expected`."""
    count: int = await db.fetchval(sql)
    return count if count == expected else None


async def test_every_published_event_is_recorded_exactly_and_once(
    recorders: Start, bus: Bus, db: Any, tmp_path: Path
) -> None:
    trades = [trade(bus.venue, n, price=f"{65000 + n}.{n % 100:02d}", size=f"0.{n:04d}") for n in range(1000)]
    trade_entries = [market(*trades[i : i + 50]) for i in range(0, 1000, 50)]
    await bus.publish(bus.stream("trades"), *trade_entries)
    await bus.publish(
        bus.stream("book"),
        market(book(bus.venue, 1, True, [("64999.99", "1.5"), ("64999.5", "2")], [("65000.01", "0.125")])),
        market(book(bus.venue, 2, False, [("64999.99", "0")], [("65000.02", "3.000")])),
    )
    await bus.publish(bus.stream("tickers"), market(ticker(bus.venue, 1, last="3000.15")))
    await bus.publish(
        bus.stream("candles"),
        market(candle(bus.venue, "100.10", closed=False, at=NOW_NS)),
        market(candle(bus.venue, "100.20", closed=True, at=NOW_NS + 1)),
    )
    # After a reconnect ingest writes a GAP notice into each of the venue's streams.
    for channel, value in (("trades", md.CHANNEL_TRADES), ("book", md.CHANNEL_BOOK)):
        await bus.publish(bus.stream(channel), market(gap(bus.venue, value, NOW_NS - 10**9)))
    bars_1m = bars_stream(Timeframe.M1, bus.stream("trades"))
    await bus.publish(
        bars_1m, bars_data([bar(bus.venue, "101.5", False)]), bars_data([bar(bus.venue, "101.25", True)])
    )
    recorder = recorders("--stream-pattern", bars_1m)

    await until(lambda: count_when(db, "SELECT count(*) FROM trades", 1000), WAIT_S, what="1000 trades")
    await until(lambda: count_when(db, "SELECT count(*) FROM notices", 2), WAIT_S, what="2 notices")
    bar_sql = f"SELECT count(*) FROM bars WHERE venue = '{bus.venue}' AND repaired"
    await until(lambda: count_when(db, bar_sql, 1), WAIT_S, what="the repaired bar")
    recorded = {r["trade_id"]: (r["price"], r["size"]) for r in await db.fetch("SELECT * FROM trades")}
    assert recorded == {e.trade.trade_id: (Decimal(e.trade.price), Decimal(e.trade.size)) for e in trades}
    books = await db.fetch("SELECT sequence, bid_prices, bid_sizes, ask_sizes FROM book_events ORDER BY 1")
    assert [tuple(r) for r in books] == [
        (1, [Decimal("64999.99"), Decimal("64999.5")], [Decimal("1.5"), Decimal("2")], [Decimal("0.125")]),
        (2, [Decimal("64999.99")], [Decimal("0")], [Decimal("3.000")]),
    ]
    assert await db.fetchval("SELECT last_price FROM tickers") == Decimal("3000.15")
    assert tuple(await db.fetchrow("SELECT close, closed FROM candles")) == (Decimal("100.20"), True)
    assert await db.fetchval("SELECT close FROM bars WHERE venue = $1", bus.venue) == Decimal("101.25")

    # A publisher retry writes entries again: nothing new is recorded from them.
    await bus.publish(bus.stream("trades"), *trade_entries[:3], market(trade(bus.venue, 5000)))
    await until(lambda: count_when(db, "SELECT count(*) FROM trades", 1001), WAIT_S, what="trade 5000")
    await until(lambda: count_when_pending(bus, bus.stream("trades"), 0), WAIT_S, what="all acknowledged")
    assert await db.fetchval("SELECT count(DISTINCT trade_id) FROM trades") == 1001
    assert recorder.process.poll() is None
    assert SECRET not in (tmp_path / "recorder-0.log").read_text()


async def count_when_pending(bus: Bus, stream: str, expected: int) -> int | None:
    pending = await bus.pending(stream)
    return pending if pending == expected else None


@pytest.mark.slow  # a long fault test: not in the fast tier
async def test_kill_9_mid_stream_then_restart_records_every_event_once(
    recorders: Start, bus: Bus, db: Any
) -> None:
    total, per_entry = 40_000, 50
    await bus.publish(
        bus.stream("trades"),
        *(market(*(trade(bus.venue, n + i) for i in range(per_entry))) for n in range(0, total, per_entry)),
    )
    first = recorders("--batch", "2")
    await until(lambda: first_rows(db), WAIT_S, interval_s=0.01, what="the first rows")
    first.process.kill()
    assert first.process.wait(10) == -9
    at_kill: int = await db.fetchval("SELECT count(*) FROM trades")
    assert 0 < at_kill < total, "killed mid-stream"

    recorders("--batch", "50")  # the same consumer: it reads its own pending entries first
    await until(lambda: count_when(db, "SELECT count(*) FROM trades", total), WAIT_S, what="every trade")
    ids = {r["trade_id"] for r in await db.fetch("SELECT trade_id FROM trades")}
    assert ids == {f"t{n}" for n in range(total)}
    await until(lambda: count_when_pending(bus, bus.stream("trades"), 0), WAIT_S, what="all acknowledged")


async def first_rows(db: Any) -> int | None:
    count: int = await db.fetchval("SELECT count(*) FROM trades")
    return count if count > 0 else None


async def test_a_poison_entry_is_dead_lettered_while_the_rest_is_recorded(
    recorders: Start, bus: Bus, db: Any
) -> None:
    stream = bus.stream("trades")
    good = [market(*(trade(bus.venue, n * 10 + i) for i in range(10))) for n in range(10)]
    no_payload = md.MarketEvent(venue=bus.venue, symbol="BTC/USDT", ts_event_ns=NOW_NS)
    await bus.publish(stream, *good[:5], market(trade(bus.venue, 900, price="12,5")), market(no_payload))
    await bus.client.xadd(stream, {FIELD: b"\x00 not a protobuf"})
    await bus.publish(stream, *good[5:])
    recorder = recorders("--claim-idle-ms", "300", "--max-deliveries", "2")

    await until(lambda: count_when(db, "SELECT count(*) FROM trades", 100), WAIT_S, what="the good trades")
    dead = await until(lambda: dead_letters_when(bus, 3), WAIT_S, what="3 dead letters")
    reasons = sorted(fields[b"reason"].decode() for fields in dead)
    assert any("not a plain decimal: 12,5" in r for r in reasons), reasons
    assert any("no known payload" in r for r in reasons), reasons
    assert any("not an Envelope" in r for r in reasons), reasons
    assert await db.fetchval("SELECT count(*) FROM trades WHERE trade_id = 't900'") == 0
    await until(lambda: count_when_pending(bus, stream, 0), WAIT_S, what="nothing pending")
    assert recorder.process.poll() is None, "the recorder kept running"


async def dead_letters_when(bus: Bus, expected: int) -> list[dict[bytes, bytes]] | None:
    dead = await bus.dead_letters("trades")
    return dead if len(dead) >= expected else None


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://trader:{secret}@127.0.0.1:1/market", "postgresql://trader:***@127.0.0.1:1/market"),
        ("{server}", "does not exist"),
    ],
    ids=["unreachable", "no-such-database"],
)
def test_a_database_it_cannot_reach_ends_the_recorder_with_one_line(
    url: str, shown: str, database_url: str, redis_url: str
) -> None:
    if url == "{server}":
        parts = urllib.parse.urlsplit(with_password(database_url))
        url = urllib.parse.urlunsplit(parts._replace(path="/rec_no_such_database"))
    url = url.format(secret=SECRET)
    result = run_command(
        ["recorder", "--port", "0", "--metrics-port", "-1", "--database-url", url, "--redis-url", redis_url],
        timeout_s=60,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode != 0 and result.stdout == ""
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("trademesh: cannot connect to PostgreSQL at ") and shown in lines[0]
    assert SECRET not in result.stderr


async def test_lost_database_connections_hold_the_batch_and_lose_nothing(
    recorders: Start, bus: Bus, db: Any, tmp_path: Path
) -> None:
    total, per_entry = 20_000, 50
    entries = (
        market(*(trade(bus.venue, n + i) for i in range(per_entry))) for n in range(0, total, per_entry)
    )
    await bus.publish(bus.stream("trades"), *entries)
    recorder = recorders("--batch", "4")
    terminated, deadline = 0, time.monotonic() + WAIT_S
    while terminated < 4 and time.monotonic() < deadline:  # then the database is back for good
        terminated += await db.fetchval(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = 'trademesh-recorder') AS killed"
        )
        await asyncio.sleep(0.03)
    await until(lambda: count_when(db, "SELECT count(*) FROM trades", total), WAIT_S, what="every trade")
    assert terminated > 0
    assert await bus.dead_letters("trades") == [], "a lost connection never dead-letters an entry"
    assert recorder.process.poll() is None
    assert "retrying" in (tmp_path / "recorder-0.log").read_text()


def journal_entries(now_ns: int) -> list[jr.JournalEntry]:
    """An inspector's first inputs: its start, an intent, its entry's fill and update, a mark."""
    intent = am.Intent(intent_id="i1", venue="sim", symbol="BTC/USDT", size="0.01", ts_signal_ns=now_ns)
    fill = tf.Fill(fill_id="f1", client_order_id="e-i1", symbol="BTC/USDT", price="65000.5", size="0.01")
    update = tf.Order(venue="sim", client_order_id="e-i1", status=tf.ORDER_STATUS_FILLED, filled_size="0.01")
    return [
        jr.JournalEntry(now_ns=now_ns, start=jr.JournalStart(starting_equity="100000", instance="main")),
        jr.JournalEntry(now_ns=now_ns + 1, intent=jr.JournalIntent(intent=intent, last="65000")),
        jr.JournalEntry(now_ns=now_ns + 2, fill=jr.JournalFill(venue="sim", fill=fill)),
        jr.JournalEntry(now_ns=now_ns + 2, order_update=update),
        jr.JournalEntry(
            now_ns=now_ns + 3, mark=jr.JournalMark(venue="sim", symbol="BTC/USDT", price="65001")
        ),
    ]


async def test_an_inspectors_journal_is_recorded_whole_in_its_order_and_a_bad_entry_dead_lettered(
    recorders: Start, bus: Bus, db: Any
) -> None:
    """What the inspector journals (trademesh.core.inspector.input_journal, the writer it uses) the recorder
    keeps whole, in the journal's order, each naming its kind, venue and order; an entry that is not
    a JournalEntry goes to the dead letters while the rest is recorded."""
    stream = journal_stream(f"insp-{bus.venue}")
    journal = InputJournal(bus.client, stream)
    entries = journal_entries(time.time_ns())
    for entry in entries[:3]:
        await journal.append(entry)
    await bus.client.xadd(stream, {FIELD: b"\x00 not a protobuf"})
    for entry in entries[3:]:
        await journal.append(entry)
    recorder = recorders("--stream-pattern", stream, "--claim-idle-ms", "300", "--max-deliveries", "2")

    sql = "SELECT count(*) FROM inspector_journal"
    await until(lambda: count_when(db, sql, len(entries)), WAIT_S, what="the journal")
    rows = await db.fetch("SELECT * FROM inspector_journal ORDER BY entry_ms, entry_seq")
    assert [(r["instance"], r["input"], r["venue"], r["client_order_id"]) for r in rows] == [
        (f"insp-{bus.venue}", "start", "", ""),
        (f"insp-{bus.venue}", "intent", "sim", ""),
        (f"insp-{bus.venue}", "fill", "sim", "e-i1"),
        (f"insp-{bus.venue}", "order_update", "sim", "e-i1"),
        (f"insp-{bus.venue}", "mark", "sim", ""),
    ]
    assert [jr.JournalEntry.FromString(r["entry"]) for r in rows] == entries
    assert [r["now_ns"] for r in rows] == [e.now_ns for e in entries]
    dead = await bus.client.xrange(dead_letter_stream(stream))
    reasons = [fields[b"reason"].decode() for _, fields in dead]
    assert len(reasons) == 1 and "journal entry is not a JournalEntry" in reasons[0], reasons
    await until(lambda: count_when_pending(bus, stream, 0), WAIT_S, what="nothing pending")
    assert recorder.process.poll() is None
