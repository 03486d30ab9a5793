"""Open the bus's Redis client, the one way: with deadlines on every socket operation.

A client without timeouts hangs forever on a Redis that stopped answering (a paused VM, a
dropped connection with no RST); with them, the call fails and the caller's retry loop
(core.retry) takes over. The read timeout stays well above the consumers' XREADGROUP block
(core.bus.consumer, 0.5 s).
"""

from __future__ import annotations

import redis.asyncio as aioredis

__all__ = ["CONNECT_TIMEOUT_S", "READ_TIMEOUT_S", "open_redis"]

CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 10.0
# An idle connection is pinged before reuse after this long, so a dead one is found first.
_HEALTH_CHECK_S = 5


def open_redis(url: str, read_timeout_s: float = READ_TIMEOUT_S) -> aioredis.Redis:
    """A client for `url` (connects lazily, on its first command)."""
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        socket_timeout=read_timeout_s,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        health_check_interval=_HEALTH_CHECK_S,
    )
    return client
