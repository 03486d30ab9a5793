"""The advisor's outputs on a real Redis and on a Redis Cluster (trademesh.core.advisor.wire): a signal's
decision is published once, by its first decision, whatever delivered the signal again, with its
telemetry and the acknowledgement of its entry in the same step."""

from __future__ import annotations

from typing import Any

import pytest

from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.core.advisor.wire import DecisionWriter, decided_key
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.names import ADVISOR_TELEMETRY, DECISIONS, INTENTS, SIGNALS
from trademesh.core.platform.bus.publisher import Retention
from trademesh.core.platform.bus.redis import open_redis

pytestmark = pytest.mark.integration

_TTL_S = 60
_RETENTION = Retention(entries_per_s=10, outage_minutes=1)


def _decision(decision_id: str, signal_id: str, *, intent: bool = True) -> am.Decision:
    decision = am.Decision(decision_id=decision_id, signal_id=signal_id)
    decision.outcome = am.OUTCOME_INTENT if intent else am.OUTCOME_BLOCKED
    if intent:
        decision.intent.intent_id = f"intent-{decision_id}"
        decision.intent.decision_id = decision_id
    return decision


async def _published(client: Any) -> tuple[list[str], list[str]]:
    decisions = [
        d.decision_id for _, f in await client.xrange(DECISIONS) for d in decode(f).decisions.decisions
    ]
    intents = [i.intent_id for _, f in await client.xrange(INTENTS) for i in decode(f).intents.intents]
    return decisions, intents


async def test_a_signal_is_published_once_by_its_first_decision(bus_url: str) -> None:
    client: Any = open_redis(bus_url)
    try:
        writer = DecisionWriter(
            client, "advisor", "test", Retention(entries_per_s=10, outage_minutes=1), _TTL_S
        )
        assert await writer.publish_once(_decision("d1", "s1"), [], [], 1, "s1")
        # The same decision again (an attempt whose answer was lost): published, once.
        assert await writer.publish_once(_decision("d1", "s1"), [], [], 2, "s1")
        # Another decision of the signal (it came twice, or another run decided it): dropped.
        assert not await writer.publish_once(_decision("d2", "s1"), [], [], 3, "s1")
        assert await writer.publish_once(_decision("d3", "s2", intent=False), [], [], 4, "s2")
        assert await _published(client) == (["d1", "d3"], ["intent-d1"])
        assert await writer.decided(["s1", "s2", "s3"]) == {"s1", "s2"}
        assert 0 < await client.ttl(decided_key("advisor", "s1")) <= _TTL_S
    finally:
        await client.aclose()


async def test_a_signal_marked_before_is_not_published(bus_url: str) -> None:
    """A mark of the former format (b"1", set by `commit`) counts as another decision's."""
    client: Any = open_redis(bus_url)
    try:
        writer = DecisionWriter(
            client, "advisor", "test", Retention(entries_per_s=10, outage_minutes=1), _TTL_S
        )
        await writer.commit(None, [], 1, mark="s1")
        assert not await writer.publish_once(_decision("d1", "s1"), [], [], 2, "s1")
        assert await _published(client) == ([], [])
    finally:
        await client.aclose()


def _event(event_id: str, decision_id: str = "") -> am.TelemetryEvent:
    return am.TelemetryEvent(event_id=event_id, decision_id=decision_id, fields={"name": "x"})


async def _telemetry(client: Any) -> list[list[str]]:
    """Each telemetry entry's event ids."""
    return [
        [e.event_id for e in decode(f).advisor_telemetry.events]
        for _, f in await client.xrange(ADVISOR_TELEMETRY)
    ]


async def _pending_entry(client: Any) -> str:
    """An entry of `signals` delivered to the group and not acknowledged."""
    entry_id: bytes = await client.xadd(SIGNALS, {b"e": b"1"})
    await client.xgroup_create(SIGNALS, "advisor", id="0", mkstream=True)
    await client.xreadgroup("advisor", "c", {SIGNALS: ">"})
    return entry_id.decode()


async def test_the_telemetry_and_the_acknowledgement_go_with_the_decision(bus_url: str) -> None:
    client: Any = open_redis(bus_url)
    try:
        writer = DecisionWriter(client, "advisor", "test", _RETENTION, _TTL_S)
        entry_id = await _pending_entry(client)
        events, loose = [_event("e1", "d1"), _event("e2", "d1")], [_event("a1")]
        assert await writer.publish_once(_decision("d1", "s1"), events, loose, 1, "s1", entry_id)
        assert await _published(client) == (["d1"], ["intent-d1"])
        assert await _telemetry(client) == [["e1", "e2", "a1"]]
        assert (await client.xpending(SIGNALS, "advisor"))["pending"] == 0
    finally:
        await client.aclose()


async def test_a_dropped_decision_writes_only_the_events_of_no_decision_and_the_ack(bus_url: str) -> None:
    client: Any = open_redis(bus_url)
    try:
        writer = DecisionWriter(client, "advisor", "test", _RETENTION, _TTL_S)
        entry_id = await _pending_entry(client)
        await writer.commit(None, [], 1, mark="s1")
        dropped = writer.publish_once(
            _decision("d2", "s1"), [_event("e1", "d2")], [_event("a1")], 2, "s1", entry_id
        )
        assert not await dropped
        assert await _published(client) == ([], [])
        assert await _telemetry(client) == [["a1"]]
        assert (await client.xpending(SIGNALS, "advisor"))["pending"] == 0
    finally:
        await client.aclose()
