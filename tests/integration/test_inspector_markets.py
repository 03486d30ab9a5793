"""What the inspector follows, as a real process on a real sim: an intent for a symbol the venue
does not list is refused as such, by the API and from the bus, and the venue's prices keep
coming for the others (the marks go on); an intent for a venue nobody serves is NOT_FOUND and
starts no market stream; the markets intents ask about are bounded and dropped when idle."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis

from tests.bus_signing import signed
from tests.integration.inspector_mesh import InspectorMesh, inspector_mesh, intent
from tests.integration.redis_server import redis_url
from tests.integration.support import metric_samples, until
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.platform.bus.names import INTENTS, journal_stream
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import journal_pb2 as jr

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # sims and inspectors: not the fast tier
__all__ = ["redis_url"]  # fixtures

WAIT_S = 30
# Marks come once a second while the mid moves; a venue's stream lost stops them.
MARKS_WITHIN_S = 20
MARKS = 3


async def _marks(mesh: InspectorMesh) -> int:
    """The marks the inspector has journaled for BTC/USDT so far."""
    client: Any = aioredis.from_url(mesh.bus)
    try:
        entries = await client.xrange(journal_stream("inspector"))
    finally:
        await client.aclose()
    found = 0
    for _, fields in entries:
        entry = jr.JournalEntry.FromString(fields[b"d"])
        found += entry.WhichOneof("input") == "mark" and entry.mark.symbol == "BTC/USDT"
    return found


async def _marks_go_on(mesh: InspectorMesh) -> None:
    """`MARKS` more marks come: the venue's market stream serves BTC/USDT still."""
    before = await _marks(mesh)

    async def more() -> bool | None:
        return True if await _marks(mesh) >= before + MARKS else None

    await until(more, MARKS_WITHIN_S, 0.2, f"{MARKS} more marks of BTC/USDT")


async def _holding_btc(mesh: InspectorMesh) -> None:
    """A BTC/USDT position: marked once a second as the sim's mid moves."""
    mark = await mesh.mark()
    answer = await mesh.submit(intent(stop_loss=str(mark - 1000), take_profit=str(mark + 1000)))
    assert answer.action == rk.RISK_ACTION_ALLOW, answer
    await _marks_go_on(mesh)


async def test_an_intent_for_an_unlisted_symbol_is_refused_and_the_venues_prices_keep_coming(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url) as mesh:
        await _holding_btc(mesh)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await mesh.submit(intent(symbol="DOGE/USDT"))
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        ((field, why),) = bad_request_violations(caught.value)
        assert field == "intent.symbol" and why.startswith("unknown symbol 'DOGE/USDT'"), why
        await _marks_go_on(mesh)
        assert {e.symbol for e in await mesh.events()} == {"BTC/USDT"}, "the refusal is no risk check"


async def test_an_intent_from_the_bus_for_an_unlisted_symbol_is_refused_and_the_marks_go_on(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url) as mesh:
        await _holding_btc(mesh)
        client = aioredis.from_url(mesh.bus)
        try:
            envelope = bus.Envelope(source="test")
            envelope.intents.intents.append(
                intent(intent_id="doge-1", symbol="DOGE/USDT", strategy_id="s1", expires_at_ns=2**62)
            )
            await client.xadd(INTENTS, signed(INTENTS, envelope.SerializeToString()))  # as the advisor
        finally:
            await client.aclose()

        async def refused() -> bool | None:
            blocks = await mesh.events(action=rk.RISK_ACTION_BLOCK)
            said = [e for e in blocks if e.intent_id == "doge-1" and "unknown symbol 'DOGE/USDT'" in e.reason]
            return True if said else None

        await until(refused, WAIT_S, 0.1, "the bus intent refused")
        await _marks_go_on(mesh)


async def test_an_intent_for_a_venue_nobody_serves_is_not_found_and_follows_nothing(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url, start=False) as mesh:
        process = mesh.start("--metrics-port", "0")
        await _holding_btc(mesh)
        for name in ("nope", "nope-2", "sim2"):
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await mesh.submit(intent(venue=name))
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            assert f"no venue '{name}'" in (caught.value.details() or "")
        metrics = await _scrape(process.info["metrics_port"])
        assert metric_samples(metrics, "trademesh_inspector_followed_venues") == {"": 1.0}
        assert metric_samples(metrics, "trademesh_inspector_followed_markets") == {"": 1.0}
        assert "nope" not in mesh.log()
        assert [e.venue for e in await mesh.events()] == ["sim"]


async def _scrape(port: int) -> str:
    """The process's /metrics page."""

    def get() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            body: bytes = response.read()
        return body.decode()

    return await asyncio.to_thread(get)
