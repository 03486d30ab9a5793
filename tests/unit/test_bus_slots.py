"""The bus's key layout on a Redis Cluster: every atomic write's keys share one hash slot.

Each writer's real code runs against a recorder of the keys it sends (a MULTI/EXEC's commands,
the script's KEYS); the slot is redis-py's own computation (redis.crc.key_slot), as a cluster's.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, cast

import pytest
from redis.crc import key_slot

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.advisor.wire import DecisionWriter, decided_key
from trademesh.core.bars.checkpoint import CheckpointStore
from trademesh.core.bars.engine import VenueBars
from trademesh.core.bars.shares import stream_lease_name
from trademesh.core.bars.watermark import WatermarkRules
from trademesh.core.domain.model import Channel, Timeframe
from trademesh.core.platform.bus.append import Append, Retention
from trademesh.core.platform.bus.group import Fenced, GroupWrite, Numbered, script_call
from trademesh.core.platform.bus.names import (
    ADVISOR_TELEMETRY,
    BAR_STREAMS,
    DECISIONS,
    INTENTS,
    POSITION_REQUESTS,
    SIGNALS,
    bars_stream,
    executions_stream,
    journal_stream,
    market_stream,
    slot_tag,
    tagged,
)
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.venue_lease import venue_lease_name
from trademesh.core.platform.replicas.leader import leader_lease_name
from trademesh.core.platform.replicas.lease import Lease, last_key, lease_key

_RETENTION = Retention(10, 1)


class _Keys:
    """A stand-in client that keeps the keys of every atomic write sent to it."""

    def __init__(self) -> None:
        self.groups: list[list[str]] = []

    @asynccontextmanager
    async def pipeline(self, transaction: bool = True) -> Any:
        assert transaction, "the atomic writes are transactions"
        pipe = _Pipe()
        yield pipe
        self.groups.append(pipe.keys)

    def register_script(self, script: str) -> Any:
        async def run(keys: list[str], args: list[Any]) -> list[Any]:
            self.groups.append(list(keys))
            return [b"written"]

        return run


class _Pipe:
    def __init__(self) -> None:
        self.keys: list[str] = []

    def xadd(self, stream: str, *args: Any, **kwargs: Any) -> None:
        self.keys.append(stream)

    def hset(self, key: str, *args: Any, **kwargs: Any) -> None:
        self.keys.append(key)

    def set(self, key: str, *args: Any, **kwargs: Any) -> None:
        self.keys.append(key)

    def xack(self, stream: str, *args: Any) -> None:
        self.keys.append(stream)

    async def execute(self) -> list[bytes]:
        return [b"1-0"] * len(self.keys)


def _slots(keys: list[str]) -> set[int]:
    return {key_slot(key.encode()) for key in keys}


def _bar() -> bus.Bar:
    return bus.Bar(venue="okx-swap", symbol="BTC/USDT", open_time_ns=1, open="1", close="1")


async def test_the_bars_commit_writes_its_bars_checkpoint_and_ack_in_the_trade_streams_slot() -> None:
    client = _Keys()
    stream = market_stream("okx-swap", Channel.TRADES)
    store = CheckpointStore(cast(Any, client), "bars", "test", _RETENTION)
    bars = {timeframe: [_bar()] for timeframe in Timeframe}
    await store.commit(stream, VenueBars("okx-swap", WatermarkRules()), bars, ["1-0", "2-0"])
    # A bars replica's commit, fenced by the stream's lease (trademesh.core.bars.fleet): the script.
    lease = lease_key(stream_lease_name("bars", stream))
    await store.commit(stream, VenueBars("okx-swap", WatermarkRules()), bars, ["3-0"], Fenced(lease, "t"))
    plain, fenced = client.groups
    assert set(plain) == {stream, store.key(stream), *(bars_stream(tf, stream) for tf in Timeframe)}
    assert set(fenced) == {*plain, lease, last_key(lease)}
    assert _slots([*fenced, f"{lease}.fence"]) == {key_slot(stream.encode())} == {key_slot(b"okx-swap")}


async def test_a_decision_with_its_mark_and_the_ack_of_its_signal_is_in_the_slot_of_signals() -> None:
    client: Any = _Keys()  # a stand-in for the client (BusRedis): it keeps the keys
    writer = DecisionWriter(client, "advisor", "test", _RETENTION, 60)
    decision = am.Decision(decision_id="d1", intent=am.Intent(intent_id="i1"))
    event = am.TelemetryEvent()
    await writer.publish_once(decision, [event], [event], 1, "s1", ack="1-0")
    await writer.commit(decision, [event], 1, mark="s2", ack="2-0")
    for keys in client.groups:
        assert set(keys) == {DECISIONS, INTENTS, ADVISOR_TELEMETRY, SIGNALS, keys[3]}
        assert keys[3] in (decided_key("advisor", "s1"), decided_key("advisor", "s2"))
        assert _slots(keys) == {key_slot(SIGNALS.encode())}


def test_ingests_fenced_flush_of_a_venue_names_its_lease_with_its_streams_in_one_slot() -> None:
    """A flush of one venue's batches under its lease: one script call for the market data, one
    for each execution at its point, each naming the lease (trademesh.core.platform.bus.venue_lease)."""
    keys: Any = _Keys()  # a stand-in for the client (BusRedis)
    lease = Lease(keys, venue_lease_name("okx-swap"), "ingest@test", 5000)
    fence = Fenced(lease.key, "ingest@test/1")
    publisher = Publisher(cast(Any, _Keys()), _RETENTION)
    for channel in Channel:
        publisher.add(market_stream("okx-swap", channel), b"batch", fence=fence)
    publisher.add(executions_stream("okx-swap"), b"fills", once=(1, 2), fence=fence)
    publisher._close_run()  # what a flush sends: the open run of fenced entries as one group
    groups = [script_call(group)[0] for group in publisher._queued if isinstance(group, GroupWrite)]
    assert len(groups) == 2 and all(lease.key in keys for keys in groups)
    assert {key_slot(key.encode()) for keys in groups for key in keys} == {key_slot(b"okx-swap")}
    assert key_slot(f"{lease.key}.fence".encode()) == key_slot(b"okx-swap"), "the lease's counter too"


_VENUES = ("sim", "okx-swap", "binance", "deribit", "bybit", "kraken", "coinbase", "binanceusdm")


def test_each_venues_keys_share_its_slot_and_the_venues_spread_over_the_slots() -> None:
    assert len({key_slot(venue.encode()) for venue in _VENUES}) == len(_VENUES)
    for venue in _VENUES:
        trades = market_stream(venue, Channel.TRADES)
        keys = [
            *(market_stream(venue, channel) for channel in Channel),
            executions_stream(venue),
            *(bars_stream(tf, trades) for tf in Timeframe),
            CheckpointStore(cast(Any, _Keys()), "bars", "test", _RETENTION).key(trades),
            lease_key(venue_lease_name(venue)),
        ]
        assert {slot_tag(key) for key in keys} == {venue}, keys
        assert _slots(keys) == {key_slot(venue.encode())}


def test_a_hash_tag_is_the_first_braced_text_and_a_key_hashing_braces_cannot_give_one() -> None:
    assert tagged(SIGNALS) == "{signals}" and tagged(DECISIONS) == "{signals}"
    assert tagged(market_stream("sim", Channel.TRADES)) == "{sim}"
    assert [slot_tag(k) for k in ("a{b}c{d}", "a{}b{c}", "{x", "plain")] == ["b", "a{}b{c}", "{x", "plain"]
    assert BAR_STREAMS == "bars.*"
    with pytest.raises(ValueError, match="braces"):
        tagged("a{}b")


def test_a_checkpoint_key_is_in_its_streams_slot_with_or_without_a_tag() -> None:
    store = CheckpointStore(cast(Any, _Keys()), "bars", "test", _RETENTION)
    for stream in (market_stream("sim", Channel.TRADES), "test.trades"):
        assert key_slot(store.key(stream).encode()) == key_slot(stream.encode())


def test_a_bars_group_with_a_brace_cannot_name_a_checkpoint() -> None:
    with pytest.raises(ValueError, match="brace"):
        CheckpointStore(cast(Any, _Keys()), "bars{x}", "test", _RETENTION)


def test_an_inspectors_journal_write_fenced_by_its_leader_lease_is_in_one_slot() -> None:
    """trademesh.core.inspector.fenced_writes: the journal's entries, with the fence of the instance's
    lease."""
    lease = lease_key(leader_lease_name("inspector", "main"))
    group = GroupWrite(appends=(Append(journal_stream("main"), b"entry"),), fence=Fenced(lease, "t"))
    keys, _ = script_call(group)
    assert set(keys) == {journal_stream("main"), lease, last_key(lease)}
    assert _slots([*keys, f"{lease}.fence"]) == {key_slot(b"main")}


def test_a_detectors_signals_and_position_requests_fenced_by_its_leader_lease_are_in_one_slot() -> None:
    """trademesh.core.detector.app: an evaluation's signals and position requests, one fenced script call,
    numbered by its publisher (a retried flush writes it once) on a key of the lease's slot."""
    lease = lease_key(leader_lease_name("detector", "detector-b", tagged(SIGNALS)))
    publisher = Publisher(cast(Any, _Keys()), _RETENTION)
    publisher.add(SIGNALS, b"signals", fence=Fenced(lease, "t"))
    publisher.add(POSITION_REQUESTS, b"requests", fence=Fenced(lease, "t"))
    publisher._close_run()
    [group] = publisher._queued
    assert isinstance(group, GroupWrite)
    keys, _ = script_call(group)
    assert isinstance(group.guard, Numbered) and group.guard.key.startswith(f"{lease}.runs.")
    assert set(keys) == {SIGNALS, POSITION_REQUESTS, lease, last_key(lease), group.guard.key}
    assert _slots([*keys, f"{lease}.fence"]) == {key_slot(SIGNALS.encode())}
