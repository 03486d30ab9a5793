"""Following another service's server stream until stopped: opened again after a loss, with a backoff.

A follower (ingest's market, execution and account followers, the detector's venue feed) reads
one stream a connection: `follow_once(backoff)` opens the call and reads it to its end, resetting
the backoff once the stream answers (and resuming from wherever the follower's own point says).
`follow` is the loop around it, the one way: a stream ended by the venue or failed with a gRPC
error is a loss, said through `lost(reason, delay)` and waited out with the backoff's next delay
(at once when `stop` is set); `go_on()` false after a loss (nothing left to follow) ends it. With
`refused` given, a whole subscription refused as asked (REFUSED_AS_ASKED: sent again unchanged,
it would be refused again) is handed to it and the follower waits for `stop` instead of asking
again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc

from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.rpc.status import REFUSED_AS_ASKED, call_failure

__all__ = ["ENDED", "follow"]

# The reason of a loss when the stream ended without an error.
ENDED = "the venue ended the stream"


async def follow(
    follow_once: Callable[[Backoff], Awaitable[None]],
    stop: asyncio.Event,
    backoff: Backoff,
    lost: Callable[[str, float], None],
    *,
    go_on: Callable[[], bool] = lambda: True,
    refused: Callable[[grpc.aio.AioRpcError], None] | None = None,
) -> None:
    """`follow_once` again after each loss until `stop` (module docstring)."""
    while not stop.is_set():
        try:
            await follow_once(backoff)
            reason = ENDED
        except grpc.aio.AioRpcError as exc:
            if refused is not None and exc.code() in REFUSED_AS_ASKED:
                refused(exc)
                await stop.wait()
                return
            reason = call_failure(exc)
        if stop.is_set() or not go_on():
            return
        delay = backoff.next()
        lost(reason, delay)
        if await sleep_unless(stop, delay):
            return
