"""A delisting reaching a real inspector process (docs/bus.md, "Instruments"): the venue's
instrument stream says BTC/USDT is delisted (written by the relay ingest writes it with), the
inspector refuses a new entry there with its reason, says it with a NOTICE, and takes entries
again once the market is listed again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from core.foundations.bus.instruments import InstrumentRelay
from tests.integration.inspector_mesh import EVENT_WAIT_S, InspectorMesh, inspector_mesh, intent
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.common.v1 import common_pb2 as common
from trademesh.risk.v1 import inspector_pb2 as rk

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # a sim and an inspector
__all__ = ["redis_url"]  # fixtures


def _listed(*symbols: str) -> list[common.Instrument]:
    return [common.Instrument(venue="sim", symbol=s, tick_size="0.01", lot_size="0.00001") for s in symbols]


async def _notices(mesh: InspectorMesh, count: int) -> list[rk.RiskEvent] | None:
    found = [e for e in await mesh.events(policy="instrument.delisted") if e.action == rk.RISK_ACTION_NOTICE]
    return found if len(found) >= count else None


async def test_a_delisted_market_takes_no_new_entry_and_the_inspector_says_so(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url) as mesh:
        client: Any = aioredis.Redis.from_url(mesh.bus)

        async def publish(stream: str, envelope: bytes) -> None:
            await client.xadd(stream, {b"d": envelope})

        listing = ["BTC/USDT", "ETH/USDT"]

        async def list_all() -> list[common.Instrument]:
            return _listed(*listing)

        relay = InstrumentRelay("sim", publish, "ingest/test", 1)
        try:
            await relay.poll_with(list_all)  # the venue's list, as ingest first publishes it
            listing.remove("BTC/USDT")
            await relay.poll_with(list_all)
            [notice] = await until(lambda: _notices(mesh, 1), EVENT_WAIT_S, 0.2, "the delisting's notice")
            assert (notice.venue, notice.symbol) == ("sim", "BTC/USDT")
            assert notice.reason == "BTC/USDT delisted at sim: new entries there are refused"

            answer = await mesh.submit(intent())
            assert answer.action == rk.RISK_ACTION_BLOCK
            assert [(e.policy, e.reason) for e in answer.reasons] == [
                (
                    "instrument.delisted",
                    "BTC/USDT is delisted at sim: no new entries (the venue no longer lists it)",
                )
            ]
            assert await mesh.open_orders() == [] and await mesh.venue_position() == 0

            listing.append("BTC/USDT")
            await relay.poll_with(list_all)
            again = await until(lambda: _notices(mesh, 2), EVENT_WAIT_S, 0.2, "the listing's notice")
            assert any(e.reason == "BTC/USDT listed again at sim: entries are taken again" for e in again)
            assert (await mesh.submit(intent())).action == rk.RISK_ACTION_ALLOW
        finally:
            await client.aclose()
