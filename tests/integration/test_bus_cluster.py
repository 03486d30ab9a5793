"""The bus on a real Redis Cluster (three masters, tests/integration/redis_cluster.py): the URL,
the atomic group writes with the layout's real keys, at-most-once appends over several slots,
discovery on every master, and what the cluster refuses (keys of one write in two slots)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.exceptions import RedisClusterException, ResponseError

from tests.integration.redis_cluster import emptied_cluster
from tests.integration.redis_server import redis_url
from trademesh.core.advisor.wire import decided_key
from trademesh.core.bars.checkpoint import CheckpointStore
from trademesh.core.domain.model import Channel, Timeframe
from trademesh.core.platform.bus.append import Append, Retention
from trademesh.core.platform.bus.codec import FIELD
from trademesh.core.platform.bus.group import Ack, GroupOutcome, GroupWrite, Marked, SetFields, write_group
from trademesh.core.platform.bus.names import (
    ADVISOR_TELEMETRY,
    DECISIONS,
    INTENTS,
    SIGNALS,
    bars_stream,
    executions_stream,
    market_stream,
    tagged,
)
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.redis import checked_ping, is_cluster, open_redis, server_run_id, slot_groups
from trademesh.core.platform.errors import InvalidArgument

pytestmark = pytest.mark.integration
__all__ = ["redis_url"]  # the fixture, for pytest


@pytest.fixture
async def cluster(redis_cluster_url: str) -> AsyncIterator[Any]:
    """A client of the session's cluster, emptied for the test."""
    async with emptied_cluster(redis_cluster_url) as url:
        client: Any = open_redis(url)
        try:
            yield client
        finally:
            await client.aclose()


def _venue() -> str:
    return f"v{uuid.uuid4().hex[:8]}"


async def _pending_entries(client: Any, stream: str, group: str, count: int) -> list[str]:
    ids = [(await client.xadd(stream, {FIELD: f"in-{i}".encode()})).decode() for i in range(count)]
    await client.xgroup_create(stream, group, id="0")
    await client.xreadgroup(group, "c", {stream: ">"}, count=count)
    return ids


async def _pending(client: Any, stream: str, group: str) -> int:
    return int((await client.xpending(stream, group))["pending"])


async def test_a_cluster_url_opens_a_cluster_client_that_pings_and_knows_each_master(cluster: Any) -> None:
    assert is_cluster(cluster)
    assert await checked_ping(cluster, "redis+cluster://127.0.0.1:1")
    assert len(cluster.get_primaries()) == 3
    assert len((await server_run_id(cluster)).split(",")) == 3, "a run id per master"


async def test_a_server_that_is_not_a_cluster_is_refused_by_name(redis_url: str) -> None:
    if not redis_url.startswith("redis://"):
        pytest.skip("the session's Redis is not on TCP")
    host_port = redis_url.removeprefix("redis://").partition("/")[0]
    url = f"redis+cluster://{host_port}"
    client: Any = open_redis(url)
    try:
        with pytest.raises(InvalidArgument, match="not a Redis Cluster"):
            await checked_ping(client, url)
    finally:
        await client.aclose()


def test_a_cluster_url_with_a_database_number_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="only database 0"):
        open_redis("redis+cluster://127.0.0.1:7000,127.0.0.1:7001/3")


@pytest.mark.parametrize("guarded", [False, True], ids=["transaction", "script"])
async def test_the_bars_commit_is_written_whole_on_the_cluster(cluster: Any, guarded: bool) -> None:
    trades = market_stream(_venue(), Channel.TRADES)
    checkpoint = CheckpointStore(cluster, "bars", "test", Retention(10, 1)).key(trades)
    entries = await _pending_entries(cluster, trades, "bars", 3)
    group = GroupWrite(
        appends=[
            Append(bars_stream(tf, trades), tf.label.encode(), 1000) for tf in (Timeframe.S1, Timeframe.M1)
        ],
        state=[SetFields(checkpoint, {"_meta": b"{}"})],
        ack=Ack(trades, "bars", tuple(entries)),
        guard=Marked(f"commit:{tagged(trades)}", "t", 60) if guarded else None,
    )
    assert (await write_group(cluster, group)).outcome is GroupOutcome.WRITTEN
    assert await cluster.xlen(bars_stream(Timeframe.M1, trades)) == 1
    assert await cluster.hget(checkpoint, "_meta") == b"{}"
    assert await _pending(cluster, trades, "bars") == 0


async def test_a_decision_is_written_once_with_its_mark_in_the_slot_of_signals(cluster: Any) -> None:
    (entry,) = await _pending_entries(cluster, SIGNALS, "advisor", 1)
    group = GroupWrite(
        appends=[Append(DECISIONS, b"decision", 1000), Append(INTENTS, b"intent", 1000)],
        ack=Ack(SIGNALS, "advisor", (entry,)),
        guard=Marked(decided_key("advisor", "s1"), "d1", 60),
        otherwise=[Append(ADVISOR_TELEMETRY, b"loose", 1000)],
    )
    assert (await write_group(cluster, group)).outcome is GroupOutcome.WRITTEN
    assert (await write_group(cluster, group)).outcome is GroupOutcome.DONE
    assert await cluster.xlen(DECISIONS) == 1 and await cluster.xlen(INTENTS) == 1
    assert await cluster.get(decided_key("advisor", "s1")) == b"d1"
    assert await _pending(cluster, SIGNALS, "advisor") == 0


@pytest.mark.parametrize("guarded", [False, True], ids=["transaction", "script"])
async def test_a_group_across_two_slots_is_refused_and_writes_nothing(cluster: Any, guarded: bool) -> None:
    """Why the tags: the old layout's bars commit (bars.<tf> of every venue, a venue's trades)."""
    trades = market_stream(_venue(), Channel.TRADES)
    entries = await _pending_entries(cluster, trades, "bars", 1)
    group = GroupWrite(
        appends=[Append("bars.1m", b"m", 1000)],
        ack=Ack(trades, "bars", tuple(entries)),
        guard=Marked(f"commit:{tagged(trades)}", "t", 60) if guarded else None,
    )
    with pytest.raises((RedisClusterException, ResponseError)):
        await write_group(cluster, group)
    assert not await cluster.exists("bars.1m")
    assert await _pending(cluster, trades, "bars") == 1


async def test_at_most_once_appends_of_several_venues_go_in_one_flush(cluster: Any) -> None:
    venues = [_venue() for _ in range(6)]
    streams = [executions_stream(venue) for venue in venues]
    assert len(slot_groups(cluster, streams)) > 1, "the venues' streams are in several slots"
    publisher = Publisher(cluster, Retention(10, 1))
    for stream in streams:
        publisher.add(stream, b"fill", once=(1, 7))
        publisher.add(market_stream(venues[0], Channel.BOOK), b"book")
    ids = await publisher.flush()
    assert all(entry_id is not None for entry_id in ids)
    for stream in streams:
        publisher.add(stream, b"fill", once=(1, 7))
    assert await publisher.flush() == [None] * len(streams), "each point written once"
    assert [await cluster.xlen(stream) for stream in streams] == [1] * len(streams)


async def test_streams_are_found_on_every_master(cluster: Any) -> None:
    streams = {market_stream(_venue(), Channel.TRADES) for _ in range(12)}
    for stream in streams:
        await cluster.xadd(stream, {FIELD: b"x"})
    owners = {cluster.get_node_from_key(stream).name for stream in streams}
    assert len(owners) > 1, "the streams spread over the masters"
    found = {name.decode() async for name in cluster.scan_iter(match="md.*", _type="STREAM")}
    assert found == streams
