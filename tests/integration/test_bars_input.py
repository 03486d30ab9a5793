"""What a real `trademesh bars` process does with imperfect input: copies, reordering, a late
trade, entries that are not trades at all."""

from __future__ import annotations

import asyncio
import random
import time
from pathlib import Path
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from core.bars.aggregator import Aggregator
from core.bars.app import BarsConfig
from core.bars.checkpoint import CheckpointStore
from core.bars.watermark import WatermarkRules
from core.foundations.bus.codec import FIELD, encode_bars, encode_market
from core.foundations.bus.consumer import GroupConsumer
from core.foundations.bus.names import dead_letter_stream
from core.foundations.bus.publisher import Retention
from core.foundations.errors import Unavailable
from tests.integration.bars_support import (
    LATENESS_NS,
    BusTape,
    Trade,
    bars_positions,
    hold,
    metric_equals,
    scope,
    start_bars,
    synthetic,
    wait_closed_bars,
)
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.bus.v1 import bus_pb2 as pb

pytestmark = pytest.mark.integration
__all__ = ["redis_url", "scope"]  # fixtures, for pytest

S = 1_000_000_000
SYMBOLS = ["AAA/USDT", "BBB/USDT"]


def an_hour_ago() -> int:
    return (time.time_ns() - 3600 * S) // S * S


def arrivals(trades: list[Trade], copies: list[Trade], rng: random.Random) -> list[Trade]:
    """Trades and copies in an arrival order where each comes less than the lateness after its time."""
    jitter = LATENESS_NS * 8 // 10
    return sorted(trades + copies, key=lambda t: t.ts + rng.randrange(jitter))


