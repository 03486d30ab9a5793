"""A task talking to Redis keeps its cancel (trademesh.core.platform.aio.cancellation): redis-py sends each
command under asyncio.wait_for when a socket timeout is set, and on Python 3.11 a cancel landing
as a send finished was lost (the inspector's bus consumer, cancelled as its lease was lost, read
on for a minute). Without the mend this sweep lost 15 of 40 cancels here."""

from __future__ import annotations

import asyncio

import redis.asyncio as aioredis

from trademesh.core.platform.aio.cancellation import mended

LOST_WAIT_S = 2.0


async def test_a_task_pinging_redis_ends_at_every_cancel(redis_url: str) -> None:
    assert mended()
    client: aioredis.Redis = aioredis.Redis.from_url(redis_url, socket_timeout=10)
    try:
        await client.ping()
        lost = []
        for turns in range(40):
            running = asyncio.Event()
            running.set()

            async def pinging(running: asyncio.Event = running) -> None:
                while running.is_set():
                    await client.ping()

            task = asyncio.create_task(pinging())
            for _ in range(turns):
                await asyncio.sleep(0)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=LOST_WAIT_S)
            if not done:  # it pings on: stopped by its flag, and counted
                lost.append(turns)
                running.clear()
                await asyncio.wait({task})
        assert lost == []
    finally:
        await client.aclose()
