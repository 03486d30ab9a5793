"""The consumer-group runner against a real Redis: own pending first, reclaim from the dead,
ack only after the effect, dead letters after N deliveries while the group keeps moving."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, cast

import pytest
import redis.asyncio as aioredis
from prometheus_client import REGISTRY

from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.core.platform.bus.codec import FIELD, encode_market
from trademesh.core.platform.bus.consumer import (
    LAG,
    PENDING,
    REDELIVERED,
    ConsumerOptions,
    Entry,
    GroupConsumer,
)
from trademesh.core.platform.bus.names import dead_letter_stream
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.errors import NotYet
from trademesh.marketdata.v1 import marketdata_pb2 as md

pytestmark = pytest.mark.integration
__all__ = ["redis_url"]  # the fixture, for pytest


@pytest.fixture(params=["redis", "cluster"])
async def bus(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[tuple[aioredis.Redis, str]]:
    """A client and a stream of the test's own, on one Redis and on a Redis Cluster (where the
    streams of a test that reads several hash to different slots: read apart)."""
    url = redis_url if request.param == "redis" else request.getfixturevalue("redis_cluster_url")
    client: Any = open_redis(url)
    stream = f"test.consumer.{uuid.uuid4().hex[:12]}"
    try:
        yield client, stream
    finally:
        await client.delete(stream, dead_letter_stream(stream))
        await client.aclose()


def trade_entry(i: int) -> bytes:
    event = md.MarketEvent(venue="sim", symbol="BTC/USDT", ts_event_ns=i)
    event.trade.trade_id = str(i)
    event.trade.price, event.trade.size = "100", "1"
    return encode_market("test", [event])


async def publish(client: aioredis.Redis, stream: str, count: int, start: int = 0) -> None:
    publisher = Publisher(client, Retention(entries_per_s=1000, outage_minutes=1))
    for i in range(start, start + count):
        publisher.add(stream, trade_entry(i))
    await publisher.flush()


class Effect:
    """What a consumer did durably: the trade ids it handled, in order; can be told to fail."""

    def __init__(self, fail_on: set[str] | None = None) -> None:
        self.seen: list[str] = []
        self.fail_on = fail_on or set()

    async def __call__(self, stream: str, entries: list[Entry]) -> None:
        ids = [envelope.market.events[0].trade.trade_id for _, envelope in entries]
        if self.fail_on & set(ids):
            raise RuntimeError(f"cannot handle {sorted(self.fail_on & set(ids))}")
        self.seen.extend(ids)


def options(stream: str, consumer: str, **extra: Any) -> ConsumerOptions:
    return ConsumerOptions(group="g", consumer=consumer, streams=(stream,), batch=50, block_ms=50, **extra)


async def pending(client: aioredis.Redis, stream: str) -> int:
    summary = await client.xpending(stream, "g")
    return int(summary["pending"])


def _entry_id(raw: bytes | str) -> tuple[int, int]:
    millis, _, sequence = (raw.decode() if isinstance(raw, bytes) else raw).partition("-")
    return int(millis), int(sequence)


async def drained(consumer: GroupConsumer) -> bool | None:
    """True once every entry of the consumer's streams is delivered to its group and acknowledged."""
    client: Any = consumer.redis
    for stream in consumer.options.streams:
        last = await client.xrevrange(stream, count=1)
        groups = {
            (g["name"].decode() if isinstance(g["name"], bytes) else g["name"]): g
            for g in await client.xinfo_groups(stream)
        }
        group = groups.get(consumer.options.group)
        if not last or group is None or group["pending"]:
            return None
        if _entry_id(group["last-delivered-id"]) < _entry_id(last[0][0]):
            return None
    return True


async def run_until(
    consumer: GroupConsumer, done: Callable[[], Awaitable[bool | None]] | None = None
) -> None:
    """Run the consumer until `done` (by default: its streams `drained`); fail after 10 s."""
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        await until(done or (lambda: drained(consumer)), 10.0, 0.02, "the consumer done")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_every_entry_is_handled_once_and_acknowledged(bus: tuple[aioredis.Redis, str]) -> None:
    client, stream = bus
    effect = Effect()
    consumer = GroupConsumer(client, options(stream, "c1"), effect)
    await consumer.ensure_groups()
    await publish(client, stream, 120)
    await run_until(consumer)
    assert effect.seen == [str(i) for i in range(120)]
    assert await pending(client, stream) == 0 and consumer.processed == 120


