"""Open the bus's Redis client, the one way: with deadlines on every socket operation.

A client without timeouts hangs forever on a Redis that stopped answering (a paused VM, a
dropped connection with no RST); with them, the call fails and the caller's retry loop
(core.foundations.retry) takes over. The read timeout stays well above the consumers' XREADGROUP block
(core.foundations.bus.consumer, 0.5 s).

`checked_ping` is every service's first word with the bus: a server that answers but is not
Redis (an HTTP server on the port; PostgreSQL, which closes the connection on a PING), or one
that refuses the URL itself (a database past its count), is InvalidArgument naming the setting
(REDIS_URL or --redis-url): no retry mends it, and a service retrying it (or dying of it with a
traceback) hid the mistake.
"""

from __future__ import annotations

import asyncio
import urllib.parse

import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, ResponseError

from core.foundations.env import REDIS_URL, setting_of
from core.foundations.errors import InvalidArgument
from core.foundations.redact import redact_url

__all__ = ["CONNECT_TIMEOUT_S", "READ_TIMEOUT_S", "checked_ping", "open_redis"]

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


async def checked_ping(client: aioredis.Redis, url: str) -> bool:
    """PING; InvalidArgument naming the URL's setting when what answers is not a Redis that
    takes the URL (unreachable stays a ConnectionError or OSError, for the caller to retry)."""
    try:
        return bool(await client.ping())
    except InvalidResponse as exc:
        raise InvalidArgument.field(
            setting_of(url, REDIS_URL, "redis-url"), f"{redact_url(url)} answers, but not as Redis ({exc})"
        ) from None
    except ResponseError as exc:  # (LOADING is a ConnectionError: retried)
        raise InvalidArgument.field(
            setting_of(url, REDIS_URL, "redis-url"), f"{redact_url(url)}: Redis refuses it: {exc}"
        ) from None
    except RedisConnectionError as exc:
        if "closed by server" in str(exc) and await _closes_on_ping(url):
            raise InvalidArgument.field(
                setting_of(url, REDIS_URL, "redis-url"),
                f"{redact_url(url)} takes a connection, but closes it on a PING: not Redis",
            ) from None
        raise


async def _closes_on_ping(url: str) -> bool:
    """Whether the server at `url` (redis://) takes a TCP connection and closes it on an inline
    PING without a byte of answer: not Redis (a Redis shutting down refuses the connection; one
    that refuses the client says why first)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "redis":
        return False
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(parts.hostname or "localhost", parts.port or 6379), CONNECT_TIMEOUT_S
        )
    except (OSError, TimeoutError):
        return False
    try:
        writer.write(b"PING\r\n")
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(1), CONNECT_TIMEOUT_S)
    except (OSError, TimeoutError):
        return False
    finally:
        writer.close()
    return answer == b""
