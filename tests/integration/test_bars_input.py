"""What a real `trademesh bars` process does with imperfect input: copies, reordering, a late
trade, entries that are not trades at all."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from decimal import Decimal
from pathlib import Path
from typing import Any, NamedTuple, cast

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from tests.integration.bars_support import (
    LATENESS_NS,
    BusTape,
    Trade,
    bar_fields,
    bars_positions,
    group_by,
    hold,
    metric_equals,
    read_bars,
    scope,
    start_bars,
    synthetic,
    wait_closed_bars,
)
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.bus.v1 import bus_pb2 as pb
from trademesh.core.bars.aggregator import Aggregator
from trademesh.core.bars.app import BarsConfig
from trademesh.core.bars.checkpoint import CheckpointStore
from trademesh.core.bars.engine import VenueBars, entry_position
from trademesh.core.bars.repair import candle_bar
from trademesh.core.bars.spans import RepairTask
from trademesh.core.bars.timeframes import FROM_PB, TO_PB
from trademesh.core.bars.watermark import WatermarkRules
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.model import Timeframe
from trademesh.core.platform.bus.codec import FIELD, decode, encode_bars, encode_market
from trademesh.core.platform.bus.consumer import ConsumerOptions, Entry, GroupConsumer
from trademesh.core.platform.bus.names import bars_stream, dead_letter_stream
from trademesh.core.platform.bus.publisher import Retention
from trademesh.core.platform.errors import NotYet, Unavailable
from trademesh.marketdata.v1 import marketdata_pb2 as md

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


class _Entries(NamedTuple):
    store: CheckpointStore
    aggregator: Aggregator
    stream: str
    trades: list[Trade]
    entries: list[tuple[str, pb.Envelope]]


async def _four_entries(redis: aioredis.Redis, name: str, seed: int) -> _Entries:
    """An aggregator whose bars never close, and four one-trade entries on `name`'s trades stream,
    its group `bars` made at the start."""
    store = CheckpointStore(redis, "bars", "test", Retention(1000, 1))
    aggregator = Aggregator(store, WatermarkRules(lateness_ns=3600 * S))  # nothing closes
    stream = f"md.{{{name}}}.trades"
    trades = synthetic(SYMBOLS, an_hour_ago(), 4, S, seed=seed)
    entries = [(f"{1_800_000_000_000 + i}-0", _envelope([t])) for i, t in enumerate(trades)]
    for entry_id, envelope in entries:
        await redis.xadd(stream, {FIELD: envelope.SerializeToString()}, id=entry_id)
    await redis.xgroup_create(stream, "bars", id="0")
    return _Entries(store, aggregator, stream, trades, entries)


async def test_later_entries_wait_for_a_failed_one_for_now_and_one_given_up_is_a_gap(
    scope: tuple[aioredis.Redis, str],
) -> None:
    """While the failed entry is pending in the group, later ones are refused for now (NotYet: the
    runner retries them, never dead-letters them for it). Once it is given up (dead-lettered:
    acknowledged, never applied), they are applied and its trades' bars are a seam, repaired."""
    redis, name = scope
    store, aggregator, stream, trades, entries = await _four_entries(redis, name, seed=8)
    await redis.xreadgroup("bars", "c", {stream: ">"})  # delivered: pending until applied
    await hold(aggregator, stream)
    lost = len(SYMBOLS) + 1  # a trade of a symbol seen before it
    await aggregator.handle(stream, entries[:lost])
    checkpoint: dict[Any, Any] = await redis.hgetall(store.key(stream))
    await redis.set(store.key(stream), "not a hash")  # the next call fails (WRONGTYPE)
    with pytest.raises(ResponseError):
        await aggregator.handle(stream, entries[lost : lost + 2])
    await redis.delete(store.key(stream))
    await redis.hset(store.key(stream), mapping=checkpoint)
    for _ in range(2):
        with pytest.raises(NotYet):
            await aggregator.handle(stream, entries[lost + 1 :])
    await redis.xack(stream, "bars", entries[lost][0])  # the runner's dead letter
    await aggregator.handle(stream, entries[lost + 1 :])
    engine = aggregator.engines[stream]
    assert engine.position == entry_position(entries[-1][0])
    counted = sum(bar.trade_count for sym in engine.symbols.values() for bar in sym.seconds.values())
    assert counted == len(trades) - 1, "every trade but the lost one applied"
    missing = trades[lost]
    spans = engine.symbols[missing.symbol].spans
    assert any(s.start_ns <= missing.ts <= s.end_ns and not s.open_end for s in spans), spans
    assert all(engine.symbols[symbol].spans for symbol in SYMBOLS), "every symbol's open bars: a seam"


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


