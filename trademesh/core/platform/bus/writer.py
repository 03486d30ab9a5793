"""A venue's writer to the bus: queue, flush in pipelined batches, ride out Redis outages.

Ingest's followers (trademesh.core.ingest) and a venue's direct writer
(trademesh.venues.runtime.direct) hand over encoded batches; one flush loop writes whatever
queued since the last flush in one round trip (so batching grows with load, latency does not).
When Redis is unreachable, entries stay queued and followers wait once the queue is full (the
venue then ends their streams, which resume from the last published position: nothing is lost).
When Redis comes back empty (restarted without its data), what consumers had not yet read is
gone: followers publish gap markers from the oldest point a consumer group may have missed.

The restart is found whether or not a write failed: after an outage, before the next write; and
every second, by the look at the consumer groups (watch_groups). A writer that wrote nothing while
Redis was down (not scheduled, or nothing to write) meets no error at all: another task's command
found the closed connection first and redis-py opened it again, on the new Redis, for the next
write. How far the groups got is kept only from a look during which no server restarted: read
from the new Redis, it would put the horizon past the entries lost.

Loss is judged per stream, by the run id of the server that holds it (the one Redis; on a
cluster the master of its slot): a failover of another master (its replica promoted: a new run
id there) loses nothing of this stream, so it neither marks it nor waits for that master; a
failover of its own master may have lost what the replica had not received yet, and marks it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.retry import until_reachable, wait_any
from trademesh.core.platform.bus.codec import wrap_executions, wrap_market
from trademesh.core.platform.bus.group import Fenced
from trademesh.core.platform.bus.publisher import Publisher
from trademesh.core.platform.bus.redis import checked_ping, refresh_layout, stream_run_ids, unreachable
from trademesh.core.platform.logs.redact import redact_url

__all__ = ["BusWriter", "OnLoss"]

log = logging.getLogger(__name__)

# Margin between a bus entry's id time (publish) and its events' times (venue).
_EVENT_MARGIN_NS = 5_000_000_000
_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
# Retries while Redis is away: at most 1 s apart (1.5 with the jitter), so a stream whose
# master failed over is written again within about a second of its replica taking over.
_RETRY_FIRST_S, _RETRY_MAX_S = 0.1, 1.0

# Told, per stream whose server lost entries, the time since which its entries may be lost (ns).
OnLoss = Callable[[dict[str, int]], None]


class BusWriter:
    def __init__(
        self, publisher: Publisher, source: str, max_queued: int = 20_000, name: str = "ingest"
    ) -> None:
        self.publisher = publisher
        self.name = name  # who writes, in the log lines
        self.source = source
        self.max_queued = max_queued
        self.on_loss: OnLoss = lambda lost: None
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._flushed = asyncio.Event()  # set after every flush
        # Per stream written: the run id of the server holding it, when last read; the streams
        # published whose server's run id is not read yet (read after their first flush).
        self._run_ids: dict[str, str] = {}
        self._unread: set[str] = set()
        # The streams written trimmed by age (market data): their groups' lag is checked in time too.
        self._aged: set[str] = set()
        # Per stream: entries older than this (ms) were delivered to every consumer group.
        self._delivered_ms: dict[str, int] = {}
        self._started_ns = time.time_ns()
        self.outages = 0
        # Set by an outage: the next write waits for the streams' servers' run ids to be read and
        # compared (a restart lost what it held), so a write that lands first cannot hide it.
        self._unverified = False
        # One comparison of run ids at a time (the flush loop's, the groups' look): each reads and
        # updates the run ids known, so a restart is said once, against the run id before it.
        self._verifying = asyncio.Lock()

    async def publish(self, stream: str, market_events: bytes, fence: Fenced | None = None) -> None:
        """An encoded MarketEvents; with `fence`, written only while its lease holds its token."""
        await self._wait_for_room()
        self._note(stream)
        self._aged.add(stream)
        self.publisher.add(stream, wrap_market(self.source, market_events), fence=fence, aged=True)
        self._wake.set()

    async def publish_envelope(
        self, stream: str, envelope: bytes, fence: Fenced | None = None, maxlen: int | None = None
    ) -> None:
        """A whole encoded Envelope (a venue's funding payments); with `fence`, as publish();
        `maxlen`: the stream's own bound (Publisher.add)."""
        await self._wait_for_room()
        self._note(stream)
        self.publisher.add(stream, envelope, fence=fence, maxlen=maxlen)
        self._wake.set()

    async def publish_executions(
        self, stream: str, executions: bytes, epoch: int, position: int, fence: Fenced | None = None
    ) -> None:
        """An encoded Executions, written once: not when the stream already holds (epoch, position).
        A venue that numbers nothing (epoch 0) gets plain writes: nothing is lost, repeats may be."""
        await self._wait_for_room()
        once = (epoch, position) if epoch else None
        self._note(stream)
        self.publisher.add(stream, wrap_executions(self.source, executions), once=once, fence=fence)
        self._wake.set()

    async def drain(self, timeout_s: float = 5.0) -> bool:
        """Until what is queued now is written by the flush loop; False after `timeout_s` (Redis
        away: what is left is refused once its lease is released, and the next holder resumes
        from the bus)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while self.publisher.queued:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            self._flushed.clear()
            self._wake.set()
            await wait_any(self._flushed, timeout_s=remaining)
        return True

    def _note(self, stream: str) -> None:
        if stream not in self._run_ids:
            self._unread.add(stream)

    async def _wait_for_room(self) -> None:
        while self.publisher.queued >= self.max_queued:
            self._room.clear()
            await self._room.wait()

    async def connect(self, stop: asyncio.Event, url: str) -> bool:
        """Waits for Redis at `url` to answer; False if stopped first (InvalidArgument when what
        answers is not a Redis that takes the URL: trademesh.core.platform.bus.redis.checked_ping)."""

        async def first_answer() -> bool:
            await checked_ping(self.publisher.redis, url)
            return True

        where = redact_url(url)
        answered = await until_reachable(
            first_answer, what=f"{self.name}: the bus at {where}", retry_on=_REDIS_ERRORS, stop=stop
        )
        return answered is not None

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(_RETRY_FIRST_S, _RETRY_MAX_S)
        while True:
            if not self.publisher.queued:
                if stop.is_set():
                    return
                self._wake.clear()
                await wait_any(self._wake, stop)
                continue
            try:
                if self._unverified:
                    await self._check_restart()
                await self.publisher.flush()
                self._room.set()
                self._flushed.set()
                backoff.reset()
                if self._unread:
                    await self._read_run_ids()
            except Exception as exc:
                if not unreachable(exc):
                    raise
                if stop.is_set():
                    log.error(
                        "%s: stopping with %d entries unwritten: Redis unreachable",
                        self.name,
                        self.publisher.queued,
                    )
                    return
                await self._outage(exc, backoff)

    async def watch_groups(
        self, streams: Callable[[], list[str]], stop: asyncio.Event, every_s: float = 1.0
    ) -> None:
        """Track how far every consumer group of the streams written now got (and warn near the
        trim point), and whether their servers restarted (a loss no write may have met)."""
        while not stop.is_set():
            try:
                await self._look(streams())
            except Exception as exc:  # Redis away: the next look; anything else said, and looked again
                if not unreachable(exc):
                    log.warning("%s: the bus's groups and run ids not read: %r", self.name, exc)
            await wait_any(stop, timeout_s=every_s)

    async def _look(self, streams: list[str]) -> None:
        """One look: the servers' run ids compared (a restart said), how far each stream's groups
        got, then the run ids again: what was read is kept only if no server restarted meanwhile."""
        await self._verify_run_ids()
        delivered: dict[str, int] = {}
        for stream in streams:
            try:
                found = await self._delivered(stream)
            except _REDIS_ERRORS:
                raise
            except Exception as exc:  # a stream not made yet, or no groups
                log.debug("%s: group check of %s: %s", self.name, stream, exc)
                continue
            if found is not None:
                delivered[stream] = found
        if not await self._verify_run_ids():
            self._delivered_ms.update(delivered)

    async def _delivered(self, stream: str) -> int | None:
        """The oldest point (ms) one of `stream`'s groups may not have read; None without one."""
        groups = await self.publisher.redis.xinfo_groups(stream)
        delivered = [int(_text(g["last-delivered-id"]).split("-")[0]) for g in groups]
        if 0 in delivered:  # a group that read nothing yet: it misses all the stream holds
            first = await self.publisher.redis.xrange(stream, count=1)
            delivered = [int(_text(first[0][0]).split("-")[0])] if first else [d for d in delivered if d]
        await self.publisher.check_lag(stream, aged=stream in self._aged)
        return min(delivered) if delivered else None

    async def _outage(self, exc: Exception, backoff: Backoff) -> None:
        self.outages += 1
        delay = backoff.next()
        log.warning(
            "%s: Redis unreachable (%s); %d entries queued; retrying in %.1f s",
            self.name,
            exc,
            self.publisher.queued,
            delay,
        )
        self._unverified = True
        await asyncio.sleep(delay)
        await refresh_layout(self.publisher.redis)  # a cluster's failover may have moved the slots

    async def _read_run_ids(self) -> None:
        """The run ids of the servers of the streams first written by the last flush."""
        unread, self._unread = self._unread, set()
        try:
            self._run_ids.update(await stream_run_ids(self.publisher.redis, unread))
        except BaseException:
            self._unread |= unread
            raise

    async def _check_restart(self) -> None:
        """After an outage, before any write: the run ids compared (_verify_run_ids); a Redis
        error goes up (still away: another outage)."""
        await self._verify_run_ids()
        self._unverified = False

    async def _verify_run_ids(self) -> bool:
        """Each stream's server's run id against the one known (a restart, or a replica promoted,
        says what of that stream may be lost: on_loss); whether one changed. A Redis error goes up."""
        async with self._verifying:
            now = await stream_run_ids(self.publisher.redis, self._run_ids)
            lost = {
                stream: self._loss_horizon_ns(stream)
                for stream, run_id in now.items()
                if run_id != self._run_ids[stream]
            }
            if lost:
                log.warning(
                    "%s: Redis restarted or failed over (run id changed) under %d of %d streams: "
                    "entries since %d ns may be lost",
                    self.name,
                    len(lost),
                    len(now),
                    min(lost.values()),
                )
                self.on_loss(lost)
            self._run_ids.update(now)
            return bool(lost)

    def _loss_horizon_ns(self, stream: str) -> int:
        """Since when `stream`'s entries may be lost: the oldest point one of its consumer groups
        may not have read (less a margin), else since this writer started."""
        delivered = self._delivered_ms.get(stream)
        if delivered is None:
            return self._started_ns
        return delivered * 1_000_000 - _EVENT_MARGIN_NS


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
