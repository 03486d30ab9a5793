"""The detector's signals and position requests, published on the real `signals` and
`position_requests` streams, stored by a real `trademesh recorder` process: exact values, rules
as jsonb, each once however often published, queryable by strategy and time, a corrupt entry
dead-lettered while the rest is stored.

The two streams are shared by every test on the session's Redis: a test writes its own venue
and strategy into what it publishes, reads only those rows, and removes its entries, dead
letters and consumer group afterwards.
"""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any, Protocol

import pytest
from redis.exceptions import ResponseError

from tests.integration.postgres_server import database_url, fresh_database
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from tests.integration.test_recorder_process import WAIT_S, Bus, Start, bus, count_when, db, recorders
from tests.integration.test_recorder_store import NOW_NS, partitions_of, pool, recorder, rows_in, write
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.bus.v1 import bus_pb2 as buspb
from trademesh.core.platform.bus.names import DECISIONS, POSITION_REQUESTS, SIGNALS, dead_letter_stream
from trademesh.core.recorder.app import Recorder
from trademesh.core.recorder.partitions import DAY_NS, day_of, partition_name
from trademesh.signal.v1 import signal_pb2 as sig

pytestmark = pytest.mark.integration
# The fixtures, for pytest.
__all__ = ["bus", "database_url", "db", "fresh_database", "pool", "recorder", "recorders", "redis_url"]

HOUR_NS = 3600 * 10**9
SHARED = ("signals", "position_requests")  # the tables (their streams: SIGNALS, POSITION_REQUESTS)
# What a test may publish (and have removed after it).
PUBLISHED = (SIGNALS, POSITION_REQUESTS, DECISIONS)


class Origin(Protocol):
    """Whose signals and requests: a venue and a strategy."""

    venue: str
    strategy: str


class Trading:
    """What a test publishes on the shared streams, so that exactly that is removed after."""

    def __init__(self, bus: Bus) -> None:
        self.bus = bus
        self.venue = bus.venue
        self.strategy = f"strategy-{uuid.uuid4().hex[:8]}"
        self.ids: dict[str, list[bytes]] = {stream: [] for stream in PUBLISHED}

    async def publish(self, stream: str, *payloads: bytes) -> list[bytes]:
        ids = await self.bus.publish(stream, *payloads)
        self.ids[stream] += ids
        return ids

    async def dead_letters(self, stream: str) -> list[dict[bytes, bytes]]:
        """This test's group's dead letters of what this test published on `stream` (the group
        reads the shared stream whole: another test's entries may meet it there)."""
        records = await self.bus.client.xrange(dead_letter_stream(stream))
        mine = set(self.ids[stream])
        return [
            fields
            for _, fields in records
            if fields[b"group"] == self.bus.group.encode() and fields[b"id"] in mine
        ]

    async def clean(self) -> None:
        client = self.bus.client
        for stream in PUBLISHED:
            if self.ids[stream]:
                await client.xdel(stream, *self.ids[stream])
            dead = await client.xrange(dead_letter_stream(stream))
            mine = [entry_id for entry_id, fields in dead if fields[b"group"] == self.bus.group.encode()]
            if mine:
                await client.xdel(dead_letter_stream(stream), *mine)
            with contextlib.suppress(ResponseError):  # no such stream: nothing to remove
                await client.xgroup_destroy(stream, self.bus.group)


@pytest.fixture
async def trading(bus: Bus) -> AsyncIterator[Trading]:
    """Asked for before `recorders`, so it is cleaned after they stopped: a running recorder
    would make its group again."""
    made = Trading(bus)
    try:
        yield made
    finally:
        await made.clean()


def record_signals_and_requests(recorders: Start) -> None:
    """A recorder of the two shared streams (by name, as by default) and none of the others."""
    recorders("--stream", SIGNALS, "--stream", POSITION_REQUESTS, "--claim-idle-ms", "300")


def rule(name: str, weight: str, value: str, fired: bool) -> sig.RuleAttribution:
    return sig.RuleAttribution(name=name, weight=weight, value=value, fired=fired)


def signal(trading: Origin, n: int, at: int = NOW_NS, **fields: Any) -> sig.Signal:
    values: dict[str, Any] = {
        "signal_id": f"{trading.venue}-s{n}",
        "venue": trading.venue,
        "symbol": "BTC/USDT",
        "direction": sig.DIRECTION_LONG,
        "conviction": "0.7500",
        "score": "1.50",
        "threshold": "1.2",
        "strategy_id": trading.strategy,
        "patch_version": 3,
        "rules": [rule("rsi_14 < 30", "1.0", "28.41", True), rule("volume spike", "0.50", "", False)],
        "ts_event_ns": at - 1000,
        "ts_signal_ns": at,
    }
    values.update(fields)
    return sig.Signal(**values)


