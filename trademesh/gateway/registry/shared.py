"""Replicas of the gateway share one registry through the bus (Redis).

Each replica keeps the registry in memory (trademesh.gateway.registry.state) and writes through to one
Redis hash every registration, heartbeat and unregistration it answers: field the instance id,
value the instance (registry.v1.Instance); a removal leaves a nameless instance, a tombstone, so
the other replicas drop their copy rather than write it back. Every `every_s` each replica reads
the hash and merges it: it learns the instances registered at the others (and so lists them,
routes calls to them and answers their heartbeats, wherever a load balancer sends those), and
writes back what the hash lacks (Redis restarted empty). Entries and tombstones are removed from
the hash once past twice the ttl.

The replicas also know each other: at every merge each writes its own entry (at the address
others reach it at, with its metrics port) to a second hash and reads the others', so each lists
every replica (ListServices, the Prometheus targets, the services board) while routing calls to
its own services to itself. A replica that stops removes its entry; one that dies is dropped
after the ttl.

The bus away, a replica serves from what it has and says so once; nothing waits on the bus but
the write-through of the call being answered, which is bounded by the client's timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import cast

from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

from trademesh.core.platform.bus.reads import read_hash
from trademesh.core.platform.bus.redis import BusRedis
from trademesh.gateway.registry.state import Entry, RegistryState
from trademesh.registry.v1 import registry_pb2 as pb

__all__ = ["GATEWAYS_KEY", "REGISTRY_KEY", "SharedRegistry"]

log = logging.getLogger(__name__)

# One slot of a Redis Cluster for both: every replica's registrations, and the replicas themselves.
REGISTRY_KEY = "registry.{gateway}.instances"
GATEWAYS_KEY = "registry.{gateway}.gateways"


class SharedRegistry:
    """The write-through and the merge loop of one gateway replica's registry."""

    def __init__(
        self,
        state: RegistryState,
        redis: BusRedis,
        every_s: float = 0.5,
        wall_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.state = state
        self.redis: BusRedis = redis
        self.every_s = every_s
        self._wall_ns = wall_ns
        self._away = False

    async def wrote(self, entry: Entry, replaced: Iterable[str] = ()) -> None:
        """After a registration or a heartbeat answered here: the entry (and tombstones for the
        entries it replaced) on the bus."""
        fields = {entry.instance_id: entry.to_proto().SerializeToString()}
        fields.update({gone: self._tombstone(gone) for gone in replaced})
        await self._write(fields)

    async def removed(self, instance_id: str) -> None:
        """After an unregistration answered here."""
        await self._write({instance_id: self._tombstone(instance_id)})

    async def run(self, stop: asyncio.Event) -> None:
        """Merges the bus's entries every `every_s` until `stop`; then leaves the replicas."""
        while not stop.is_set():
            await self.sync()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.every_s)
        await self.leave()

    async def leave(self) -> None:
        """This replica's own entry off the bus (it stops): the others stop listing it at once."""
        own = self.state.own_entry()
        if own is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.redis.hdel(GATEWAYS_KEY, own.instance_id)

    async def sync(self) -> None:
        """One merge: learn the others' entries, write back what the bus lacks, sweep the old."""
        try:
            raw: dict[bytes, bytes] = await read_hash(self.redis, REGISTRY_KEY)
        except (RedisError, OSError) as exc:  # the bus away: serve from memory (module docstring)
            self._went_away(exc)
            return
        shared = [pb.Instance.FromString(value) for value in raw.values()]
        missing = self.state.merge(shared)
        stale = self._stale(shared)
        try:
            if missing:
                await self.redis.hset(
                    REGISTRY_KEY, mapping={e.instance_id: e.to_proto().SerializeToString() for e in missing}
                )
            if stale:
                await self.redis.hdel(REGISTRY_KEY, *stale)
            await self._meet_replicas()
        except (RedisError, OSError) as exc:
            self._went_away(exc)
            return
        self._came_back()

    async def _meet_replicas(self) -> None:
        """This replica's entry on the bus, renewed; the others' taken in; the gone swept."""
        own = self.state.own_entry()
        if own is None:
            return
        await self.redis.hset(GATEWAYS_KEY, own.instance_id, self._as_peer(own))
        raw: dict[bytes, bytes] = await read_hash(self.redis, GATEWAYS_KEY)
        peers = [pb.Instance.FromString(value) for value in raw.values()]
        self.state.merge_peers(peers)
        stale = self._stale(peers)
        if stale:
            await self.redis.hdel(GATEWAYS_KEY, *stale)

    def _as_peer(self, own: Entry) -> bytes:
        """The own entry as the other replicas reach it: at its advertised host (its metrics
        host; its own entry's address is the loopback it dials itself at), heard from now."""
        port = own.address.rpartition(":")[2]
        host = own.metrics_host or own.address.rpartition(":")[0]
        instance = own.to_proto()
        instance.address = f"{host}:{port}"
        instance.configured = False
        instance.last_heartbeat_ns = self._wall_ns()
        return instance.SerializeToString()

    def _stale(self, shared: list[pb.Instance]) -> list[str]:
        """Entries and tombstones past twice the ttl: nobody holds them any more."""
        oldest = self._wall_ns() - int(2 * self.state.ttl_s * 1e9)
        return [instance.instance_id for instance in shared if instance.last_heartbeat_ns < oldest]

    def _tombstone(self, instance_id: str) -> bytes:
        return pb.Instance(instance_id=instance_id, last_heartbeat_ns=self._wall_ns()).SerializeToString()

    async def _write(self, fields: dict[str, bytes]) -> None:
        try:
            await self.redis.hset(REGISTRY_KEY, mapping=cast("dict[FieldT, EncodableT]", fields))
        except (RedisError, OSError) as exc:  # the next merge writes it back
            self._went_away(exc)

    def _went_away(self, exc: Exception) -> None:
        if not self._away:
            self._away = True
            log.warning("registry: the bus is away (%s): serving from this gateway's memory", exc)

    def _came_back(self) -> None:
        if self._away:
            self._away = False
            log.info("registry: the bus is back: sharing entries with the other gateways again")
