"""Following bus streams until stopped: a read at a time, an outage waited out with a backoff.

A follower keeps its own position (where its next read resumes: its start's read when it has
none yet) and reads on from it in `read_once`; `read_on` is the loop around it, the one way. An
outage (Redis away, by default; a follower that also writes elsewhere names its own errors) is
handed to `away(error, delay, first)`, `first` true for the first failure of an outage (a
follower that says an outage once says it then), and waited out with the backoff's next delay (at
once when `stop` is set); the first read that succeeds after an outage calls `back()` and resets
the backoff.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from redis.exceptions import RedisError

from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.retry import default_backoff, sleep_unless

__all__ = ["BUS_OUTAGES", "read_on"]

# What a read of the bus meets while Redis is away.
BUS_OUTAGES: tuple[type[Exception], ...] = (RedisError, OSError)


async def read_on(
    read_once: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    away: Callable[[Exception, float, bool], None],
    *,
    back: Callable[[], None] | None = None,
    backoff: Backoff | None = None,
    outages: tuple[type[Exception], ...] = BUS_OUTAGES,
) -> None:
    """`read_once` until `stop`, outages waited out (module docstring)."""
    backoff = default_backoff() if backoff is None else backoff
    failing = False
    while not stop.is_set():
        try:
            await read_once()
        except outages as exc:
            delay = backoff.next()
            away(exc, delay, not failing)
            failing = True
            if await sleep_unless(stop, delay):
                return
            continue
        if failing and back is not None:
            back()
        failing = False
        backoff.reset()
