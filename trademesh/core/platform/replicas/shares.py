"""How the replicas of a service divide things between them (ingest: the venues): a lease per
thing (trademesh.core.platform.replicas.lease), and each replica's fair share.

Every replica heartbeats its membership of the service's group (a sorted set of holders, each
scored by when it expires, on Redis's clock); the live members' count gives each its share,
ceil(things / members). A replica takes free leases up to its share and gives back those over it
(a replica that joins gets things from the others this way); a replica killed with -9 stops
heartbeating, its leases expire and the others take its things within the lease's ttl. Which free
things a replica tries first is its own order (a hash of holder and thing), so replicas starting
together spread out.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
from collections.abc import Awaitable, Callable, Iterable

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trademesh.core.platform.aio.retry import sleep_unless
from trademesh.core.platform.bus.redis import BusRedis

__all__ = ["Membership", "keep_balanced", "members_key", "share_of", "wanted_order"]

log = logging.getLogger(__name__)

_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)

# KEYS: the members. ARGV: this holder, its ttl (ms). The number of live members, this one counted.
_BEAT = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[2]), ARGV[1])
return redis.call('ZCARD', KEYS[1])
"""


def members_key(group: str) -> str:
    """The sorted set of the live replicas of `group` (a service: "ingest")."""
    return f"members.{group}"


def share_of(venues: int, members: int) -> int:
    """How many venues one of `members` replicas follows at most."""
    return math.ceil(venues / max(members, 1))


def wanted_order(holder: str, things: Iterable[str]) -> list[str]:
    """The things in the order this holder tries them (its own: replicas spread out)."""
    return sorted(things, key=lambda thing: hashlib.sha256(f"{holder}/{thing}".encode()).digest())


class Membership:
    """One replica's membership of its group, renewed by `beat`."""

    def __init__(self, redis: BusRedis, group: str, holder: str, ttl_ms: int) -> None:
        self.redis = redis
        self.key = members_key(group)
        self.holder = holder
        self.ttl_ms = ttl_ms

    async def beat(self) -> int:
        """Renews this replica's membership; the live members now."""
        return int(await self.redis.eval(_BEAT, 1, self.key, self.holder, self.ttl_ms))

    async def leave(self) -> None:
        await self.redis.zrem(self.key, self.holder)


async def keep_balanced(
    balance: Callable[[], Awaitable[None]], every_s: float, stop: asyncio.Event, what: str
) -> None:
    """`balance()` (renew the leases held, give back over the share, take up to it) every
    `every_s` until `stop`. Redis away: tried again next time, logged once (a lease that expired
    meanwhile fences the replica's writes: nothing is written twice)."""
    failing = False
    while not stop.is_set():
        try:
            await balance()
            failing = False
        except _REDIS_ERRORS as exc:
            if not failing:
                log.warning("%s: Redis unreachable (%s)", what, exc)
            failing = True
        await sleep_unless(stop, every_s)
