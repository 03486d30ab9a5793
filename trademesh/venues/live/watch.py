"""One stream of a venue's ccxt.pro client watched for as long as it runs: the account's pushes
(trademesh.venues.live.account) and the private order and trade streams (.private)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt.pro

from trademesh.core.platform.aio.backoff import Backoff

__all__ = ["keep_watching"]

log = logging.getLogger(__name__)


async def keep_watching(
    venue: str,
    stream: str,
    watch: Callable[[], Awaitable[Any]],
    backoff: Backoff,
    pushed: Callable[[bool], None],
) -> None:
    """Awaits `watch` (a `watch_*` call) again and again, telling `pushed` of each push (True: the
    first since the stream was (re)opened); a failure is logged and backed off, a venue without
    the stream is logged once and the watching ends."""
    first = True
    while True:
        try:
            await watch()
        except ccxt.NotSupported as exc:
            log.warning("%s: no %s stream: %s", venue, stream, exc)
            return
        except ccxt.BaseError as exc:
            delay = backoff.next()
            log.warning("%s: %s stream: %s; again in %.1f s", venue, stream, exc, delay)
            first = True
            await asyncio.sleep(delay)
            continue
        backoff.reset()
        pushed(first)
        first = False
