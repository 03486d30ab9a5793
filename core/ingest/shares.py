"""How ingest replicas divide the venues: a lease per venue, and each replica's fair share.

Every replica heartbeats its membership (a sorted set of holders, each scored by when it expires,
on Redis's clock); the live members' count gives each its share, ceil(venues / members). A replica
takes free venue leases up to its share and gives back those over it (a replica that joins gets
venues from the others this way); a replica killed with -9 stops heartbeating, its leases expire
and the others take its venues within the lease's ttl. Which free venues a replica tries first is
its own order (a hash of holder and venue), so replicas starting together spread out.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from typing import Any

__all__ = ["MEMBERS", "Membership", "share_of", "venue_lease_name", "wanted_order"]

# The sorted set of live ingest replicas.
MEMBERS = "ingest.members"

# KEYS: the members. ARGV: this holder, its ttl (ms). The number of live members, this one counted.
_BEAT = """
local now = redis.call('TIME')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[2]), ARGV[1])
return redis.call('ZCARD', KEYS[1])
"""


def venue_lease_name(venue: str) -> str:
    """The lease of a venue's streams (md.<venue>.*, exec.<venue>)."""
    return f"ingest.{venue}"


def share_of(venues: int, members: int) -> int:
    """How many venues one of `members` replicas follows at most."""
    return math.ceil(venues / max(members, 1))


def wanted_order(holder: str, venues: Iterable[str]) -> list[str]:
    """The venues in the order this holder tries them (its own: replicas spread out)."""
    return sorted(venues, key=lambda venue: hashlib.sha256(f"{holder}/{venue}".encode()).digest())


class Membership:
    def __init__(self, redis: Any, holder: str, ttl_ms: int) -> None:
        self.redis = redis
        self.holder = holder
        self.ttl_ms = ttl_ms

    async def beat(self) -> int:
        """Renews this replica's membership; the live members now."""
        return int(await self.redis.eval(_BEAT, 1, MEMBERS, self.holder, self.ttl_ms))

    async def leave(self) -> None:
        await self.redis.zrem(MEMBERS, self.holder)