def request(
    trading: Origin, n: int, action: sig.PositionAction.ValueType, **fields: Any
) -> sig.PositionRequest:
    values: dict[str, Any] = {
        "request_id": f"{trading.venue}-r{n}",
        "venue": trading.venue,
        "symbol": "ETH/USDT",
        "action": action,
        "strategy_id": trading.strategy,
        "patch_version": 4,
        "ts_event_ns": NOW_NS + n - 500,
        "ts_request_ns": NOW_NS + n,
    }
    values.update(fields)
    return sig.PositionRequest(**values)


def signals_data(*signals: sig.Signal) -> bytes:
    envelope = buspb.Envelope(source="detector", ts_publish_ns=NOW_NS, signals=buspb.Signals(signals=signals))
    return envelope.SerializeToString()


def requests_data(*requests: sig.PositionRequest) -> bytes:
    envelope = buspb.Envelope(source="detector", ts_publish_ns=NOW_NS)
    envelope.position_requests.requests.extend(requests)
    return envelope.SerializeToString()


DIRECTIONS = {sig.DIRECTION_LONG: "long", sig.DIRECTION_SHORT: "short", sig.DIRECTION_FLAT: "flat"}
ACTIONS = {
    sig.POSITION_ACTION_OPEN: "open",
    sig.POSITION_ACTION_CLOSE: "close",
    sig.POSITION_ACTION_REDUCE: "reduce",
    sig.POSITION_ACTION_FLIP: "flip",
}


def stored_signal(message: sig.Signal) -> dict[str, Any]:
    """The row a signal should become (decimals as the wire's exact text)."""
    return {
        "signal_id": message.signal_id,
        "venue": message.venue,
        "symbol": message.symbol,
        "direction": DIRECTIONS[message.direction],
        "conviction": message.conviction,
        "score": message.score,
        "threshold": message.threshold,
        "strategy_id": message.strategy_id,
        "patch_version": message.patch_version,
        "rules": [
            {"name": r.name, "weight": r.weight, "value": r.value, "fired": r.fired} for r in message.rules
        ],
        "ts_event_ns": message.ts_event_ns,
        "ts_signal_ns": message.ts_signal_ns,
    }


def signal_of_row(row: Any) -> dict[str, Any]:
    found = dict(row)
    for column in ("conviction", "score", "threshold"):
        assert isinstance(found[column], Decimal)
        found[column] = format(found[column], "f")  # NUMERIC keeps the wire's digits: "0.7500" stays so
    found["rules"] = json.loads(found["rules"])
    return found


async def test_signals_and_position_requests_are_recorded_exactly_and_once(
    trading: Trading, recorders: Start, db: Any
) -> None:
    signals = [
        signal(trading, 1),
        signal(trading, 2, direction=sig.DIRECTION_SHORT, conviction="1", score="3.000", rules=[]),
        signal(
            trading,
            3,
            direction=sig.DIRECTION_FLAT,
            conviction="0.333333333333333333333333",
            score="-0.000000001",
            threshold="123456789012345678.987654321",
            rules=[rule('name "quoted" ünïcode', "0.1", "true", True)],
            patch_version=2**63 - 1,
        ),
    ]
    requests = [
        request(trading, 1, sig.POSITION_ACTION_OPEN, direction=sig.DIRECTION_LONG),
        request(trading, 2, sig.POSITION_ACTION_REDUCE, fraction="0.250"),
        request(trading, 3, sig.POSITION_ACTION_CLOSE),
        request(trading, 4, sig.POSITION_ACTION_FLIP, direction=sig.DIRECTION_SHORT),
    ]
    await trading.publish(SIGNALS, signals_data(*signals[:2]), signals_data(signals[2]))
    await trading.publish(POSITION_REQUESTS, requests_data(*requests))
    record_signals_and_requests(recorders)

    mine = f"venue = '{trading.venue}'"
    await until(
        lambda: count_when(db, f"SELECT count(*) FROM signals WHERE {mine}", 3), WAIT_S, what="3 signals"
    )
    await until(
        lambda: count_when(db, f"SELECT count(*) FROM position_requests WHERE {mine}", 4),
        WAIT_S,
        what="4 requests",
    )
    rows = await db.fetch(f"SELECT * FROM signals WHERE {mine} ORDER BY signal_id")
    assert [signal_of_row(r) | {"recorded_at": None} for r in rows] == [
        stored_signal(s) | {"recorded_at": None} for s in signals
    ]
    assert (
        await db.fetchval(f"SELECT rules->0->>'weight' FROM signals WHERE {mine} AND signal_id LIKE '%s1'")
        == "1.0"
    )
    stored = await db.fetch(
        "SELECT request_id, action, direction, fraction::text, strategy_id, patch_version, ts_event_ns,"
        f" ts_request_ns FROM position_requests WHERE {mine} ORDER BY request_id"
    )
    assert [tuple(r) for r in stored] == [
        (
            r.request_id,
            ACTIONS[r.action],
            DIRECTIONS.get(r.direction),
            r.fraction or None,
            trading.strategy,
            4,
            r.ts_event_ns,
            r.ts_request_ns,
        )
        for r in requests
    ]

    # Published again (a detector retry), plus one new of each: only the new ones are added.
    await trading.publish(SIGNALS, signals_data(*signals, signal(trading, 4)))
    await trading.publish(
        POSITION_REQUESTS, requests_data(requests[0], request(trading, 5, sig.POSITION_ACTION_CLOSE))
    )
    await until(
        lambda: count_when(db, f"SELECT count(*) FROM signals WHERE {mine}", 4), WAIT_S, what="signal 4"
    )
    await until(
        lambda: count_when(db, f"SELECT count(*) FROM position_requests WHERE {mine}", 5),
        WAIT_S,
        what="request 5",
    )
    await until(lambda: nothing_pending(trading), WAIT_S, what="all acknowledged")
    assert await db.fetchval(f"SELECT count(DISTINCT signal_id) FROM signals WHERE {mine}") == 4
    assert await db.fetchval(f"SELECT count(*) FROM signals WHERE {mine}") == 4


