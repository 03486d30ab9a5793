"""Issue 56: the bus is no order entry without a credential. A real inspector on a real sim venue
and Redis acts only on the entries of `intents.{signals}` the advisor's key signed and on those of
`position_requests.{signals}` the detector's key signed: anything else written straight to the
streams (unsigned, signed with another key, signed by the other writer) places nothing, is
acknowledged, counted (trademesh_inspector_bus_refused_total) and reported (a NOTICE risk event,
policy `bus.refused`, sent to the operator at most once a minute). An inspector without a writer's
key refuses all of that writer's entries and says so at start."""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.bus_signing import signed, signed_by
from tests.integration.inspector_mesh import InspectorMesh, inspector_mesh, intent
from tests.integration.redis_server import redis_url
from tests.integration.support import metrics_page, until
from tests.integration.test_inspector_process import Receiver
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.platform.bus.codec import FIELD
from trademesh.core.platform.bus.names import INTENTS, POSITION_REQUESTS
from trademesh.core.platform.bus.signing import ADVISOR, Signer
from trademesh.core.platform.config.env import DETECTOR_SIGNING_KEY, NOTIFY_WEBHOOK_URL
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.signal.v1 import signal_pb2 as sig

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a sim and an inspector
__all__ = ["redis_url"]  # fixtures

WAIT_S = 30
REFUSED = "trademesh_inspector_bus_refused_total"


def _intents(intent_id: str) -> bytes:
    envelope = bus.Envelope(source="test", ts_publish_ns=time.time_ns())
    envelope.intents.intents.append(intent(intent_id=intent_id, strategy_id="s1", expires_at_ns=2**62))
    return envelope.SerializeToString()


def _close(strategy_id: str) -> bytes:
    """A close of `strategy_id`'s position on the sim's BTC/USDT, as its detector asks it."""
    now = time.time_ns()
    request = sig.PositionRequest(
        request_id=uuid.uuid4().hex, venue="sim", symbol="BTC/USDT", action=sig.POSITION_ACTION_CLOSE,
        strategy_id=strategy_id, ts_request_ns=now, ts_event_ns=now,
    )  # fmt: skip
    envelope = bus.Envelope(source="test", ts_publish_ns=now)
    envelope.position_requests.requests.append(request)
    return envelope.SerializeToString()


async def _refusals(mesh: InspectorMesh, count: int) -> list[dict[str, str]] | None:
    """The `bus.refused` notices' values, oldest first, once there are `count`."""
    events = await mesh.events(action=rk.RISK_ACTION_NOTICE, policy="bus.refused")
    if len(events) < count:
        return None
    return [{v.name: v.value for v in e.values} for e in reversed(events)]


async def _counted(port: int) -> dict[tuple[str, str], float]:
    """The refusals counted, by (stream, reason), those above 0."""
    samples: dict[tuple[str, str], float] = {}
    for line in (await metrics_page(port)).splitlines():
        if line.startswith(REFUSED + "{"):
            labels, _, value = line.rpartition(" ")
            pairs = dict(part.split("=", 1) for part in labels[len(REFUSED) + 1 : -1].split(","))
            if float(value):
                samples[(pairs["stream"].strip('"'), pairs["reason"].strip('"'))] = float(value)
    return samples


async def _allowed(mesh: InspectorMesh, intent_id: str) -> list[str] | None:
    """The intents allowed, once `intent_id` is among them."""
    allowed = [e.intent_id for e in await mesh.events(action=rk.RISK_ACTION_ALLOW)]
    return allowed if intent_id in allowed else None


async def _position(mesh: InspectorMesh, size: str) -> bool | None:
    return True if await mesh.venue_position() == Decimal(size) else None


async def _all_handled(client: Any, stream: str, last: bytes) -> bool | None:
    """True once the inspector's group has read `stream` up to `last` and acknowledged it all."""
    groups = await client.xinfo_groups(stream)
    group = next((g for g in groups if g["name"] in (b"inspector", "inspector")), None)
    if group is None or group["pending"]:
        return None
    delivered = group["last-delivered-id"]
    delivered = delivered.decode() if isinstance(delivered, bytes) else delivered
    return True if _id(delivered) >= _id(last.decode()) else None


