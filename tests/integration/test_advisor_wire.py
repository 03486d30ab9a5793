"""The advisor's outputs on a real Redis (core.advisor.wire): a signal's decision is published
once, by its first decision, whatever delivered the signal again."""

from __future__ import annotations

from typing import Any

import pytest
import redis.asyncio as aioredis

from core.advisor.wire import BusWriter, decided_key
from core.bus.codec import decode
from core.bus.names import DECISIONS, INTENTS
from core.bus.publisher import Retention
from tests.integration.mesh import redis_db
from tests.integration.redis_server import redis_url
from trademesh.advisor.v1 import messages_pb2 as am

pytestmark = pytest.mark.integration
__all__ = ["redis_url"]  # the fixture, for pytest

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


async def test_a_signal_is_published_once_by_its_first_decision(redis_url: str) -> None:
    async with redis_db(redis_url) as url:
        client: Any = aioredis.Redis.from_url(url)
        try:
            writer = BusWriter(
                client, "advisor", "test", Retention(entries_per_s=10, outage_minutes=1), _TTL_S
            )
            assert await writer.publish_once(_decision("d1", "s1"), 1, "s1")
            # The same decision again (an attempt whose answer was lost): published, once.
            assert await writer.publish_once(_decision("d1", "s1"), 2, "s1")
            # Another decision of the signal (it came twice, or another run decided it): dropped.
            assert not await writer.publish_once(_decision("d2", "s1"), 3, "s1")
            assert await writer.publish_once(_decision("d3", "s2", intent=False), 4, "s2")
            assert await _published(client) == (["d1", "d3"], ["intent-d1"])
            assert await writer.decided(["s1", "s2", "s3"]) == {"s1", "s2"}
            assert 0 < await client.ttl(decided_key("advisor", "s1")) <= _TTL_S
        finally:
            await client.aclose()


async def test_a_signal_marked_before_is_not_published(redis_url: str) -> None:
    """A mark of the former format (b"1", set by `commit`) counts as another decision's."""
    async with redis_db(redis_url) as url:
        client: Any = aioredis.Redis.from_url(url)
        try:
            writer = BusWriter(
                client, "advisor", "test", Retention(entries_per_s=10, outage_minutes=1), _TTL_S
            )
            await writer.commit(None, [], 1, mark="s1")
            assert not await writer.publish_once(_decision("d1", "s1"), 2, "s1")
            assert await _published(client) == ([], [])
        finally:
            await client.aclose()
