"""The leader lease of a single-writer service (the inspector, the ledger): of the processes
running one instance, only the holder of `leader.<service>.{<instance>}` acts.

A process takes the lease before it acts. Until it holds it, it is a standby
(ServiceContext.standby): alive for its liveness probe, not ready, not registered with the
gateway, its RPCs UNAVAILABLE ("standby: <holder> leads"), ready as a standby while it reaches
Redis (not once Redis has been away from it for a ttl: it could not take over). It asks again
every ttl/3 (2 s at most), so it leads within a ttl and a third of the leader's last renewal;
a leader that stops gracefully releases the lease and says so on `<lease key>.handover`, which
a standby waits on between its asks (BLPOP): it leads at once. The leader renews every ttl/3. A
renewal that finds another holder, or a fenced write refused (`deposed`), ends its leadership
with LeadershipLost: the service stops at once, and its supervisor starts it again, as a
standby. A lease that lapsed while nobody took it (the leader paused past its ttl, or Redis away
from it) is taken back (`reclaim`) when its fence counter shows no other acquisition meanwhile:
then nobody else acted, and what the leader knows is current. While Redis is away from the
leader it can neither journal nor read its inputs, so it acts on nothing new: the renewals are
retried, and the fence decides once Redis answers. Its writes on the bus carry `fence()` where they can
(trademesh.core.platform.bus.group.Fenced): a deposed leader paused past its ttl writes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trademesh.core.platform.bus.group import Fenced
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.replicas.lease import Lease, holder_id
from trademesh.core.platform.service.command import LEADER_TTL_MS

__all__ = ["DEFAULT_TTL_MS", "Leadership", "LeadershipLost", "StandbyContext", "leader_lease_name"]

log = logging.getLogger(__name__)

# The lease's default ttl: the services' --leader-ttl-ms default (declared with the flag).
DEFAULT_TTL_MS = LEADER_TTL_MS
_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
# A standby's longest wait on the handover list: well under the clients' read timeout
# (trademesh.core.platform.bus.redis.READ_TIMEOUT_S), which a longer BLPOP would run into.
_HANDOVER_WAIT_S = 2.0
# KEYS: the handover list. ARGV: the ttl (ms). One element, gone after a ttl: a standby waiting
# is woken at once, and a release nobody waited on is not taken for a later one's.
_HANDOVER = """
redis.call('DEL', KEYS[1])
redis.call('RPUSH', KEYS[1], 'released')
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""


class LeadershipLost(Unavailable):
    """The leader lease is another's now (or may be): this process stops acting at once."""


class StandbyContext(Protocol):
    """What of trademesh.core.platform.service.lifecycle.ServiceContext a standby uses."""

    stop: asyncio.Event

    async def standby(self, reason: str, *, able: bool = True, **announce: Any) -> None: ...


def leader_lease_name(service: str, instance: str, tag: str | None = None) -> str:
    """`leader.<service>.{<instance>}`: the instance is the hash tag, so the lease is in the slot
    of what the leader writes fenced by it (the inspector's journal, inspector.journal.{<instance>}:
    trademesh.core.platform.bus.names), as a Redis Cluster needs for one script. A leader that writes
    fenced into shared streams names their tag instead (`tag`, "{signals}": the detector's
    signals): `leader.<service>.<instance>.<tag>`."""
    return f"leader.{service}.{{{instance}}}" if tag is None else f"leader.{service}.{instance}.{tag}"