def _id(text: str) -> tuple[int, int]:
    millis, sequence = text.split("-")
    return int(millis), int(sequence)


async def test_only_entries_their_allowed_writer_signed_are_acted_on(tmp_path: Path, redis_url: str) -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        async with inspector_mesh(tmp_path, redis_url, "--metrics-port", "0", start=False) as mesh:
            process = mesh.start(env={NOTIFY_WEBHOOK_URL: f"{receiver.url}/hook"})
            client: Any = aioredis.Redis.from_url(mesh.bus)
            try:
                # An outsider's intents: one unsigned, one signed as the advisor with a key of its own.
                await client.xadd(INTENTS, {FIELD: _intents("forged-unsigned")})
                forged = Signer(ADVISOR, b"an outsider's key, not the advisor's")
                await client.xadd(INTENTS, signed_by(forged, INTENTS, _intents("forged-key")))
                # The advisor's own, after them: once it is placed, both were read before it.
                last = await client.xadd(INTENTS, signed(INTENTS, _intents("signed-1")))
                await until(lambda: _all_handled(client, INTENTS, last), WAIT_S, 0.05, "all three handled")
                allowed = await until(
                    lambda: _allowed(mesh, "signed-1"), WAIT_S, 0.05, "the signed one allowed"
                )
                assert sorted(allowed) == ["signed-1"]
                await until(lambda: _position(mesh, "0.01"), WAIT_S, 0.1, "the signed intent placed")

                # A close of s1's position signed with the advisor's key (not the detector's,
                # the one writer of position requests): refused, the position stays.
                await client.xadd(POSITION_REQUESTS, signed(POSITION_REQUESTS, _close("s1"), writer=ADVISOR))
                found = await until(lambda: _refusals(mesh, 3), WAIT_S, 0.05, "three refusals")
                assert [(f["stream"], f["reason"]) for f in found] == [
                    (INTENTS, "unsigned"), (INTENTS, "signature"), (POSITION_REQUESTS, "writer"),
                ]  # fmt: skip
                assert found[0]["writer"] == "''" and found[1]["writer"] == found[2]["writer"] == "'advisor'"
                assert await mesh.venue_position() == Decimal("0.01")
                # The detector's own close of it: carried out.
                await client.xadd(POSITION_REQUESTS, signed(POSITION_REQUESTS, _close("s1")))
                await until(lambda: _position(mesh, "0"), WAIT_S, 0.1, "the signed close carried out")
            finally:
                await client.aclose()
            assert await _counted(process.info["metrics_port"]) == {
                (INTENTS, "unsigned"): 1, (INTENTS, "signature"): 1, (POSITION_REQUESTS, "writer"): 1,
            }  # fmt: skip
            # The operator hears of it, once for the three (at most once a minute).

            async def notified() -> list[dict[str, Any]] | None:
                return receiver.webhook or None

            hooks = await until(notified, WAIT_S, 0.05, "the operator's notice")
            assert [h["policy"] for h in hooks] == ["bus.refused"] and hooks[0]["action"] == "notice"
            assert "forged" not in mesh.log()  # nothing of an outsider's content is echoed
    finally:
        await receiver.stop()


async def test_an_inspector_without_a_writers_key_refuses_that_writers_entries(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url, start=False) as mesh:
        mesh.start(env={DETECTOR_SIGNING_KEY: ""})
        client: Any = aioredis.Redis.from_url(mesh.bus)
        try:
            await client.xadd(POSITION_REQUESTS, signed(POSITION_REQUESTS, _close("s1")))
            (found,) = await until(lambda: _refusals(mesh, 1), WAIT_S, 0.05, "the refusal")
        finally:
            await client.aclose()
        assert (found["stream"], found["reason"]) == (POSITION_REQUESTS, "no_key")
        # Said at start, naming the variable.
        assert f"{DETECTOR_SIGNING_KEY} is unset" in mesh.log()
        # No request was carried out (a close of a strategy holding nothing would be a BLOCK).
        assert await mesh.events(action=rk.RISK_ACTION_BLOCK) == []