async def nothing_pending(trading: Trading) -> bool | None:
    for stream in (SIGNALS, POSITION_REQUESTS):
        if int((await trading.bus.client.xpending(stream, trading.bus.group))["pending"]) != 0:
            return None
    return True


STRATEGY_HOUR = """
SELECT signal_id, direction, conviction, rules FROM signals
WHERE strategy_id = $1 AND ts_signal_ns >= $2 AND ts_signal_ns < $3
ORDER BY ts_signal_ns
"""


async def test_signals_of_a_strategy_in_a_time_range_are_found_through_its_index(
    trading: Trading, recorders: Start, db: Any
) -> None:
    other = f"{trading.strategy}-other"
    published = [
        signal(trading, 1, at=NOW_NS - 2 * HOUR_NS),  # before the hour
        signal(trading, 2, at=NOW_NS - HOUR_NS + 1),
        signal(trading, 3, at=NOW_NS - 10**9, direction=sig.DIRECTION_SHORT),
        signal(trading, 4, at=NOW_NS - 5 * 10**9, strategy_id=other),  # another strategy
        signal(trading, 5, at=NOW_NS + 10**9),  # after the range
    ]
    await trading.publish(SIGNALS, signals_data(*published))
    record_signals_and_requests(recorders)
    mine = f"SELECT count(*) FROM signals WHERE venue = '{trading.venue}'"
    await until(lambda: count_when(db, mine, 5), WAIT_S, what="5 signals")

    found = await db.fetch(STRATEGY_HOUR, trading.strategy, NOW_NS - HOUR_NS, NOW_NS)
    assert [r["signal_id"] for r in found] == [f"{trading.venue}-s2", f"{trading.venue}-s3"]
    assert [r["direction"] for r in found] == ["long", "short"]
    assert json.loads(found[0]["rules"])[0] == {
        "name": "rsi_14 < 30",
        "weight": "1.0",
        "value": "28.41",
        "fired": True,
    }

    async with db.transaction():  # a few rows make a scan the cheaper plan: ask for the index
        await db.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(
            r[0]
            for r in await db.fetch(f"EXPLAIN {STRATEGY_HOUR}", trading.strategy, NOW_NS - HOUR_NS, NOW_NS)
        )
    assert "strategy_id_ts_signal_ns_idx" in plan or "signals_strategy_time" in plan, plan
    assert "Seq Scan" not in plan, plan


