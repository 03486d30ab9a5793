"""Leases in Redis with fencing tokens: one holder at a time of a named thing (a venue's streams
for ingest, the leadership of a single-writer service).

A lease is a key holding `<holder>/<n>`, where n comes from a counter that only grows (INCR of
the lease's fence key): the value is the lease's fencing token, new at every acquisition. It
expires `ttl_ms` after its last renewal, so a holder killed with -9 loses it within the ttl.
A holder renews well within the ttl; a renewal that finds another value lost the lease; one
that finds none takes it again with the same token when nobody acquired it since (its last
token, `<lease>.last`, is still ours, or gone with a Redis restarted empty), and lost it
otherwise (another held it meanwhile: what this holder knows may be stale).

Time alone does not fence (a holder paused past its ttl wakes up believing it holds the lease):
every write made under a lease carries the token, and the write is refused when the lease key
holds another token, or holds none while another acquired it since (its last token is
another's) (trademesh.core.platform.bus.group.Fenced, checked in the same script as the write). A
write while nobody acquired the lease since ours lands: it precedes any next holder's
acquisition, and a new holder resumes from what the bus holds once it holds the lease.

In a Redis Cluster the lease key and its fence key share a slot (the name is their hash tag, or
the name's own tag); writes fenced by a lease must name keys of the same slot: a venue's lease
carries the venue's tag, as its streams do (trademesh.core.platform.bus.names).
"""

from __future__ import annotations

import os
import socket
import uuid

from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.config.env import LEASE_HOLDER

__all__ = ["Lease", "holder_id", "last_key", "lease_key"]

# KEYS: the lease, its fence counter, its last token. ARGV: the holder, the ttl (ms). The token
# held, or nil.
_ACQUIRE = """
local held = redis.call('GET', KEYS[1])
if not held then
  local value = ARGV[1] .. '/' .. redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], value, 'PX', ARGV[2])
  redis.call('SET', KEYS[3], value)
  return value
end
if string.sub(held, 1, #ARGV[1] + 1) == ARGV[1] .. '/' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return held
end
return nil
"""
# KEYS: the lease, its last token. ARGV: the token, the ttl (ms). 1 renewed (or taken again:
# lapsed, and nobody took it since), 0 lost.
_RENEW = """
local held = redis.call('GET', KEYS[1])
if held == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local last = redis.call('GET', KEYS[2])
if not held and (not last or last == ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
return 0
"""
# KEYS: the lease. ARGV: the token. 1 released, 0 not held.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


def lease_key(name: str) -> str:
    """The key of the lease `name` (its fence counter: this + ".fence"; one slot: the tag). A
    name with a hash tag of its own keeps it: the lease of a venue's streams, `ingest.{<venue>}`,
    is in their slot (trademesh.core.platform.bus.names.venue_tag); any other name is the tag."""
    return f"lease.{name}" if "{" in name else f"lease.{{{name}}}"


def last_key(key: str) -> str:
    """The last token the lease `key` was acquired with (kept after it lapses or is released)."""
    return f"{key}.last"


def holder_id(service: str) -> str:
    """A name for this process as a holder, readable in the key: the supervisor's for it
    (TRADEMESH_LEASE_HOLDER: the same across its restarts, so a restart takes its leases back
    at once), else one unique to the process."""
    supervised = os.environ.get(LEASE_HOLDER, "").strip()
    if supervised:
        return f"{service}@{supervised}"
    return f"{service}@{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Lease:
    """One lease, as one holder sees it: `token` is set while it holds it."""

    def __init__(self, redis: BusRedis, name: str, holder: str, ttl_ms: int) -> None:
        self.redis = redis
        self.name = name
        self.key = lease_key(name)
        self.holder = holder
        self.ttl_ms = ttl_ms
        self.token: str | None = None

    @property
    def held(self) -> bool:
        return self.token is not None

    async def acquire(self) -> bool:
        """Takes the lease when it is free (or already ours: renewed); whether we hold it."""
        keys = (self.key, f"{self.key}.fence", last_key(self.key))
        value = await self.redis.eval(_ACQUIRE, 3, *keys, self.holder, self.ttl_ms)
        self.token = None if value is None else _text(value)
        return self.token is not None

    async def renew(self) -> bool:
        """Extends the lease we hold; False (and no longer held) when another holds it now."""
        if self.token is None:
            return False
        if not await self.redis.eval(_RENEW, 2, self.key, last_key(self.key), self.token, self.ttl_ms):
            self.token = None
        return self.token is not None

    async def release(self) -> None:
        """Gives the lease up at once (a graceful stop, a handover): another may take it now."""
        if self.token is not None:
            token, self.token = self.token, None
            await self.redis.eval(_RELEASE, 1, self.key, token)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
