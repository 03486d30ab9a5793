"""Bars replicas dividing trade streams (real processes, real Redis): a replica paused past its
lease (SIGSTOP) has its stream taken over, and once it wakes (SIGCONT) it publishes nothing more
for it: every live bar is published once and equals a group-by of the trades."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis

from tests.integration.bars_support import (
    BarsProcess,
    BusTape,
    Trade,
    bars_positions,
    scope,
    start_bars,
    synthetic,
    wait_closed_bars,
)
from tests.integration.redis_server import redis_url
from tests.integration.support import until
from trademesh.core.bars.shares import stream_lease_name
from trademesh.core.platform.replicas.lease import lease_key

pytestmark = pytest.mark.integration
__all__ = ["redis_url", "scope"]  # fixtures, for pytest

S = 1_000_000_000
SYMBOLS = ["AAA/USDT", "BBB/USDT"]
TTL_MS = 1000


async def holder_pid(redis: aioredis.Redis, stream: str) -> int | None:
    value: Any = await redis.get(lease_key(stream_lease_name("bars", stream)))
    return None if value is None else int(value.decode().split("@", 1)[1].split(":")[1])


def pid(process: BarsProcess) -> int:
    assert process.service is not None
    return process.service.process.pid


async def feed(tapes: list[BusTape], trades: dict[str, list[Trade]], start: int, end: int) -> None:
    """Trades [start, end) of each tape, 20 at a time."""
    for index in range(start, end, 20):
        for tape in tapes:
            await tape.publish(trades[tape.venue][index : min(index + 20, end)])


async def test_a_replica_paused_past_its_lease_publishes_nothing_more_for_its_stream(
    scope: tuple[aioredis.Redis, str], redis_url: str, tmp_path: Path
) -> None:
    redis, name = scope
    after = await bars_positions(redis, name)
    tapes = [BusTape(redis, f"{name}{suffix}") for suffix in "ab"]
    start = (time.time_ns() - 3600 * S) // S * S
    trades = {tape.venue: synthetic(SYMBOLS, start, 900, S // 20, seed=i) for i, tape in enumerate(tapes)}
    count = len(trades[tapes[0].venue])
    await feed(tapes, trades, 0, count // 3)
    pattern = f"md.{{{name}*}}.trades"
    replicas = [start_bars(tmp_path, redis_url, pattern, None, "--lease-ttl-ms", str(TTL_MS)) for _ in "12"]
    try:

        async def divided() -> dict[str, int] | None:
            held = {tape.stream: await holder_pid(redis, tape.stream) for tape in tapes}
            found = {stream: holder for stream, holder in held.items() if holder is not None}
            return found if set(found.values()) == {pid(r) for r in replicas} else None

        held = await until(divided, 30, 0.1, "the two streams divided between the replicas")
        paused = next(r for r in replicas if pid(r) == held[tapes[0].stream])
        other = next(r for r in replicas if r is not paused)
        assert paused.service is not None
        paused.service.process.send_signal(signal.SIGSTOP)
        try:
            await feed(tapes, trades, count // 3, 2 * count // 3)

            async def taken_over() -> bool | None:
                return True if await holder_pid(redis, tapes[0].stream) == pid(other) else None

            await until(taken_over, 30, 0.05, f"{tapes[0].stream} taken over")
        finally:
            paused.service.process.send_signal(signal.SIGCONT)
        await feed(tapes, trades, 2 * count // 3, count)
        for tape in tapes:
            last = max(t.ts for t in trades[tape.venue])
            await tape.publish([Trade(s, last + 2 * S, f"next-{s}", "1", "1") for s in SYMBOLS])
        for tape in tapes:
            live, expected = await wait_closed_bars(redis, tape, after, trades=trades[tape.venue])
            assert all(len(versions) == 1 for versions in live.values()), f"{tape.venue}: a bar twice"
            assert {key: versions[0] for key, versions in live.items()} == expected
        text = paused.log_path.read_text()
        assert "lease lost" in text or "fenced" in text, "the paused replica dropped its stream"
    finally:
        for replica in replicas:
            replica.stop()


async def test_entries_an_older_version_left_pending_are_applied_first(
    scope: tuple[aioredis.Redis, str], redis_url: str, tmp_path: Path
) -> None:
    """Entries read under the single consumer name of before (`bars`) and never committed are
    moved to the stream's consumer when it is taken, and applied before the later ones."""
    redis, name = scope
    after = await bars_positions(redis, name)
    tape = BusTape(redis, name)
    start = (time.time_ns() - 3600 * S) // S * S
    trades = synthetic(SYMBOLS, start, 300, S // 10, seed=4)
    count = len(trades)
    for index in range(0, count // 2, 20):
        await tape.publish(trades[index : min(index + 20, count // 2)])
    await redis.xgroup_create(tape.stream, "bars", id="0")
    read: Any = await redis.xreadgroup("bars", "bars", {tape.stream: ">"})  # read, never committed
    for index in range(count // 2, count, 20):
        await tape.publish(trades[index : min(index + 20, count)])
    last = max(t.ts for t in trades)
    await tape.publish([Trade(s, last + 2 * S, f"next-{s}", "1", "1") for s in SYMBOLS])
    bars = start_bars(tmp_path, redis_url, tape.stream)
    try:
        live, expected = await wait_closed_bars(redis, tape, after, trades=trades)
        assert all(len(versions) == 1 for versions in live.values())
        assert {key: versions[0] for key, versions in live.items()} == expected
        assert f"{len(read[0][1])} entries pending" in bars.log_path.read_text()
    finally:
        bars.stop()