async def test_a_restarted_consumer_reads_its_own_pending_entries_first(
    bus: tuple[aioredis.Redis, str],
) -> None:
    client, stream = bus
    crashed = GroupConsumer(client, options(stream, "c1"), Effect())
    await crashed.ensure_groups()
    await publish(client, stream, 30)
    # It read them and died before its effect was durable: nothing acknowledged.
    await client.xreadgroup("g", "c1", {stream: ">"}, count=30)
    assert await pending(client, stream) == 30
    await publish(client, stream, 10, start=30)
    effect = Effect()
    await run_until(GroupConsumer(client, options(stream, "c1"), effect))
    assert effect.seen == [str(i) for i in range(40)], "its own pending first, then the new ones"
    assert await pending(client, stream) == 0


class Told:
    """What the handler was told of each entry: may it have been delivered before?"""

    def __init__(self, fail_first_new_batch: bool = False) -> None:
        self.told: dict[str, bool] = {}
        self.fail = fail_first_new_batch

    async def __call__(self, stream: str, entries: list[Entry]) -> None:
        if self.fail and len(entries) > 1 and not REDELIVERED.get():
            self.fail = False
            raise RuntimeError("a batch that fails once")
        for _, envelope in entries:
            self.told[envelope.market.events[0].trade.trade_id] = REDELIVERED.get()


async def test_a_handler_is_told_which_entries_may_have_been_delivered_before(
    bus: tuple[aioredis.Redis, str],
) -> None:
    client, stream = bus
    crashed = GroupConsumer(client, options(stream, "c1"), Effect())
    await crashed.ensure_groups()
    await publish(client, stream, 3)
    await client.xreadgroup("g", "c1", {stream: ">"}, count=3)  # then it died
    await publish(client, stream, 2, start=3)
    told = Told()
    await run_until(GroupConsumer(client, options(stream, "c1"), told))
    assert told.told == {"0": True, "1": True, "2": True, "3": False, "4": False}
    assert REDELIVERED.get(), "outside a handler: assume delivered before"


async def test_a_batch_retried_entry_by_entry_counts_as_delivered_before(
    bus: tuple[aioredis.Redis, str],
) -> None:
    client, stream = bus
    consumer = GroupConsumer(client, options(stream, "c1"), Told(fail_first_new_batch=True))
    await consumer.ensure_groups()
    await publish(client, stream, 3)
    await run_until(consumer)
    assert cast(Told, consumer.handle).told == {"0": True, "1": True, "2": True}
    assert await pending(client, stream) == 0


async def test_entries_of_a_dead_consumer_are_reclaimed(bus: tuple[aioredis.Redis, str]) -> None:
    client, stream = bus
    live = GroupConsumer(client, options(stream, "live", claim_idle_ms=200), Effect())
    await live.ensure_groups()
    await publish(client, stream, 25)
    await client.xreadgroup("g", "dead", {stream: ">"}, count=25)  # then it died
    effect = Effect()
    live.handle = effect
    await asyncio.sleep(0.3)  # past claim_idle_ms: an entry is claimed only once idle that long
    await run_until(live)
    assert sorted(effect.seen, key=int) == [str(i) for i in range(25)]
    assert await pending(client, stream) == 0


