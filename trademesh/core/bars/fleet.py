"""The trade streams this bars replica aggregates now, each under its lease, each read by a
consumer runner of its own.

`BarStreamFleet.balance()`, every third of the lease's ttl: a heartbeat of the replicas' membership, the
held leases renewed (a stream whose lease or commit was lost is dropped at once), then this
replica's share kept (trademesh.core.bars.shares.plan). Taking a stream: its lease, its engine from its
checkpoint (trademesh.core.bars.aggregator.adopt: every commit fenced by the lease), every entry left
pending in the group moved to the stream's consumer name, then a GroupConsumer on that one
stream, which reads those pending entries first, in stream order. Giving one back: the runner
stopped after its current commit, the engine dropped, the lease released. A single replica holds
every stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from redis.exceptions import ResponseError

from trademesh.core.bars import metrics
from trademesh.core.bars.aggregator import Aggregator
from trademesh.core.bars.shares import members_group, plan, stream_lease_name
from trademesh.core.platform.bus.consumer import LAG, PENDING, ConsumerOptions, GroupConsumer
from trademesh.core.platform.bus.group import Fenced
from trademesh.core.platform.bus.redis import REDIS_UNREACHABLE, BusRedis
from trademesh.core.platform.replicas.lease import Lease
from trademesh.core.platform.replicas.shares import Membership, keep_balanced

__all__ = ["BarStreamFleet", "claim_pending"]

log = logging.getLogger(__name__)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def claim_pending(redis: BusRedis, stream: str, group: str, consumer: str) -> int:
    """Every entry of `stream` pending in `group` (any consumer's) moved to `consumer`, so it
    reads them first, in order; how many. (Not JUSTID: redis-py drops the cursor of that answer.)"""
    start, moved = "0-0", 0
    while True:
        reply = await redis.xautoclaim(stream, group, consumer, min_idle_time=0, start_id=start, count=100)
        start, moved = _text(reply[0]), moved + len(reply[1])
        if start == "0-0":
            return moved


@dataclass
class _Held:
    lease: Lease
    stop: asyncio.Event
    task: asyncio.Task[None]


class BarStreamFleet:
    """The streams of `pattern` and those this replica holds."""

    def __init__(
        self,
        redis: BusRedis,
        aggregator: Aggregator,
        options: Callable[[str], ConsumerOptions],
        group: str,
        pattern: str,
        holder: str,
        lease_ttl_ms: int,
    ) -> None:
        self.redis = redis
        self.aggregator = aggregator
        self.options = options  # a stream's runner options
        self.pattern = pattern
        self.holder = holder
        self.lease_ttl_ms = lease_ttl_ms
        self.group = group
        self.held: dict[str, _Held] = {}
        self.members = Membership(redis, members_group(self.group, pattern), holder, lease_ttl_ms)

    async def run(self, stop: asyncio.Event) -> None:
        """`balance` every third of the ttl until `stop`, then every stream given back."""
        try:
            await keep_balanced(self.balance, self.lease_ttl_ms / 3000, stop, "bars: the streams' leases")
        finally:
            await self.close()

    async def balance(self) -> None:
        members = await self.members.beat()
        for stream in self.aggregator.take_lost() & set(self.held):
            log.warning("bars: %s: a commit was fenced (another replica holds it): dropped", stream)
            await self._drop(stream)
        for stream, held in list(self.held.items()):
            if held.task.done():
                error = None if held.task.cancelled() else held.task.exception()
                log.error("bars: %s: its consumer ended (%r); given back", stream, error)
                await self._give_back(stream)
            elif not await held.lease.renew():
                log.warning("bars: %s: lease lost (another replica holds it): dropped", stream)
                await self._drop(stream)
        streams = await self._streams()
        todo = plan(self.holder, self.held, streams, members)
        for stream in todo.give_back:
            log.info("bars: %s given back (%d replicas)", stream, members)
            await self._give_back(stream)
        for stream in todo.wanted:
            if len(self.held) >= todo.share:
                break
            await self._take(stream)
        metrics.STREAMS_HELD.set(len(self.held))

    async def _streams(self) -> list[str]:
        found = self.redis.scan_iter(match=self.pattern, count=1000, _type="STREAM")
        return [_text(name) async for name in found]

    async def _take(self, stream: str) -> None:
        lease = Lease(self.redis, stream_lease_name(self.group, stream), self.holder, self.lease_ttl_ms)
        if not await lease.acquire():
            return
        assert lease.token is not None
        try:
            await self.aggregator.adopt(stream, Fenced(lease.key, lease.token))
            options = self.options(stream)
            await _ensure_group(self.redis, stream, options)
            moved = await claim_pending(self.redis, stream, options.group, options.consumer)
        except BaseException:
            await self.aggregator.drop(stream)
            await lease.release()
            raise
        stop = asyncio.Event()
        consumer = GroupConsumer(self.redis, options, self.aggregator.handle)
        task = asyncio.create_task(consumer.run(stop), name=f"bars {stream}")
        self.held[stream] = _Held(lease, stop, task)
        metrics.STREAM_CHANGES.labels("taken").inc()
        log.info("bars: %s taken (lease %s, %d entries pending)", stream, lease.token, moved)

    async def _give_back(self, stream: str) -> None:
        """Gracefully: the runner ends after its current commit, then the lease is released."""
        held = self.held.pop(stream)
        held.stop.set()
        await asyncio.gather(held.task, return_exceptions=True)
        await self.aggregator.drop(stream)
        await held.lease.release()
        self._forget(stream)
        metrics.STREAM_CHANGES.labels("given_back").inc()

    async def _drop(self, stream: str) -> None:
        """Lost: the runner cancelled (its commits are fenced anyway), the state forgotten. Told to
        stop as well: a cancellation that meets an expired Redis deadline (a process woken after a
        pause) comes out as a Redis timeout, which the runner rides out."""
        held = self.held.pop(stream)
        held.stop.set()
        held.task.cancel()
        await asyncio.gather(held.task, return_exceptions=True)
        await self.aggregator.drop(stream)
        self._forget(stream)
        metrics.STREAM_CHANGES.labels("lost").inc()

    def _forget(self, stream: str) -> None:
        """The stream's pending and lag are the next holder's to report."""
        for gauge in (PENDING, LAG):
            with contextlib.suppress(KeyError):
                gauge.remove(stream, self.group)

    async def close(self) -> None:
        """Every stream given back (Redis away: the leases expire)."""
        for stream in list(self.held):
            try:
                await self._give_back(stream)
            except REDIS_UNREACHABLE as exc:
                log.warning("bars: %s not released (Redis unreachable: %s): it expires", stream, exc)
        with contextlib.suppress(*REDIS_UNREACHABLE):
            await self.members.leave()


async def _ensure_group(redis: BusRedis, stream: str, options: ConsumerOptions) -> None:
    try:
        await redis.xgroup_create(stream, options.group, id=options.start_id, mkstream=True)
    except ResponseError as exc:
        if "BUSYGROUP" not in str(exc):
            raise
