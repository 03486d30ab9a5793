"""The fence of what the inspector's leader does outside its journal: its orders at the venues
(placed, amended, cancelled, the reconciliation's orphan cancel included) and its publications
(risk events, notices, an operator's notifications). The journal's own writes carry the lease's
token (trademesh.core.inspector.fenced_writes); a venue cannot check a token, and the `risk` stream is not
in the lease's Redis Cluster slot, so these are fenced by a lease check instead.

`check()` passes only while the lease is known to be ours: the lease key held our token with
`pttl` ms to live when it was read, so nobody else can hold it before the read's send time plus
`pttl` (the standby takes it only once it expired), less a margin for the clocks' drift. Within
that the check costs nothing; past it (a leader woken from a freeze longer than the ttl: the
time was measured on the monotonic clock, which ran on meanwhile) the lease is read again first.
Another's token deposes the leadership (the service stops and restarts as a standby) and
raises LeadershipLost: nothing is done. A lease that lapsed unheld is taken back when nobody
acquired it meanwhile (Leadership.reclaim), as the journal's fenced writes do. A lease that cannot
be read (Redis away) raises what Redis raised: the leader acts on nothing it cannot vouch for.

A check and its action are separate steps: a freeze between the two (microseconds apart, no await
between them but the check's own) would still let the action go. Time is injected (`clock`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.replicas.leader import Leadership, LeadershipLost

__all__ = ["Fence", "LeaseGuard", "unfenced"]

# The part of the lease's remaining time not relied on: the clocks' drift, and Redis's expiry
# running late by up to a millisecond of its own.
_MARGIN = 0.1

# A fence to await before an action; raises when the action must not go.
Fence = Callable[[], Awaitable[None]]


async def unfenced() -> None:
    """No fence: a component run without a leader lease (a unit test, the backtest)."""


class LeaseGuard:
    def __init__(
        self, redis: BusRedis, leadership: Leadership, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.redis = redis  # redis.asyncio.Redis
        self.leadership = leadership
        self.clock = clock
        self.reads = 0  # the lease reads made (how rarely a check costs a round trip)
        self._valid_until = float("-inf")  # on `clock`: the lease is ours until then
        self._lock = asyncio.Lock()

    async def check(self) -> None:
        """Return when the lease is ours; else LeadershipLost (deposed), or Redis's error."""
        if self.clock() < self._valid_until:
            return
        async with self._lock:  # concurrent checks share one read
            if self.clock() < self._valid_until:
                return
            if await self._read() or await self._reclaimed():
                return
            holder = await self.leadership.leader() or "nobody"
            why = f"the lease is {holder}'s: its actions are fenced"
            self.leadership.deposed(why)
            raise LeadershipLost(f"{self.leadership.name}: {why}")

    async def _read(self) -> bool:
        """The lease read: True (and valid until the send time plus its pttl) when ours."""
        token = self.leadership.lease.token
        if token is None:
            return False
        sent = self.clock()
        key = self.leadership.lease.key
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.get(key)
            pipe.pttl(key)
            value, pttl = await pipe.execute()
        self.reads += 1
        held = value is not None and (value.decode() if isinstance(value, bytes) else value) == token
        if not held or pttl < 0:  # -1: no expiry (never set so); -2: gone since the GET
            return held and pttl == -1
        ttl_s = self.leadership.lease.ttl_ms / 1000
        self._valid_until = sent + pttl / 1000 - _MARGIN * ttl_s
        return True

    async def _reclaimed(self) -> bool:
        """The lease lapsed with nobody taking it: ours again (then valid from a read)."""
        token = self.leadership.lease.token
        if await self.redis.exists(self.leadership.lease.key):
            return False  # another's
        return await self.leadership.reclaim(token) and await self._read()
