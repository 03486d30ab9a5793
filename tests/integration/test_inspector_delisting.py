"""Instrument changes reaching a real inspector process. A delisting (docs/bus.md, "Instruments"): the venue's
instrument stream says BTC/USDT is delisted (written by the relay ingest writes it with), the
inspector refuses a new entry there with its reason, says it with a NOTICE, and takes entries
again once the market is listed again."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.integration.inspector_mesh import EVENT_WAIT_S, InspectorMesh, inspector_mesh, intent
from tests.integration.mesh import stream_entries
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, until
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.instruments import InstrumentRelay
from trademesh.core.platform.bus.names import journal_stream
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import journal_pb2 as jr

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


async def test_a_changed_lot_size_reaches_the_inspectors_facts(
    tmp_path: Path, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The sim's lot size of BTC/USDT changes (its listing file); the change on the venue's
    instrument stream has the inspector ask the venue again and journal the new facts of a market
    it holds facts of (protection is sized to them), without an intent to make it ask."""
    listing = tmp_path / "listing.json"
    monkeypatch.setenv("TRADEMESH_SIM_LISTING", str(listing))  # the sim's listing control
    async with inspector_mesh(tmp_path, redis_url) as mesh:
        client: Any = aioredis.Redis.from_url(mesh.bus)
        stubs = mesh.venue.stubs()

        async def publish(stream: str, envelope: bytes) -> None:
            await client.xadd(stream, {b"d": envelope})

        async def list_all() -> list[common.Instrument]:  # the venue's answer, as ingest reads it
            answer = await stubs.md.ListInstruments(md.ListInstrumentsRequest(), timeout=CALL_TIMEOUT_S)
            return list(answer.instruments)

        async def lots() -> list[str]:
            entries = await stream_entries(mesh.bus, journal_stream("*"))
            journal = [jr.JournalEntry.FromString(fields[b"d"]) for fields in entries]
            return [
                i.lot_size
                for e in journal
                if e.WhichOneof("input") == "instruments"
                for i in e.instruments.instruments
                if i.symbol == "BTC/USDT"
            ]

        relay = InstrumentRelay("sim", publish, "ingest/test", 1)
        try:
            await relay.poll_with(list_all)
            assert (await mesh.submit(intent())).action == rk.RISK_ACTION_ALLOW  # its facts learnt
            assert await lots() == ["0.00001"]
            listing.write_text(json.dumps({"rules": {"BTC/USDT": {"lot_size": "0.001"}}}))
            [changed] = await relay.poll_with(list_all)
            assert list(changed.fields) == ["lot_size"]

            async def relearnt() -> list[str] | None:
                found = await lots()
                return found if len(found) == 2 else None

            assert await until(relearnt, EVENT_WAIT_S, 0.2, "the new lot size journaled") == [
                "0.00001",
                "0.001",
            ]
        finally:
            await stubs.close()
            await client.aclose()
