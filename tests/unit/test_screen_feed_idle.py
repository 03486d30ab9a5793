"""The detector's screen feed with no strategy following a screen idles until stopped: it does
not retry, so trademesh_retrying_loops stays 0 on a healthy default detector (issue 57 item 14;
it retried an XREAD of no stream forever)."""

from __future__ import annotations

import asyncio

import redis.asyncio

from trademesh.core.detector.screen_feed import ScreenRosterFeed
from trademesh.core.platform.aio.backoff import RETRYING


def _retrying() -> float:
    (metric,) = RETRYING.collect()
    return float(metric.samples[0].value)


async def test_no_screen_followed_is_idle_not_a_retrying_loop() -> None:
    client = redis.asyncio.Redis(host="127.0.0.1", port=1)  # never reached: nothing to read
    feed = ScreenRosterFeed(client, {}, lambda *_: asyncio.sleep(0), lambda: 0)
    stop = asyncio.Event()
    before = _retrying()
    running = asyncio.create_task(feed.run(stop))
    for _ in range(20):  # turns of the loop, no time: a failing first read counts at once
        await asyncio.sleep(0)
    try:
        assert not running.done()
        assert _retrying() == before
    finally:
        stop.set()
        await asyncio.wait_for(running, 5)
        await client.aclose()