async def test_copies_and_reordering_change_nothing_and_a_late_trade_is_counted_not_merged(
    scope: tuple[aioredis.Redis, str], redis_url: str, tmp_path: Path
) -> None:
    redis, name = scope
    after = await bars_positions(redis, name)
    bars = start_bars(tmp_path, redis_url, f"md.{{{name}}}.trades")
    tape = BusTape(redis, name)
    rng = random.Random(3)
    trades = synthetic(SYMBOLS, an_hour_ago(), 800, S // 5, seed=3)
    copies = rng.sample(trades, 150)
    order = arrivals(trades, copies, rng)
    resent = 0
    try:
        index = 0
        while index < len(order):
            size = rng.randrange(1, 30)
            entry = order[index : index + size]
            index += size
            await tape.publish(entry)
            if len(entry) == 1 and rng.random() < 0.5:
                await tape.publish(entry)  # the publisher wrote it twice (at least once delivery)
                resent += 1
        last = max(t.ts for t in trades)
        late = Trade(SYMBOLS[0], last - 5 * S, "late-1", "1", "1")
        await tape.publish([late, *(Trade(s, last + S, f"next-{s}", "1", "1") for s in SYMBOLS)])
        on_time = [t for t in tape.published if t is not late]
        live, expected = await wait_closed_bars(redis, tape, after, trades=on_time)
        assert all(len(versions) == 1 for versions in live.values())
        assert {key: versions[0] for key, versions in live.items()} == expected
        await metric_equals(bars, "trademesh_bars_duplicate_trades_total", name, len(copies) + resent)
        await metric_equals(bars, "trademesh_bars_late_trades_total", name, 1)
        await metric_equals(bars, "trademesh_bars_trades_total", name, len(trades) + 2)
    finally:
        bars.stop()


async def test_entries_that_are_not_trades_do_not_stop_the_group(
    scope: tuple[aioredis.Redis, str], redis_url: str, tmp_path: Path
) -> None:
    redis, name = scope
    after = await bars_positions(redis, name)
    bars = start_bars(tmp_path, redis_url, f"md.{{{name}}}.trades")
    tape = BusTape(redis, name)
    trades = synthetic(SYMBOLS, an_hour_ago(), 300, S // 10, seed=5)
    bad_trade = Trade(SYMBOLS[0], trades[100].ts, "bad-1", "abc", "1")
    try:
        await tape.publish(trades[:150])
        await redis.xadd(tape.stream, {FIELD: b"\xff not an envelope"})
        await redis.xadd(tape.stream, {b"other": b"field"})
        await redis.xadd(tape.stream, {FIELD: encode_bars("someone", [pb.Bar(venue=name, symbol="X/Y")])})
        await tape.publish([bad_trade])
        await tape.publish(trades[150:])
        live, expected = await wait_closed_bars(redis, tape, after, trades=trades)
        assert {key: versions[0] for key, versions in live.items()} == expected
        dead = cast(
            list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(dead_letter_stream(tape.stream))
        )
        # The bars group's: another group reading md.* on this Redis dead-letters there too.
        reasons = sorted(fields[b"reason"].decode() for _, fields in dead if fields[b"group"] == b"bars")
        assert len(reasons) == 2 and "no 'd' field" in reasons[0] and "not an Envelope" in reasons[1], dead
        await metric_equals(bars, "trademesh_bars_invalid_trades_total", name, 1)

        async def nothing_pending() -> bool | None:
            summary = await redis.xpending(tape.stream, "bars")
            return True if summary["pending"] == 0 else None

        await until(nothing_pending, 10, what="every entry acknowledged")
    finally:
        bars.stop()


async def test_after_a_failed_call_later_entries_wait_until_the_failed_one_is_applied(
    scope: tuple[aioredis.Redis, str],
) -> None:
    redis, name = scope
    store = CheckpointStore(redis, "bars", "test", Retention(1000, 1))
    aggregator = Aggregator(store, WatermarkRules(lateness_ns=3600 * S))  # nothing closes
    stream = f"md.{{{name}}}.trades"
    trades = synthetic(SYMBOLS, an_hour_ago(), 4, S, seed=6)
    entries = [(f"{1_800_000_000_000 + i}-0", _envelope([t])) for i, t in enumerate(trades)]
    for entry_id, envelope in entries:  # on the bus, as the runner would have read them
        await redis.xadd(stream, {FIELD: envelope.SerializeToString()}, id=entry_id)
    await hold(aggregator, stream)
    await redis.set(store.key(stream), "not a hash")  # the next call fails (WRONGTYPE)
    with pytest.raises(ResponseError):
        await aggregator.handle(stream, entries[:2])
    await redis.delete(store.key(stream))
    with pytest.raises(Unavailable):
        await aggregator.handle(stream, entries[1:])  # the runner moved on past the failed entry
    await aggregator.handle(stream, entries[:1])
    await aggregator.handle(stream, entries[1:])
    engine = aggregator.engines[stream]
    assert engine.position == (1_800_000_000_000 + len(trades) - 1, 0)
    assert sum(sym.max_ts_ns > 0 for sym in engine.symbols.values()) == len(SYMBOLS)
    counted = sum(bar.trade_count for sym in engine.symbols.values() for bar in sym.seconds.values())
    assert counted == len(trades), "every trade applied once"


async def test_a_failed_entry_the_bus_lost_is_not_waited_for(scope: tuple[aioredis.Redis, str]) -> None:
    """Redis restarted empty after a failed call: the failed entry is gone; later ones go on."""
    redis, name = scope
    store = CheckpointStore(redis, "bars", "test", Retention(1000, 1))
    aggregator = Aggregator(store, WatermarkRules(lateness_ns=3600 * S))
    stream = f"md.{{{name}}}.trades"
    trades = synthetic(SYMBOLS, an_hour_ago(), 4, S, seed=7)
    entries = [(f"{1_800_000_000_000 + i}-0", _envelope([t])) for i, t in enumerate(trades)]
    await hold(aggregator, stream)
    await redis.set(store.key(stream), "not a hash")
    with pytest.raises(ResponseError):
        await aggregator.handle(stream, entries[:1])
    await redis.delete(store.key(stream))  # nothing of the first entry is on the bus
    await aggregator.handle(stream, entries[1:])
    assert aggregator.engines[stream].position == (1_800_000_000_000 + len(trades) - 1, 0)


def _envelope(trades: list[Trade]) -> pb.Envelope:
    return pb.Envelope.FromString(encode_market("test", [t.event() for t in trades]))


async def test_an_unreadable_checkpoint_starts_afresh_instead_of_failing_every_entry(
    scope: tuple[aioredis.Redis, str],
) -> None:
    redis, name = scope
    store = CheckpointStore(redis, "bars", "test", Retention(1000, 1))
    stream = f"md.{{{name}}}.trades"
    await redis.hset(store.key(stream), mapping={"_meta": "{not json", "ZZZ/USDT": "[]"})
    trades = synthetic(SYMBOLS, an_hour_ago(), 3, S, seed=7)
    aggregator = Aggregator(store, WatermarkRules())
    await hold(aggregator, stream)
    await aggregator.handle(stream, [("1800000000000-0", _envelope(trades))])
    engine = aggregator.engines[stream]
    assert set(engine.symbols) == set(SYMBOLS) and all(sym.spans for sym in engine.symbols.values())
    reloaded = await store.load(stream, name, WatermarkRules())
    assert reloaded is not None and reloaded.position == (1_800_000_000_000, 0)


class AckCounter:
    """The consumer's Redis client, counting the XACKs the runner sends (directly or pipelined)."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self.acks = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)

    async def xack(self, *args: Any) -> Any:
        self.acks += 1
        return await self._redis.xack(*args)

    def pipeline(self, transaction: bool = True) -> Any:
        pipe = self._redis.pipeline(transaction=transaction)
        xack = pipe.xack

        def counted(*args: Any) -> Any:
            self.acks += 1
            return xack(*args)

        pipe.xack = counted  # type: ignore[method-assign,assignment]
        return pipe


async def test_the_runner_leaves_acknowledging_to_the_aggregators_commit(
    scope: tuple[aioredis.Redis, str],
) -> None:
    """Every entry acknowledged once, in the commit of its effect: none by the runner after it."""
    redis, name = scope
    config = BarsConfig(redis_url="redis://unused", pattern=f"md.{{{name}}}.trades", linger_ms=0)
    aggregator = Aggregator(CheckpointStore(redis, "bars", "test", Retention(1000, 1)), WatermarkRules())
    runner = AckCounter(redis)
    tape = BusTape(redis, name)
    await hold(aggregator, tape.stream)
    consumer = GroupConsumer(cast(Any, runner), config.consumer_options(tape.stream), aggregator.handle)
    trades = synthetic(SYMBOLS, an_hour_ago(), 90, S // 10, seed=8)
    for start in range(0, 90, 30):
        await tape.publish(trades[start : start + 30])
    await consumer.discover()
    await consumer.ensure_groups()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))

    async def all_applied() -> bool | None:
        engine = aggregator.engines.get(tape.stream)
        summary = await redis.xpending(tape.stream, "bars")
        return True if engine is not None and engine.position[0] > 0 and summary["pending"] == 0 else None

    try:
        await until(all_applied, 10, what="every entry applied and acknowledged")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    last = cast(list[tuple[bytes, Any]], await redis.xrevrange(tape.stream, count=1))[0][0].decode()
    assert aggregator.engines[tape.stream].position == tuple(int(part) for part in last.split("-"))
    assert runner.acks == 0


async def test_entries_behind_one_pending_elsewhere_wait_for_it(scope: tuple[aioredis.Redis, str]) -> None:
    """A replica that lost the stream (paused past its lease) read entries the next holder never
    got: the next holder's later entries wait until those are reclaimed and applied first."""
    redis, name = scope
    store = CheckpointStore(redis, "bars", "test", Retention(1000, 1))
    aggregator = Aggregator(store, WatermarkRules(lateness_ns=3600 * S))  # nothing closes
    stream = f"md.{{{name}}}.trades"
    trades = synthetic(SYMBOLS, an_hour_ago(), 4, S, seed=9)
    entries = [(f"{1_800_000_000_000 + i}-0", _envelope([t])) for i, t in enumerate(trades)]
    for entry_id, envelope in entries:
        await redis.xadd(stream, {FIELD: envelope.SerializeToString()}, id=entry_id)
    await redis.xgroup_create(stream, "bars", id="0")
    await hold(aggregator, stream)
    await aggregator.handle(stream, entries[:2])
    await redis.xreadgroup("bars", "paused", {stream: ">"}, count=4)  # the paused replica's read
    with pytest.raises(Unavailable):
        await aggregator.handle(stream, entries[6:])
    with pytest.raises(Unavailable):
        await aggregator.handle(stream, entries[7:])  # still waiting
    await aggregator.handle(stream, entries[2:6])  # reclaimed
    await aggregator.handle(stream, entries[6:])
    engine = aggregator.engines[stream]
    assert engine.position == (1_800_000_000_000 + len(trades) - 1, 0)
    counted = sum(bar.trade_count for sym in engine.symbols.values() for bar in sym.seconds.values())
    assert counted == len(trades), "every trade applied once"
