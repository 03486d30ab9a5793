"""Who writes a venue's streams (md.{<venue>}.*, exec.{<venue>}): one writer at a time, the holder of
the venue's lease, either an ingest replica (trademesh.core.ingest.fleet) or the venue itself writing its
own streams (trademesh.venues.runtime.direct).

A venue that writes its own streams also claims them (`bus.direct.{<venue>}`, renewed like its
lease and expiring with it): ingest replicas leave a claimed venue to it, giving back its lease
when they hold it (a graceful handover: the venue resumes where they stopped, by its own
numbering), and count it in no replica's share.
"""

from __future__ import annotations

from collections.abc import Iterable

from trademesh.core.platform.bus.names import venue_tag
from trademesh.core.platform.bus.redis import BusRedis

__all__ = ["claim_direct", "direct_claim_key", "direct_venues", "unclaim_direct", "venue_lease_name"]

# KEYS: the claim. ARGV: the holder. 1 deleted, 0 another's or none.
_UNCLAIM = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def venue_lease_name(venue: str) -> str:
    """The lease of a venue's streams: `ingest.{<venue>}`, in their hash slot (a fenced write
    names the lease with the streams). Its name is ingest's, whoever holds it."""
    return f"ingest.{venue_tag(venue)}"


def direct_claim_key(venue: str) -> str:
    """The key saying the venue writes its own streams (its value: the writer's holder id)."""
    return f"bus.direct.{venue_tag(venue)}"


async def claim_direct(redis: BusRedis, venue: str, holder: str, ttl_ms: int) -> None:
    """Says (again) that `holder`, the venue itself, writes the venue's streams, for `ttl_ms`."""
    await redis.set(direct_claim_key(venue), holder, px=ttl_ms)


async def unclaim_direct(redis: BusRedis, venue: str, holder: str) -> None:
    """The venue no longer writes its streams (ingest may take them): the claim, if still ours, goes."""
    await redis.eval(_UNCLAIM, 1, direct_claim_key(venue), holder)


async def direct_venues(redis: BusRedis, venues: Iterable[str]) -> set[str]:
    """Those of `venues` that write their own streams now (claimed)."""
    names = list(venues)
    if not names:
        return set()
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.exists(direct_claim_key(name))
        found = await pipe.execute()
    return {name for name, exists in zip(names, found, strict=True) if exists}