async def test_a_signal_with_an_unknown_direction_is_dead_lettered_while_the_rest_is_stored(
    trading: Trading, recorders: Start, db: Any
) -> None:
    good = [signals_data(signal(trading, n)) for n in range(6)]
    bad = signals_data(signal(trading, 99, direction=7))
    bad_request = requests_data(request(trading, 98, sig.POSITION_ACTION_OPEN, direction=42))
    ids = await trading.publish(SIGNALS, *good[:3], bad, *good[3:])
    request_ids = await trading.publish(
        POSITION_REQUESTS, requests_data(request(trading, 1, sig.POSITION_ACTION_CLOSE)), bad_request
    )
    recorders(
        "--stream", SIGNALS, "--stream", POSITION_REQUESTS, "--claim-idle-ms", "300", "--max-deliveries", "2"
    )

    mine = f"venue = '{trading.venue}'"
    await until(
        lambda: count_when(db, f"SELECT count(*) FROM signals WHERE {mine}", 6), WAIT_S, what="6 signals"
    )
    dead = await until(lambda: dead_letters_when(trading, SIGNALS), WAIT_S, what="the signal's dead letter")
    assert [fields[b"id"] for fields in dead] == [ids[3]]
    assert "signal direction 7" in dead[0][b"reason"].decode()
    dead_requests = await until(
        lambda: dead_letters_when(trading, POSITION_REQUESTS), WAIT_S, what="dead request"
    )
    assert [fields[b"id"] for fields in dead_requests] == [request_ids[1]]
    assert "position request direction 42" in dead_requests[0][b"reason"].decode()
    assert await db.fetchval(f"SELECT count(*) FROM signals WHERE {mine} AND signal_id LIKE '%s99'") == 0
    assert await db.fetchval(f"SELECT array_agg(request_id) FROM position_requests WHERE {mine}") == [
        f"{trading.venue}-r1"
    ]
    await until(lambda: nothing_pending(trading), WAIT_S, what="nothing pending")


async def dead_letters_when(trading: Trading, stream: str) -> list[dict[bytes, bytes]] | None:
    dead = await trading.dead_letters(stream)
    return dead if dead else None


async def test_signal_and_request_days_are_partitioned_ahead_on_demand_and_dropped_by_retention(
    recorder: Recorder, pool: Any
) -> None:
    now = time.time_ns()
    today = day_of(now)
    for table in SHARED:
        ahead = [partition_name(table, day) for day in range(today - 1, today + 3)]
        assert await partitions_of(pool, table) == [*ahead, f"{table}_default"]

    class Old:
        venue, strategy = "sim", "s"

    ages = (10, 5, 3, 0)
    old = [signal(Old(), age, at=now - age * DAY_NS) for age in ages]
    requests = [
        request(Old(), age, sig.POSITION_ACTION_CLOSE, ts_request_ns=now - age * DAY_NS) for age in ages
    ]
    assert await write(recorder, signals_data(*old), requests_data(*requests)) == 8
    for table in SHARED:
        assert await rows_in(pool, partition_name(table, today - 10)) == 1, "the old day got its partition"
        assert await rows_in(pool, f"{table}_default") == 0

    dropped = await recorder.maintain_once(now)  # retention_days=3
    for table in SHARED:
        assert {partition_name(table, today - age) for age in (10, 5)} <= set(dropped)
        assert partition_name(table, today - 3) not in dropped
        assert await rows_in(pool, table) == 2, "days 3 and younger kept"


async def test_text_postgresql_cannot_store_is_recorded_as_replacement_characters_not_dead_lettered(
    trading: Trading, recorders: Start, db: Any
) -> None:
    """A NUL in a published signal or decision (issue 37, item 24): the audit keeps the event,
    its text with U+FFFD where PostgreSQL cannot store the character, the decision's raw body
    with the NUL as published."""
    odd = signal(trading, 1, rules=[rule("rsi\x00 < 30", "1.0", "2\x008", True)])
    decision = am.Decision(
        decision_id=f"{trading.venue}-d1", signal_id=odd.signal_id, venue=trading.venue, symbol="BTC/USDT",
        strategy_id=f"{trading.strategy}\x00", outcome=am.OUTCOME_BLOCKED, block_reason="spread\x00 wide",
        ts_decision_ns=NOW_NS,
    )  # fmt: skip
    envelope = buspb.Envelope(
        source="advisor", ts_publish_ns=NOW_NS, decisions=buspb.Decisions(decisions=[decision])
    )
    await trading.publish(SIGNALS, signals_data(odd))
    await trading.publish(DECISIONS, envelope.SerializeToString())
    recorders("--stream", SIGNALS, "--stream", DECISIONS, "--claim-idle-ms", "300", "--max-deliveries", "2")

    mine = f"venue = '{trading.venue}'"
    for table in ("signals", "decisions"):
        await until(
            lambda table=table: count_when(db, f"SELECT count(*) FROM {table} WHERE {mine}", 1),  # type: ignore[misc]
            WAIT_S,
            what=f"the {table} row",
        )
    rules = json.loads(await db.fetchval(f"SELECT rules FROM signals WHERE {mine}"))
    assert (rules[0]["name"], rules[0]["value"]) == ("rsi\ufffd < 30", "2\ufffd8")
    row = await db.fetchrow(f"SELECT strategy_id, block_reason, decision FROM decisions WHERE {mine}")
    assert (row["strategy_id"], row["block_reason"]) == (f"{trading.strategy}\ufffd", "spread\ufffd wide")
    assert am.Decision.FromString(row["decision"]) == decision  # the raw body: as published
    assert not await trading.dead_letters(SIGNALS) and not await trading.dead_letters(DECISIONS)
