"""An inspector killed between journaling an input and publishing what it made (the chaos run's
liquidation.venue notice lost, seed 3528143686): the restart's replay publishes it, once, named by
the input's journal entry. Real Redis, a real sim venue and inspector processes; the journal is
left as such a kill leaves it (the input appended, no entry of the stream `risk` for it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.integration.inspector_mesh import AUTH, InspectorMesh, inspector_mesh
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.inspector.input_journal import InputJournal, entry_text
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.names import RISK, journal_stream
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import journal_pb2 as jr

__all__ = ["redis_url"]

pytestmark = pytest.mark.integration
WAIT_S = 30.0
JOURNAL = journal_stream("inspector")


async def _records(mesh: InspectorMesh) -> list[bus.RiskEvents]:
    redis: Any = aioredis.Redis.from_url(mesh.bus)
    try:
        return [decode(fields).risk for _, fields in await redis.xrange(RISK)]
    finally:
        await redis.aclose()


async def _journaled_unpublished(mesh: InspectorMesh, command: jr.JournalCommand) -> str:
    """The input appended to the journal as the killed inspector had, nothing published."""
    redis: Any = aioredis.Redis.from_url(mesh.bus)
    try:
        entry = jr.JournalEntry(now_ns=time.time_ns(), command=command)
        return entry_text(await InputJournal(redis, JOURNAL).append(entry))
    finally:
        await redis.aclose()


def _naming(records: list[bus.RiskEvents], entry_id: str) -> list[bus.RiskEvents]:
    return [r for r in records if r.journal == JOURNAL and r.journal_entry == entry_id]


async def test_a_restart_publishes_what_an_input_journaled_before_a_kill_made_once(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url) as mesh:
        live = await mesh.stub.SetMode(
            rk.SetModeRequest(mode=rk.MODE_STAND_DOWN, reason="live"), metadata=AUTH, timeout=WAIT_S
        )
        assert live.state == rk.RISK_STATE_STANDING_DOWN
        named = [r for r in await _records(mesh) if r.journal == JOURNAL and r.journal_entry]
        assert named and named[-1].transitions, "a live publication names its journal entry"
        await mesh.stop(kill=True)
        resume = jr.JournalCommand(kind=jr.JournalCommand.KIND_RESUME, reason="journaled, then killed")
        entry_id = await _journaled_unpublished(mesh, resume)
        assert _naming(await _records(mesh), entry_id) == []
        mesh.start()

        async def published() -> list[bus.RiskEvents] | None:
            return _naming(await _records(mesh), entry_id) or None

        found = await until(published, WAIT_S, 0.1, "the replayed input's transition published")
        assert [t.after for t in found[0].transitions] == [rk.RISK_STATE_ACTIVE]
        assert (await mesh.state()).state == rk.RISK_STATE_ACTIVE
        assert "1 replayed inputs' events were never published" in mesh.log()
        await mesh.stop(kill=True)
        mesh.start()
        await mesh.state()  # serving: its replay and publication are done
        assert len(_naming(await _records(mesh), entry_id)) == 1, "published again at a second restart"
