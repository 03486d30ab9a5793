"""The inspector's journal snapshots (issue 37, item 4): a restart replays from the latest
snapshot, so its replay is bounded however old the journal is; the entries before a snapshot
are trimmed, but never one a consumer group (the recorder's) has still to read. Real Redis; the
restart test with a real sim venue and inspector processes."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis

from tests.integration.inspector_mesh import InspectorMesh, inspector_mesh, intent
from tests.integration.mesh import redis_db
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from tests.journal_support import make_journal
from tests.unit.test_inspector_snapshot import dump
from trademesh.core.inspector.audit import Audit
from trademesh.core.inspector.driver import apply_entry, new_core
from trademesh.core.inspector.input_journal import InputJournal
from trademesh.core.inspector.snapshots import Snapshots
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import journal_pb2 as jr
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["redis_url"]

pytestmark = pytest.mark.integration
D = Decimal
WAIT_S = 30.0
_STREAM = "inspector.journal.{test}"


async def _fed(journal: InputJournal, entries: list[jr.JournalEntry], every: int) -> Snapshots:
    """The entries appended and applied as the live shell does, snapshotting every `every`."""
    snapshots = Snapshots(journal, every)
    core, audit = new_core(entries[0]), Audit()
    snapshots.applied(await journal.append(entries[0]), entries[0])
    for entry in entries[1:]:
        entry_id = await journal.append(entry)
        audit.observe(entry, apply_entry(core, entry))
        snapshots.applied(entry_id, entry)
        snapshots.take(core, audit)
        await snapshots.close()  # each written before the next entry: the test counts them
    return snapshots


async def test_a_restart_reads_the_latest_snapshot_and_the_entries_after_it_only(redis_url: str) -> None:
    entries = make_journal(600, intent_every_s=6, rich=True)
    async with redis_db(redis_url) as url:
        redis: Any = aioredis.Redis.from_url(url)
        try:
            journal = InputJournal(redis, _STREAM)
            snapshots = await _fed(journal, entries, every=100)
            assert snapshots.taken == (len(entries) - 1) // 100
            assert await redis.xlen(_STREAM) < 100 + 2, "the entries before the latest snapshot trimmed"
            read = [entry async for _, entry in journal.entries()]
        finally:
            await redis.aclose()
    assert read[0].WhichOneof("input") == "snapshot" and len(read) <= 100 + 1
    restored = new_core(read[0])
    for entry in read[1:]:
        apply_entry(restored, entry)
    whole = new_core(entries[0])
    for entry in entries[1:]:
        apply_entry(whole, entry)
    assert dump(restored) == dump(whole)


async def test_entries_a_consumer_group_has_not_read_are_never_trimmed(redis_url: str) -> None:
    entries = make_journal(300, intent_every_s=6)
    async with redis_db(redis_url) as url:
        redis: Any = aioredis.Redis.from_url(url)
        try:
            await redis.xgroup_create(_STREAM, "recorder", id="0", mkstream=True)
            journal = InputJournal(redis, _STREAM)
            snapshots = await _fed(journal, entries, every=50)
            assert snapshots.taken > 0 and snapshots.trimmed == 0
            assert await redis.xlen(_STREAM) == len(entries) + snapshots.taken
            # The recorder reads half and acknowledges a part of that: what it has not
            # acknowledged stays, and what it has, goes at the next snapshot.
            got = await redis.xreadgroup("recorder", "r1", {_STREAM: ">"}, count=len(entries) // 2)
            read_ids = [entry_id for entry_id, _ in got[0][1]]
            await redis.xack(_STREAM, "recorder", *read_ids[: len(read_ids) // 2])
            first_pending = read_ids[len(read_ids) // 2]
            dropped = await journal.trim((10**15, 0))
            assert dropped > 0
            oldest = (await redis.xrange(_STREAM, count=1))[0][0]
            assert oldest == first_pending
        finally:
            await redis.aclose()


async def test_a_killed_inspector_restarts_from_its_latest_snapshot(tmp_path: Path, redis_url: str) -> None:
    async with inspector_mesh(tmp_path, redis_url, "--snapshot-every", "20") as mesh:
        mark = await mesh.mark()
        entry = await mesh.submit(intent(stop_loss=str(mark - 1000), take_profit=str(mark + 1000)))
        assert entry.order.status == tf.ORDER_STATUS_FILLED
        blocked = [intent(size="100", intent_id=f"oversized-{n}") for n in range(60)]
        for each in blocked:
            assert (await mesh.submit(each)).action == rk.RISK_ACTION_BLOCK
        await until(lambda: _trimmed(mesh), WAIT_S, 0.1, "a snapshot, and the journal trimmed before it")
        before = await mesh.positions()
        await mesh.stop(kill=True)
        mesh.start()
        after = await mesh.positions()
        assert [(p.size, p.stop_loss, p.take_profit) for p in after] == [
            (p.size, p.stop_loss, p.take_profit) for p in before
        ]
        replayed = [int(n) for n in re.findall(r"(\d+) journal entries replayed", mesh.log())]
        # 60 intents and more were journaled; the restart read the latest snapshot and its tail.
        assert len(replayed) == 2 and replayed[-1] <= 20 + 10, replayed
        with pytest.raises(grpc.aio.AioRpcError) as again:  # handled before the snapshot: known still
            await mesh.submit(blocked[0])
        assert again.value.code() == grpc.StatusCode.FAILED_PRECONDITION


async def _trimmed(mesh: InspectorMesh) -> bool | None:
    """The journal holds a snapshot and no longer its start entry."""
    redis: Any = aioredis.Redis.from_url(mesh.bus)
    try:
        (key,) = [key async for key in redis.scan_iter(match="inspector.journal.*")]
        kinds = {jr.JournalEntry.FromString(f[b"d"]).WhichOneof("input") for _, f in await redis.xrange(key)}
        return True if "snapshot" in kinds and "start" not in kinds else None
    finally:
        await redis.aclose()