class Leadership:
    def __init__(
        self,
        redis: BusRedis,
        service: str,
        instance: str,
        ttl_ms: int = DEFAULT_TTL_MS,
        tag: str | None = None,
    ) -> None:
        self.name = leader_lease_name(service, instance, tag)
        self.lease = Lease(redis, self.name, holder_id(f"{service}/{instance}"), ttl_ms)
        self._number = 0  # the fencing number of the last token held
        self._lock = asyncio.Lock()
        self._deposed: str | None = None
        self._woken = asyncio.Event()
        self._handover_key = f"{self.lease.key}.handover"  # the lease's slot: its hash tag

    @property
    def every_s(self) -> float:
        """How often the leader renews and a standby asks: a third of the ttl."""
        return self.lease.ttl_ms / 3000

    def fence(self) -> Fenced:
        """The fence of a write made as the leader (refused once another holds the lease)."""
        if self.lease.token is None:
            raise LeadershipLost(f"{self.name}: not the leader")
        return Fenced(self.lease.key, self.lease.token)

    async def leader(self) -> str | None:
        """The holder of the lease now (its holder id), None when it is free."""
        value = await self.lease.redis.get(self.lease.key)
        if value is None:
            return None
        text: str = value.decode() if isinstance(value, bytes) else value
        return text.rpartition("/")[0] or text

    async def take(self, ctx: StandbyContext) -> bool:
        """Stand by until the lease is ours (True) or the service stops (False). The caller has
        just reached Redis; a standby that has not reached it for a ttl is not `able` to take
        over (its readiness says so)."""
        shown: tuple[str, bool] | None = None
        clock = asyncio.get_running_loop().time
        reached = clock()
        while not ctx.stop.is_set():
            asked = await self._try()
            if asked:
                log.info("%s: leading as %s (token %s)", self.name, self.lease.holder, self.lease.token)
                return True
            if asked is not None:
                reached = clock()
            able = clock() - reached < self.lease.ttl_ms / 1000
            holder = await self._leader_or_unknown()
            if (holder, able) != shown:
                self._say_standby(holder, able)
                await ctx.standby(f"standby: {holder} leads", able=able, leader=holder)
                shown = (holder, able)
            if await self._until_next_ask(ctx.stop):
                return False
        return False

    def _say_standby(self, holder: str, able: bool) -> None:
        if able:
            log.info("%s: standing by; %s leads", self.name, holder)
        else:
            log.warning("%s: Redis away for a ttl; not ready to take over (%s leads)", self.name, holder)

    async def _until_next_ask(self, stop: asyncio.Event) -> bool:
        """A standby's wait between asks: a renewal period (at most _HANDOVER_WAIT_S), cut short by
        the leader's release or by `stop` (then True)."""
        handover = asyncio.ensure_future(self._handover())
        stopped = asyncio.ensure_future(stop.wait())
        try:
            # The BLPOP returns by itself; the margin bounds a Redis that stopped answering.
            limit = min(self.every_s, _HANDOVER_WAIT_S) + 1.0
            await asyncio.wait({handover, stopped}, timeout=limit, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in (handover, stopped):
                waiting.cancel()
            await asyncio.gather(handover, stopped, return_exceptions=True)
        return stop.is_set()

    async def _handover(self) -> None:
        wait_s = min(self.every_s, _HANDOVER_WAIT_S)
        started = asyncio.get_running_loop().time()
        try:
            await self.lease.redis.blpop([self._handover_key], timeout=wait_s)
        except _REDIS_ERRORS:  # asked again after the period, not at once: no spinning on a Redis away
            await asyncio.sleep(max(0.0, started + wait_s - asyncio.get_running_loop().time()))

    @contextlib.asynccontextmanager
    async def kept(self, stop: asyncio.Event) -> AsyncIterator[asyncio.Task[None]]:
        """The lease kept (`keep`) in the background while the block runs, released after it;
        the block gets the keeping task (it ends with LeadershipLost when the lease is lost)."""
        task = asyncio.create_task(self.keep(stop), name=f"{self.name} leadership")
        try:
            yield task
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await self.release()

    async def keep(self, stop: asyncio.Event) -> None:
        """Renew every ttl/3 until `stop`; raises LeadershipLost the moment it is not ours."""
        while True:
            await self._wait(stop)
            if stop.is_set():
                return
            if self._deposed is not None:
                raise LeadershipLost(f"{self.name}: {self._deposed}; stopping (restarted, it stands by)")
            await self._renew()

    def deposed(self, why: str) -> None:
        """A write fenced by the lease was refused: another leads. keep() raises at once."""
        if self._deposed is None:
            self._deposed = why
        self._woken.set()

    async def release(self) -> None:
        """Give the lease up (a graceful stop) and say so on the handover list: a standby waiting
        on it takes over at once."""
        if self.lease.token is None:
            return
        try:
            await self.lease.release()
            await self.lease.redis.eval(_HANDOVER, 1, self._handover_key, self.lease.ttl_ms)
        except _REDIS_ERRORS as exc:
            log.warning("%s: could not release the lease: %s", self.name, exc)

    async def _try(self) -> bool | None:
        """Whether the lease is ours now; None when Redis could not be asked."""
        try:
            taken = await self.lease.acquire()
        except _REDIS_ERRORS as exc:
            log.warning("%s: Redis: %s", self.name, exc)
            return None
        if taken:
            self._number = _number(self.lease.token)
        return taken

    async def _leader_or_unknown(self) -> str:
        try:
            return await self.leader() or "nobody yet"
        except _REDIS_ERRORS:
            return "an unknown holder (Redis away)"

    async def _wait(self, stop: asyncio.Event) -> None:
        """A renewal period, cut short by `stop` or `deposed`."""
        waits = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._woken.wait())}
        try:
            await asyncio.wait(waits, timeout=self.every_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    async def reclaim(self, seen: str | None) -> bool:
        """After the lease lapsed unheld (this process paused past its ttl, Redis away): take
        it back when nobody else took it meanwhile (the fence counter moved by our acquisition
        alone), True; else False (another led: what this process knows may be stale). `seen`:
        the token the caller found refused (reclaimed already when the token is another now)."""
        async with self._lock:
            if self.lease.token is not None and self.lease.token != seen:
                return True
            before = self._number
            if not await self._try():
                return False
            if self._number in (before, before + 1):
                log.warning(
                    "%s: the lease had lapsed unheld; taken back (token %s)", self.name, self.lease.token
                )
                return True
            log.error("%s: another process led while the lease had lapsed; giving it up", self.name)
            await self.release()
            return False

    async def _renew(self) -> None:
        seen = self.lease.token
        try:
            held = await self.lease.renew()
        except _REDIS_ERRORS as exc:  # no journal, no inputs meanwhile: the fence decides later
            log.warning("%s: renewal failed (%s); retrying", self.name, exc)
            return
        if not held and not await self.reclaim(seen):
            holder = await self._leader_or_unknown()
            raise LeadershipLost(f"{self.name}: lost the lease, {holder} holds it; stopping")


def _number(token: str | None) -> int:
    """The fencing number of a token (`<holder>/<n>`); 0 for none."""
    return 0 if token is None else int(token.rpartition("/")[2])