async def test_a_poison_entry_is_dead_lettered_and_the_group_moves_on(
    bus: tuple[aioredis.Redis, str],
) -> None:
    client, stream = bus
    effect = Effect(fail_on={"13"})
    consumer = GroupConsumer(client, options(stream, "c1", claim_idle_ms=50, max_deliveries=3), effect)
    await consumer.ensure_groups()
    await publish(client, stream, 20)
    await client.xadd(stream, {FIELD: b"\xff not an envelope"})
    await publish(client, stream, 5, start=20)
    await run_until(consumer)
    assert effect.seen == [str(i) for i in range(25) if i != 13], "every other entry, in order"
    dead = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(dead_letter_stream(stream)))
    reasons = {fields[b"reason"].decode() for _, fields in dead}
    assert len(dead) == 2 and consumer.dead_lettered == 2
    assert any("not an Envelope" in r for r in reasons)
    assert any("failed 3 deliveries" in r and "cannot handle ['13']" in r for r in reasons)
    assert await pending(client, stream) == 0


class Waiting(Effect):
    """Refuses its entries for now (NotYet) from `wait_from` on, the first `refusals` times an entry
    of them comes, as the bars do while an earlier entry is not applied yet; fails for real on
    `fail_on`."""

    def __init__(self, wait_from: int, refusals: int, fail_on: set[str] | None = None) -> None:
        super().__init__(fail_on)
        self.wait_from = wait_from
        self.refusals = refusals
        self.refused: dict[str, int] = {}

    async def __call__(self, stream: str, entries: list[Entry]) -> None:
        for _, envelope in entries:
            trade_id = envelope.market.events[0].trade.trade_id
            if int(trade_id) >= self.wait_from and self.refused.get(trade_id, 0) < self.refusals:
                self.refused[trade_id] = self.refused.get(trade_id, 0) + 1
                raise NotYet(f"waiting before {trade_id}")
        await super().__call__(stream, entries)


async def test_an_entry_refused_for_now_is_retried_never_dead_lettered_and_a_bad_one_still_is(
    bus: tuple[aioredis.Redis, str],
) -> None:
    """Refusals for now do not count towards `max_deliveries`: entries refused more times than it are
    handled once the handler takes them, in order; an entry failing for real is still dead-lettered."""
    client, stream = bus
    effect = Waiting(wait_from=10, refusals=6, fail_on={"3"})
    consumer = GroupConsumer(client, options(stream, "c1", claim_idle_ms=30, max_deliveries=3), effect)
    await consumer.ensure_groups()
    await publish(client, stream, 15)
    await run_until(consumer)
    assert effect.refused["10"] == 6 > consumer.options.max_deliveries, "refused more often than the limit"
    assert effect.seen == [str(i) for i in range(15) if i != 3], "every other entry, in order"
    dead = cast(list[tuple[bytes, dict[bytes, bytes]]], await client.xrange(dead_letter_stream(stream)))
    third = cast(list[tuple[bytes, Any]], await client.xrange(stream))[3][0]
    assert [fields[b"id"] for _, fields in dead] == [third], "only the bad entry"
    assert "failed 3 deliveries" in dead[0][1][b"reason"].decode() and consumer.dead_lettered == 1
    assert await pending(client, stream) == 0


class ReadEffect:
    """A read handler: records how many streams each call carried; fails while told to."""

    def __init__(self, effect: Effect, fail: bool = False) -> None:
        self.effect = effect
        self.fail = fail
        self.calls: list[int] = []

    async def __call__(self, reads: list[tuple[str, list[Entry]]]) -> None:
        if self.fail:
            raise RuntimeError("the read failed")
        self.calls.append(len(reads))
        for stream, entries in reads:
            await self.effect(stream, entries)


@pytest.mark.parametrize("read_fails", [False, True])
async def test_a_read_of_several_streams_is_handled_at_once_or_else_stream_by_stream(
    bus: tuple[aioredis.Redis, str], read_fails: bool
) -> None:
    client, stream = bus
    other = f"{stream}.b"
    effect = Effect()
    read = ReadEffect(effect, fail=read_fails)
    both = ConsumerOptions(group="g", consumer="c1", streams=(stream, other), batch=50, block_ms=50)
    consumer = GroupConsumer(client, both, effect, read)
    try:
        await consumer.ensure_groups()
        await publish(client, stream, 30)
        await publish(client, other, 20, start=100)
        await run_until(consumer)
        assert sorted(effect.seen, key=int) == [str(i) for i in [*range(30), *range(100, 120)]]
        assert read.calls == ([] if read_fails else [2]), "one call for both streams unless it failed"
        assert await pending(client, stream) == 0 and await pending(client, other) == 0
        assert consumer.processed == 50
    finally:
        await client.delete(other)


