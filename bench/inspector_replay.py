"""How long a restarted inspector takes to rebuild its core from its journal (issue 37, item 4).

A journal of `--hours` of trading is made first (tests/journal_support.py: a real InspectorCore
trading two markets against a toy venue, a mark a second per market, an intent every
`--intent-every-s` seconds), written to a Redis stream (database `--redis-db`), then read back and
applied as `Runtime.start` does (trademesh.core.inspector.input_journal, driver, audit), timed,
`--repeats` times:

- whole:    the journal without a snapshot: every entry since its start (before this issue);
- snapshot: the same journal with a snapshot `--tail` entries before its end (the shell takes
            one every 5,000 entries, so a restart replays 2,500 after it on average, 5,000 at
            most): the snapshot restored, then the tail.

    .venv/bin/python bench/inspector_replay.py --hours 24 --repeats 5
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

import redis.asyncio as aioredis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common as common

from tests.journal_support import make_journal
from trademesh.core.inspector.audit import Audit
from trademesh.core.inspector.driver import apply_entry, new_core
from trademesh.core.inspector.engine.core import InspectorCore
from trademesh.core.inspector.input_journal import InputJournal, parse_id
from trademesh.core.inspector.snapshot import to_snapshot
from trademesh.core.inspector.snapshots import SNAPSHOT_EVERY
from trademesh.core.platform.config.env import REDIS_URL
from trademesh.risk.v1 import journal_pb2 as jr

_STREAM = "inspector.journal.bench"


async def write(redis: aioredis.Redis, entries: list[jr.JournalEntry]) -> list[bytes]:
    await redis.delete(_STREAM)
    ids: list[bytes] = []
    for i in range(0, len(entries), 1000):
        async with redis.pipeline(transaction=False) as pipe:
            for entry in entries[i : i + 1000]:
                pipe.xadd(_STREAM, {b"d": entry.SerializeToString()})
            ids += await pipe.execute()
    return ids


async def add_snapshot(
    redis: aioredis.Redis, entries: list[jr.JournalEntry], ids: list[bytes], tail: int
) -> int:
    """A snapshot of the core after all but the last `tail` entries, appended; its size."""
    cut = len(entries) - tail
    core, audit = new_core(entries[0]), Audit()
    for entry in entries[1:cut]:
        audit.observe(entry, apply_entry(core, entry))
    snap = to_snapshot(core, audit, entries[0], entries[0].start.policies, parse_id(ids[cut - 1]))
    body = jr.JournalEntry(now_ns=entries[cut - 1].now_ns, snapshot=snap).SerializeToString()
    await redis.xadd(_STREAM, {b"d": body})
    return len(body)


async def replay(redis: aioredis.Redis) -> tuple[float, int, InspectorCore]:
    """The restart's replay (Runtime.start's loop): seconds, entries, the core rebuilt."""
    began = time.perf_counter()
    core: InspectorCore | None = None
    audit = Audit()
    count = 0
    async for _, entry in InputJournal(redis, _STREAM).entries():
        if core is None:
            core = new_core(entry)
        else:
            audit.observe(entry, apply_entry(core, entry))
        count += 1
    assert core is not None
    return time.perf_counter() - began, count, core


async def timed(redis: aioredis.Redis, repeats: int) -> tuple[float, list[float], int]:
    times, count = [], 0
    for _ in range(repeats):
        seconds, count, _ = await replay(redis)
        times.append(seconds)
    return statistics.median(times), times, count


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--intent-every-s", type=int, default=20)
    parser.add_argument("--tail", type=int, default=SNAPSHOT_EVERY)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--redis-db", type=int, default=14)
    args = parser.parse_args()
    made = time.perf_counter()
    entries = make_journal(int(args.hours * 3600), intent_every_s=args.intent_every_s, rich=True)
    print(f"journal: {len(entries):,} entries for {args.hours} h, made in {time.perf_counter() - made:.1f} s")
    url = os.environ.get(REDIS_URL, "redis://127.0.0.1:6379/0").rsplit("/", 1)[0]
    with common.claimed_redis_db(args.redis_db):
        redis = aioredis.Redis.from_url(f"{url}/{args.redis_db}")
        try:
            ids = await write(redis, entries)
            whole = await timed(redis, args.repeats)
            size = await add_snapshot(redis, entries, ids, min(args.tail, len(entries) - 1))
            tail = await timed(redis, args.repeats)
        finally:
            await redis.delete(_STREAM)
            await redis.aclose()
    for name, (median, times, count) in (("whole", whole), ("snapshot", tail)):
        runs = ", ".join(f"{t:.3f}" for t in times)
        print(f"{name:>8}: {count:,} entries read, median {median:.3f} s (runs {runs})")
    print(f"snapshot entry: {size:,} bytes; whole / snapshot: {whole[0] / tail[0]:.1f}x")


if __name__ == "__main__":
    asyncio.run(main())