class AnswerLost(aioredis.Redis):
    """A client whose armed EVALSHA (the bars' fenced commit is one Lua script) runs on the server,
    then fails as a read past the socket's deadline does: a Redis stopped (SIGSTOP) past the
    client's timeout runs the commit once it goes on, and its answer goes to a closed socket."""

    lose_next = False

    async def evalsha(self, *args: Any, **kwargs: Any) -> Any:
        answer = await super().evalsha(*args, **kwargs)
        if self.lose_next:
            self.lose_next = False
            raise RedisTimeoutError("Timeout reading from the test's Redis: the answer was lost")
        return answer


async def test_a_commit_whose_answer_was_lost_holds_no_later_entry_back(
    scope: tuple[aioredis.Redis, str], redis_url: str
) -> None:
    """The direct path's stalled Redis (test_pipeline_faults): a commit timed out, yet Redis ran it,
    so its entry is applied and acknowledged and never comes again. The next entries are applied;
    they were refused as "waiting for entry ... to be applied first" until the runner dead-lettered
    them, and the 1s bar of their second closed without their trades (its close another trade's)."""
    redis, name = scope
    client = cast(AnswerLost, AnswerLost.from_url(redis_url, socket_timeout=10))
    try:
        aggregator = Aggregator(CheckpointStore(client, "bars", "test", Retention(1000, 1)), WatermarkRules())
        stream = f"md.{{{name}}}.trades"
        second = an_hour_ago()
        trades = [
            Trade("AAA/USDT", second + S // 10, "1", "100.00", "1"),
            Trade("AAA/USDT", second + 9 * S // 10, "2", "101.50", "2"),  # the second's close
            Trade("AAA/USDT", second + 3 * S, "3", "99.00", "1"),  # closes the second
        ]
        entries = [(f"{1_800_000_000_000 + i}-0", _envelope([t])) for i, t in enumerate(trades)]
        for entry_id, envelope in entries:
            await redis.xadd(stream, {FIELD: envelope.SerializeToString()}, id=entry_id)
        await hold(aggregator, stream)
        client.lose_next = True
        with pytest.raises(RedisTimeoutError):
            await aggregator.handle(stream, entries[:1])
        await aggregator.handle(stream, entries[1:2])
        await aggregator.handle(stream, entries[2:])
        published = cast(list[tuple[bytes, Any]], await redis.xrange(bars_stream(Timeframe.S1, stream)))
        bars = [bar for _, fields in published for bar in decode(fields).bars.bars]
        (bar,) = [bar for bar in bars if bar.open_time_ns == second]
        assert (Decimal(bar.open), Decimal(bar.close), Decimal(bar.volume), bar.trade_count) == (
            Decimal(100),
            Decimal("101.5"),
            Decimal(3),
            2,
        )
        assert aggregator.engines[stream].position == (1_800_000_000_002, 0)
    finally:
        await client.aclose()


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
    _, aggregator, stream, trades, entries = await _four_entries(redis, name, seed=9)
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


async def _dead_lettered_by_another_consumer(redis: aioredis.Redis, stream: str) -> str:
    """Another consumer of the group `bars` (a replica that held the stream before) reads the one
    entry not yet delivered to the group and gives it up as its runner does: written to the dead
    letters, acknowledged, never applied. Its id."""
    stop = asyncio.Event()

    async def cannot_apply(stream: str, entries: list[Entry]) -> None:
        raise RuntimeError("this replica cannot apply it")

    options = ConsumerOptions("bars", "other", streams=(stream,), batch=1, block_ms=50, max_deliveries=1,
                              handler_acks=True)  # fmt: skip
    task = asyncio.create_task(GroupConsumer(redis, options, cannot_apply).run(stop))

    async def dead_letter() -> str | None:
        dead = cast(list[tuple[bytes, dict[bytes, bytes]]], await redis.xrange(dead_letter_stream(stream)))
        return dead[-1][1][b"id"].decode() if dead else None

    try:
        return await until(dead_letter, 10, what="the other consumer's dead letter")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


def _venue_bars(trades: list[Trade], venue: str, task: RepairTask) -> list[pb.Bar]:
    """What the venue serves for `task`: its candles of every trade (one given up on the bus too)."""
    timeframe, groups = task.timeframe, defaultdict[int, list[Trade]](list)
    for t in sorted(trades, key=lambda t: (t.ts, len(t.trade_id), t.trade_id)):
        if (
            t.symbol == task.symbol
            and task.first_open_ns <= timeframe.open_time_ns(t.ts) <= task.last_open_ns
        ):
            groups[timeframe.open_time_ns(t.ts)].append(t)
    bars = []
    for open_time, group in sorted(groups.items()):
        prices, sizes = [Decimal(t.price) for t in group], [Decimal(t.size) for t in group]
        candle = md.Candle(
            timeframe=TO_PB[timeframe],
            open_time_ns=open_time,
            open=group[0].price,
            high=format_decimal(max(prices)),
            low=format_decimal(min(prices)),
            close=group[-1].price,
            volume=format_decimal(sum(sizes, Decimal(0))),
            quote_volume=format_decimal(sum((p * s for p, s in zip(prices, sizes, strict=True)), Decimal(0))),
            trade_count=len(group),
            closed=True,
        )
        bar = candle_bar(venue, task.symbol, timeframe, candle)
        assert bar is not None
        bars.append(bar)
    return bars


def _gaps(venue: str) -> float:
    return REGISTRY.get_sample_value("trademesh_bars_gap_markers_total", {"venue": venue}) or 0.0


async def test_an_entry_another_consumer_gave_up_is_a_gap_repaired_from_the_venue(
    scope: tuple[aioredis.Redis, str],
) -> None:
    """An entry dead-lettered by another consumer of the group (a replica that held the stream, then
    handed it over) is acknowledged, never applied, and never comes to this replica: the entries
    after it are its next ones. Its trades are a gap: every symbol's bars from its watermark to its
    next trade are repaired from the venue's candles (they were missing from the bars, unrepaired)."""
    redis, name = scope
    store = CheckpointStore(redis, "bars", "test", Retention(1000, 1))
    aggregator = Aggregator(store, WatermarkRules())
    stream = f"md.{{{name}}}.trades"
    minute = an_hour_ago() // (60 * S) * 60 * S
    lost = Trade("AAA/USDT", minute + 2_500_000_000, "5", "105.5", "2")
    trades = [
        Trade("AAA/USDT", minute - 300 * S + S // 10, "1", "100", "1"),
        Trade("BBB/USDT", minute - 300 * S + S // 5, "2", "50", "1"),
        Trade("AAA/USDT", minute + 1_100_000_000, "3", "101", "1"),
        Trade("BBB/USDT", minute + 1_200_000_000, "4", "51", "1"),
        lost,
        Trade("AAA/USDT", minute + 3_200_000_000, "6", "102", "1"),
        Trade("BBB/USDT", minute + 3_300_000_000, "7", "52", "1"),
        Trade("AAA/USDT", minute + 80 * S, "8", "103", "1"),  # closes the gap's 1s and 1m bars
        Trade("BBB/USDT", minute + 80 * S + S // 10, "9", "53", "1"),
    ]
    entries = [(f"{1_800_000_000_000 + i}-0", _envelope([t])) for i, t in enumerate(trades)]
    await redis.xgroup_create(stream, "bars", id="0", mkstream=True)
    await hold(aggregator, stream)

    async def this_replica_handles(batch: list[tuple[str, pb.Envelope]]) -> None:
        for entry_id, envelope in batch:
            await redis.xadd(stream, {FIELD: envelope.SerializeToString()}, id=entry_id)
        await redis.xreadgroup("bars", "this", {stream: ">"})
        await aggregator.handle(stream, batch)

    await this_replica_handles(entries[:4])
    given_up = entries[4]
    await redis.xadd(stream, {FIELD: given_up[1].SerializeToString()}, id=given_up[0])
    assert await _dead_lettered_by_another_consumer(redis, stream) == given_up[0]
    await this_replica_handles(entries[5:])
    engine = aggregator.engines[stream]
    assert engine.position == entry_position(entries[-1][0])
    assert _gaps(name) == 1
    for symbol, since in (("AAA/USDT", minute + S // 10), ("BBB/USDT", minute + S // 5)):
        # From the symbol's watermark when the entry was given up to its next trade.
        spans = [(s.start_ns, s.end_ns) for s in engine.symbols[symbol].spans]
        assert (since, since + 3 * S + S // 10) in spans, (symbol, spans)
    due = (await aggregator.repairs_due())[stream]
    assert RepairTask("AAA/USDT", Timeframe.S1, minute, minute + 3 * S) in due, due
    assert RepairTask("AAA/USDT", Timeframe.M1, minute, minute) in due, due
    after = await bars_positions(redis, name)
    for task in due:
        await aggregator.repaired(stream, task, _venue_bars(trades, name, task))
    assert await aggregator.repairs_due() == {}
    repaired = {
        (b.symbol, FROM_PB[b.timeframe], b.open_time_ns): b for b in await read_bars(redis, name, after)
    }
    expected = group_by(trades)
    for key in (("AAA/USDT", Timeframe.S1, minute + 2 * S), ("AAA/USDT", Timeframe.M1, minute)):
        assert repaired[key].repaired and bar_fields(repaired[key]) == expected[key], key
    assert bar_fields(repaired[("AAA/USDT", Timeframe.M1, minute)])[1] == Decimal("105.5"), "its high"


@pytest.mark.parametrize("start", ["$", "later"])
async def test_entries_before_a_fresh_starts_first_are_no_gap(
    scope: tuple[aioredis.Redis, str], start: str
) -> None:
    """No checkpoint, and a group made after entries were on the bus (at '$', or at a later id):
    those entries are neither pending in the group nor applied, but they were never the group's
    to apply. No gap: each symbol's bars begin with the seam of its first trade, no more."""
    redis, name = scope
    store = CheckpointStore(redis, "bars", "test", Retention(1000, 1))
    aggregator = Aggregator(store, WatermarkRules())
    stream = f"md.{{{name}}}.trades"
    trades = synthetic(SYMBOLS, an_hour_ago(), 4, S, seed=10)
    entries = [(f"{1_800_000_000_000 + i}-0", _envelope([t])) for i, t in enumerate(trades)]
    for entry_id, envelope in entries[: len(entries) // 2]:
        await redis.xadd(stream, {FIELD: envelope.SerializeToString()}, id=entry_id)
    await redis.xgroup_create(stream, "bars", id="$" if start == "$" else entries[2][0])
    for entry_id, envelope in entries[len(entries) // 2 :]:
        await redis.xadd(stream, {FIELD: envelope.SerializeToString()}, id=entry_id)
    read = cast(list[tuple[bytes, list[Any]]], await redis.xreadgroup("bars", "this", {stream: ">"}))
    first = next(i for i, (entry_id, _) in enumerate(entries) if entry_id == read[0][1][0][0].decode())
    assert first == (len(entries) // 2 if start == "$" else 3)
    await hold(aggregator, stream)
    await aggregator.handle(stream, entries[first:])
    engine = aggregator.engines[stream]
    assert engine.position == entry_position(entries[-1][0])
    assert _gaps(name) == 0
    for symbol in SYMBOLS:
        seen = min(t.ts for t in trades[first:] if t.symbol == symbol)
        assert [(s.start_ns, s.end_ns, s.open_end) for s in engine.symbols[symbol].spans] == [
            (seen, seen, False)
        ]


async def test_an_unreadable_entry_another_consumer_gave_up_is_no_gap(
    scope: tuple[aioredis.Redis, str],
) -> None:
    """An entry given up because it cannot be read (not an Envelope: the runner dead-letters it
    before any handler sees it) holds no trade the bars could have: no gap, no repair."""
    redis, name = scope
    _, aggregator, stream, trades, entries = await _four_entries(redis, name, seed=11)
    await hold(aggregator, stream)
    await redis.xreadgroup("bars", "this", {stream: ">"})
    await aggregator.handle(stream, entries)
    unreadable = "1800000000100-0"
    await redis.xadd(stream, {FIELD: b"\xff not an envelope"}, id=unreadable)
    assert await _dead_lettered_by_another_consumer(redis, stream) == unreadable
    later = synthetic(SYMBOLS, trades[-1].ts + S, 2, S, seed=12)
    batch = [(f"{1_800_000_000_200 + i}-0", _envelope([t])) for i, t in enumerate(later)]
    for entry_id, envelope in batch:
        await redis.xadd(stream, {FIELD: envelope.SerializeToString()}, id=entry_id)
    await redis.xreadgroup("bars", "this", {stream: ">"})
    spans = _spans(aggregator.engines[stream])
    await aggregator.handle(stream, batch)
    engine = aggregator.engines[stream]
    assert engine.position == entry_position(batch[-1][0])
    assert _gaps(name) == 0
    assert _spans(engine) == spans, "no seam"


def _spans(engine: VenueBars) -> dict[str, list[tuple[int, int, bool]]]:
    return {
        symbol: [(s.start_ns, s.end_ns, s.open_end) for s in sym.spans]
        for symbol, sym in engine.symbols.items()
    }
