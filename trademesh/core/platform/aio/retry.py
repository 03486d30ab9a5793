"""Waiting for a dependency and retrying, the one way:
on trademesh.core.platform.aio.backoff.Backoff, until stopped.

Every loop that waits for Redis, PostgreSQL, a venue or the gateway uses these, so each
retries with the same jittered exponential backoff, logs the same way (what is unreachable,
why, when it tries again) and ends at once when its service is told to stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from trademesh.core.platform.aio.backoff import Backoff

__all__ = ["default_backoff", "sleep_unless", "until_reachable", "wait_any"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def default_backoff() -> Backoff:
    """0.2 s doubling to 5 s, jittered: quick while a dependency starts, gentle during an outage."""
    return Backoff(0.2, 5.0)


async def sleep_unless(stop: asyncio.Event, delay_s: float) -> bool:
    """Sleep up to delay_s; True when `stop` was set (then at once)."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), delay_s)
    return stop.is_set()


async def wait_any(*events: asyncio.Event, timeout_s: float | None = None) -> None:
    """Until any of `events` is set, or `timeout_s` passed (None: no timeout); the waits it
    made are ended before it returns (none is left pending on an event)."""
    waits = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waits, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()
        await asyncio.gather(*waits, return_exceptions=True)


async def until_reachable(
    attempt: Callable[[], Awaitable[T]],
    *,
    what: str,
    retry_on: tuple[type[BaseException], ...],
    stop: asyncio.Event,
    backoff: Backoff | None = None,
) -> T | None:
    """attempt()'s result once it succeeds; None when `stop` came first.

    An error of `retry_on` is logged (naming `what`) and retried after the backoff's next
    delay; any other error propagates.
    """
    backoff = backoff or default_backoff()
    try:
        while not stop.is_set():
            try:
                return await attempt()
            except retry_on as exc:
                delay = backoff.next()
                log.warning("%s unreachable (%s); retrying in %.1f s", what, exc or type(exc).__name__, delay)
            if await sleep_unless(stop, delay):
                break
    except asyncio.CancelledError:
        # Abandoned (a venue dropped from the mesh): no longer a loop retrying, though its frames
        # (and this backoff) live on in the cancelled task's traceback until the collector's pass.
        backoff.reset()
        raise
    return None
