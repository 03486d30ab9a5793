"""The bus against a real Redis: names, the envelope codec, the publisher, retention and lag."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from tests.integration.redis_server import redis_url
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.domain.model import Channel, Timeframe
from trademesh.core.platform.bus.codec import FIELD, decode, encode_market, wrap_executions
from trademesh.core.platform.bus.names import (
    bars_stream,
    dead_letter_stream,
    executions_stream,
    market_stream,
    parse_executions_stream,
)
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.errors import Corrupt, InvalidArgument
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

pytestmark = pytest.mark.integration
__all__ = ["redis_url"]  # the fixture, for pytest


@pytest.fixture(params=["redis", "cluster"])
async def redis(request: pytest.FixtureRequest, redis_url: str) -> AsyncIterator[aioredis.Redis]:
    """A client of one Redis, or of a Redis Cluster (the test's streams in several slots)."""
    url = redis_url if request.param == "redis" else request.getfixturevalue("redis_cluster_url")
    client: Any = open_redis(url)
    created: list[str] = []
    client.test_streams = created
    try:
        yield client
    finally:
        if created:
            await client.delete(*created)
        await client.aclose()


def stream_name(client: aioredis.Redis, kind: str) -> str:
    name = f"test.{kind}.{uuid.uuid4().hex[:12]}"
    client.test_streams.append(name)  # type: ignore[attr-defined]
    return name


Entries = list[tuple[bytes, dict[bytes, bytes]]]


async def entries(client: aioredis.Redis, stream: str, newest: int | None = None) -> Entries:
    found = await (client.xrevrange(stream, count=newest) if newest else client.xrange(stream))
    return cast(Entries, found)


def trade(i: int) -> md.MarketEvent:
    event = md.MarketEvent(venue="sim", symbol="BTC/USDT", ts_event_ns=1_000 + i, ts_recv_ns=2_000 + i)
    event.trade.trade_id = str(i)
    event.trade.price = f"65000.{i % 100:02d}"
    event.trade.size = "0.001"
    return event


def test_stream_names_follow_one_rule_each() -> None:
    assert market_stream("binance", Channel.TRADES) == "md.{binance}.trades"
    assert market_stream("okx-swap", Channel.BOOK) == "md.{okx-swap}.book"
    assert bars_stream(Timeframe.M15, "md.{sim}.trades") == "bars.{sim}.15m"
    assert dead_letter_stream("md.{sim}.trades") == "dlq.md.{sim}.trades"
    assert executions_stream("okx-swap") == "exec.{okx-swap}"
    assert parse_executions_stream("exec.{okx-swap}") == "okx-swap"
    assert parse_executions_stream("md.{sim}.trades") is None
    assert parse_executions_stream("exec.Bad Venue") is None
    with pytest.raises(InvalidArgument, match="venue"):
        executions_stream("Bad Venue!")
    with pytest.raises(InvalidArgument, match="venue"):
        market_stream("Bad Venue!", Channel.TRADES)


def test_an_entry_that_is_not_an_envelope_is_corrupt() -> None:
    events = [trade(i) for i in range(3)]
    envelope = decode({FIELD: encode_market("test", events, now_ns=7)})
    assert envelope.source == "test" and envelope.ts_publish_ns == 7
    assert list(envelope.market.events) == events
    for fields in ({b"x": b"1"}, {FIELD: b"\xff\xff\xff"}, {FIELD: b""}):
        with pytest.raises(Corrupt):
            decode(fields)


async def test_one_flush_writes_every_queued_entry_in_order(redis: aioredis.Redis) -> None:
    publisher = Publisher(redis, Retention(entries_per_s=1000, outage_minutes=5))
    trades, books = stream_name(redis, "trades"), stream_name(redis, "book")
    for i in range(2000):
        publisher.add(trades if i % 2 else books, encode_market("test", [trade(i)]))
    ids = await publisher.flush()
    assert len(ids) == 2000 and publisher.queued == 0 and publisher.entries_written == 2000
    assert await redis.xlen(trades) == 1000 and await redis.xlen(books) == 1000
    written = await entries(redis, trades)
    seen = [decode(fields).market.events[0].trade.trade_id for _, fields in written]
    assert seen == [str(i) for i in range(1, 2000, 2)]
    assert await publisher.flush() == [], "nothing queued: no round trip"


async def test_a_stream_keeps_at_least_the_outage_worth_of_entries(redis: aioredis.Redis) -> None:
    retention = Retention(entries_per_s=20, outage_minutes=1)  # 1,200 entries
    assert retention.maxlen == 1200
    publisher = Publisher(redis, retention)
    stream = stream_name(redis, "trades")
    for batch in range(10):
        for i in range(500):
            publisher.add(stream, encode_market("test", [trade(batch * 500 + i)]))
        await publisher.flush()
    length = await redis.xlen(stream)
    assert 1200 <= length < 5000, length  # trimmed, approximately, never below MAXLEN
    newest = decode((await entries(redis, stream, newest=1))[0][1])
    assert newest.market.events[0].trade.trade_id == "4999"


async def test_a_group_near_the_trim_point_is_reported(
    redis: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = Publisher(redis, Retention(entries_per_s=20, outage_minutes=1))  # keeps 1,200
    stream = stream_name(redis, "trades")
    publisher.add(stream, encode_market("test", [trade(0)]))
    await publisher.flush()
    await redis.xgroup_create(stream, "slow", id="0")
    await redis.xgroup_create(stream, "fast", id="$")
    for i in range(1, 1000):
        publisher.add(stream, encode_market("test", [trade(i)]))
    await publisher.flush()
    await redis.xreadgroup("fast", "c1", {stream: ">"}, count=999)
    with caplog.at_level(logging.WARNING):
        lags = {lag.group: lag for lag in await publisher.check_lag(stream)}
    assert lags["slow"].lag == 1000 and lags["slow"].near_trim
    assert lags["fast"].lag == 0 and lags["fast"].pending == 999 and not lags["fast"].near_trim
    assert "group slow is 1000 entries behind" in caplog.text


def _executions(epoch: int, first: int, count: int) -> bytes:
    batch = bus.Executions(epoch=epoch, position=first + count - 1)
    for sequence in range(first, first + count):
        batch.executions.add(venue="sim", sequence=sequence, ts_event_ns=sequence)
    return wrap_executions("test", batch.SerializeToString())


async def test_a_once_entry_is_written_once_whatever_is_retried(redis: aioredis.Redis) -> None:
    publisher = Publisher(redis, Retention(entries_per_s=1000, outage_minutes=5))
    stream = stream_name(redis, "exec")
    publisher.add(stream, _executions(7, 1, 2), once=(7, 2))
    publisher.add(stream, _executions(7, 3, 1), once=(7, 3))
    first = await publisher.flush()
    # A whole flush again (a retry after a lost reply), then one going on: only the new one lands.
    publisher.add(stream, _executions(7, 1, 2), once=(7, 2))
    publisher.add(stream, _executions(7, 3, 1), once=(7, 3))
    publisher.add(stream, _executions(7, 4, 2), once=(7, 5))
    again = await publisher.flush()
    assert all(first) and again[:2] == [None, None] and again[2] is not None
    assert publisher.entries_written == 3 and publisher.entries_skipped == 2
    # Another epoch (a restarted venue) starts over; a plain entry between changes nothing.
    publisher.add(stream, _executions(8, 1, 1), once=(8, 1))
    publisher.add(stream, _executions(8, 1, 1), once=(8, 1))
    await publisher.flush()
    written = await entries(redis, stream)
    sequences = [
        (decode(fields).executions.epoch, e.sequence)
        for _, fields in written
        for e in decode(fields).executions.executions
    ]
    assert sequences == [(7, 1), (7, 2), (7, 3), (7, 4), (7, 5), (8, 1)]
    assert written[-1][1][b"e"] == b"8" and written[-1][1][b"p"] == b"1"
    assert isinstance(decode(written[0][1]).executions.executions[0], tf.Execution)