async def test_without_a_read_handler_each_stream_of_a_read_is_acknowledged_once_handled(
    bus: tuple[aioredis.Redis, str],
) -> None:
    """Every stream's handled entries are acknowledged (in one round trip for the read); an entry
    whose handler fails stays pending while the rest of its read is acknowledged."""
    client, stream = bus
    other = f"{stream}.b"
    effect = Effect(fail_on={"105"})
    both = ConsumerOptions(group="g", consumer="c1", streams=(stream, other), batch=50, block_ms=50)
    consumer = GroupConsumer(client, both, effect)
    try:
        await consumer.ensure_groups()
        await publish(client, stream, 30)
        await publish(client, other, 20, start=100)

        async def handled_but_one() -> bool | None:  # 105 fails, and stays pending
            return True if consumer.processed >= 49 and await pending(client, other) == 1 else None

        await run_until(consumer, handled_but_one)
        handled = [str(i) for i in [*range(30), *range(100, 120)] if i != 105]
        assert sorted(effect.seen, key=int) == handled
        assert await pending(client, stream) == 0 and await pending(client, other) == 1
        assert consumer.processed == 49
    finally:
        await client.delete(other)


class Reads:
    """The entries of each call of the handler: one call per read of the stream."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    async def __call__(self, stream: str, entries: list[Entry]) -> None:
        self.sizes.append(len(entries))


async def test_with_a_linger_entries_that_keep_coming_are_read_together(
    bus: tuple[aioredis.Redis, str],
) -> None:
    client, stream = bus
    reads = Reads()
    consumer = GroupConsumer(client, options(stream, "c1", linger_ms=150.0), reads)
    await consumer.ensure_groups()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    loop = asyncio.get_running_loop()
    try:
        began = loop.time()
        for i in range(60):  # one entry every 10 ms for 0.6 s (longer on a loaded machine)
            await publish(client, stream, 1, start=i)
            await asyncio.sleep(0.01)
        publishing_s = loop.time() - began

        async def all_read() -> bool | None:
            return True if sum(reads.sizes) == 60 and await pending(client, stream) == 0 else None

        await until(all_read, 10.0, 0.02, "the 60 entries read and acknowledged")
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert sum(reads.sizes) == 60 and await pending(client, stream) == 0
    # At most one read per 150 ms while they came (the first read takes the first entry alone).
    assert len(reads.sizes) <= 1 + publishing_s / 0.15 + 2, (reads.sizes, publishing_s)


class Busy:
    """A handler that takes `busy_s` a call (the recorder's transaction); when each call began."""

    def __init__(self, busy_s: float) -> None:
        self.busy_s = busy_s
        self.began: list[float] = []
        self.handled = 0

    async def __call__(self, stream: str, entries: list[Entry]) -> None:
        self.began.append(asyncio.get_running_loop().time())
        await asyncio.sleep(self.busy_s)
        self.handled += len(entries)


# The gaps between reads have an upper bound as well as a lower one: a loaded machine's event
# loop stretches them (a --fast run at load 25 read 0.2-0.3 s gaps), so no other test runs beside
# it. The rule itself is linger_wait's, unit-tested without a clock.
@pytest.mark.exclusive
@pytest.mark.parametrize(
    ("busy_s", "least_s", "most_s"),
    [
        # A handler quicker than half the linger: the next read a linger after this one came
        # back (150 ms), not a linger after the handler returned (210 ms).
        (0.06, 0.145, 0.19),
        # A handler slower than the linger: a whole linger after it all the same (350 ms), so
        # its reads do not come more often as it slows down (half a linger: 275; none: 200).
        (0.2, 0.34, 0.45),
    ],
)
async def test_a_linger_is_counted_from_the_read_and_is_at_least_the_handling(
    bus: tuple[aioredis.Redis, str], busy_s: float, least_s: float, most_s: float
) -> None:
    client, stream = bus
    handler = Busy(busy_s)
    consumer = GroupConsumer(client, options(stream, "c1", linger_ms=150.0), handler)
    await consumer.ensure_groups()
    stop = asyncio.Event()
    task = asyncio.create_task(consumer.run(stop))
    try:
        for i in range(150):  # one entry every 10 ms for 1.5 s: every read finds some
            await publish(client, stream, 1, start=i)
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    gaps = sorted(b - a for a, b in zip(handler.began[1:], handler.began[2:], strict=False))
    assert len(gaps) >= 2, handler.began
    median = gaps[len(gaps) // 2]
    assert gaps[0] >= least_s and median <= most_s, gaps


class RoundTrips:
    """A consumer's Redis client that counts the XINFO GROUPS sent one at a time."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self.xinfo_alone = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)

    async def xinfo_groups(self, stream: str) -> Any:
        self.xinfo_alone += 1
        return await self._redis.xinfo_groups(stream)


async def test_pending_and_lag_of_every_stream_are_reported_from_one_round_trip(
    bus: tuple[aioredis.Redis, str],
) -> None:
    client, stream = bus
    other, gone = f"{stream}.other", f"{stream}.gone"
    opts = ConsumerOptions(group="g", consumer="c1", streams=(stream, other, gone), batch=50, block_ms=50)
    runner = RoundTrips(client)
    consumer = GroupConsumer(cast(Any, runner), opts, Effect())
    try:
        await consumer.ensure_groups()
        await publish(client, stream, 5)
        await publish(client, other, 7)
        await client.xreadgroup("g", "c1", {stream: ">"}, count=3)  # 3 pending, 2 not delivered
        await client.delete(gone)  # its XINFO fails: the others are still reported
        await consumer.report()
    finally:
        await client.delete(other)
    dead = [REGISTRY.get_sample_value("trademesh_bus_dead_letters_total", {"stream": s, "group": "g"})
            for s in (stream, other)]  # fmt: skip
    assert dead == [0.0, 0.0]  # there from the first report, before any dead letter
    assert (PENDING.labels(stream, "g")._value.get(), LAG.labels(stream, "g")._value.get()) == (3, 2)
    assert (PENDING.labels(other, "g")._value.get(), LAG.labels(other, "g")._value.get()) == (0, 7)
    assert runner.xinfo_alone == 0


class Rounds:
    """A consumer's Redis client that keeps the commands of each round trip it sends as a
    pipeline, or packed together on a connection of its pool, and counts the XACKs it sends
    alone."""

    def __init__(self, redis: aioredis.Redis) -> None:
        self._redis = redis
        self.pipelines: list[list[str]] = []
        self.xack_alone = 0
        self.connection_pool = _RecordingPool(redis.connection_pool, self.pipelines)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._redis, name)

    async def xack(self, *args: Any) -> Any:
        self.xack_alone += 1
        return await self._redis.xack(*args)

    def pipeline(self, transaction: bool = True) -> Any:
        pipe: Any = self._redis.pipeline(transaction=transaction)
        execute = pipe.execute

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            self.pipelines.append([str(command[0][0]).upper() for command in pipe.command_stack])
            return await execute(*args, **kwargs)

        pipe.execute = recorded
        return pipe


class _RecordingPool:
    """A connection pool whose connections keep the commands of each send of packed commands."""

    def __init__(self, pool: Any, sent: list[list[str]]) -> None:
        self._pool = pool
        self._sent = sent

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pool, name)

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        connection = await self._pool.get_connection(*args, **kwargs)
        pack = connection.pack_commands

        def recorded(commands: list[tuple[Any, ...]]) -> Any:
            self._sent.append([str(command[0]).upper() for command in commands])
            return pack(commands)

        connection.pack_commands = recorded
        return connection


async def test_a_reads_acknowledgements_go_with_the_next_read_in_one_round_trip(redis_url: str) -> None:
    client: Any = open_redis(redis_url)
    stream = f"test.consumer.{uuid.uuid4().hex[:12]}"
    rounds = Rounds(client)
    try:
        consumer = GroupConsumer(cast(Any, rounds), options(stream, "c1"), effect := Effect())
        await consumer.ensure_groups()
        await publish(client, stream, 120)  # three reads of at most 50
        await run_until(consumer)  # every entry acknowledged, while the consumer ran
        assert effect.seen == [str(i) for i in range(120)] and consumer.processed == 120
        with_acks = [p for p in rounds.pipelines if "XACK" in p]
        assert with_acks and all(p[-1] == "XREADGROUP" for p in with_acks), rounds.pipelines
        assert rounds.xack_alone == 0
    finally:
        await client.delete(stream)
        await client.aclose()


@pytest.mark.parametrize("protocol", [2, None])
async def test_reads_on_the_consumers_own_connection_take_each_entry_once_in_either_protocol(
    redis_url: str, protocol: int | None
) -> None:
    """The runner's reads parse Redis's reply itself: RESP2's list of streams, or the map of
    RESP3, which redis-py 8 speaks by default (open_redis's clients)."""
    client: Any = aioredis.Redis.from_url(redis_url, protocol=protocol)
    streams = [f"test.consumer.{uuid.uuid4().hex[:12]}" for _ in range(2)]
    try:
        effect = Effect()
        both = ConsumerOptions(group="g", consumer="c1", streams=tuple(streams), batch=50, block_ms=50)
        consumer = GroupConsumer(client, both, effect)
        await consumer.ensure_groups()
        await publish(client, streams[0], 70)
        await publish(client, streams[1], 30, start=70)
        await run_until(consumer)
        assert sorted(effect.seen, key=int) == [str(i) for i in range(100)]
        assert [await pending(client, stream) for stream in streams] == [0, 0]
    finally:
        await client.delete(*streams)
        await client.aclose()


async def test_a_consumer_stopped_after_a_read_acknowledges_it_before_it_ends(
    bus: tuple[aioredis.Redis, str],
) -> None:
    client, stream = bus
    stop = asyncio.Event()
    seen: list[str] = []

    async def handle_then_stop(stream: str, entries: list[Entry]) -> None:
        seen.extend(envelope.market.events[0].trade.trade_id for _, envelope in entries)
        stop.set()  # no read follows to carry the acknowledgements

    consumer = GroupConsumer(client, options(stream, "c1"), handle_then_stop)
    await consumer.ensure_groups()
    await publish(client, stream, 30)
    await asyncio.wait_for(consumer.run(stop), 10)
    assert seen == [str(i) for i in range(30)]
    assert await pending(client, stream) == 0


async def test_a_consumer_cancelled_in_its_blocking_read_leaves_no_reply_for_the_next_command(
    redis_url: str,
) -> None:
    """The read's connection (the consumer's own, _acked_read) goes back to the client's pool when
    the consumer ends; cancelled while its XREADGROUP blocks, the read's reply is still to come on
    it, and the next command given that connection would read it as its own answer: redis-py
    closes a connection whose read was cancelled (Connection.read_response), which this holds."""
    client: Any = aioredis.Redis.from_url(redis_url, max_connections=1)  # one connection: reused
    watcher: Any = aioredis.Redis.from_url(redis_url)
    stream = f"test.consumer.{uuid.uuid4().hex[:12]}"
    try:
        slow = ConsumerOptions(group="g", consumer="c1", streams=(stream,), batch=50, block_ms=1500)
        consumer = GroupConsumer(client, slow, Effect())
        await consumer.ensure_groups()
        task = asyncio.create_task(consumer.run(asyncio.Event()))

        async def blocked() -> bool | None:
            clients = await watcher.client_list()
            return True if any(c.get("cmd") == "xreadgroup" and "b" in c["flags"] for c in clients) else None

        await until(blocked, 10.0, 0.02, "the consumer blocked in its read")
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        key = f"{stream}.key"
        assert await asyncio.wait_for(client.set(key, "v"), 1.0) is True
        assert await client.get(key) == b"v"
        assert await client.delete(key) == 1
    finally:
        await watcher.delete(stream)
        await client.aclose()
        await watcher.aclose()
