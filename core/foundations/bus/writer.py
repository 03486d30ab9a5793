"""A venue's writer to the bus: queue, flush in pipelined batches, ride out Redis outages.

Ingest's followers (core.ingest) and a venue's direct writer (venues.runtime.direct) hand over
encoded batches; one flush loop writes whatever queued since the last
flush in one round trip (so batching grows with load, latency does not). When Redis is
unreachable, entries stay queued and followers wait once the queue is full (the venue then
ends their streams, which resume from the last published position: nothing is lost). When
Redis comes back empty (restarted without its data), what consumers had not yet read is
gone: followers publish gap markers from the oldest point a consumer group may have missed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from core.foundations.backoff import Backoff
from core.foundations.bus.codec import wrap_executions, wrap_market
from core.foundations.bus.group import Fenced
from core.foundations.bus.publisher import Publisher
from core.foundations.bus.redis import checked_ping, server_run_id
from core.foundations.redact import redact_url
from core.foundations.retry import until_reachable, wait_any

__all__ = ["BusWriter"]

log = logging.getLogger(__name__)

# Margin between a bus entry's id time (publish) and its events' times (venue).
_EVENT_MARGIN_NS = 5_000_000_000
_REDIS_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


class BusWriter:
    def __init__(
        self, publisher: Publisher, source: str, max_queued: int = 20_000, name: str = "ingest"
    ) -> None:
        self.publisher = publisher
        self.name = name  # who writes, in the log lines
        self.source = source
        self.max_queued = max_queued
        self.on_loss: Callable[[int], None] = lambda since_ns: None
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._flushed = asyncio.Event()  # set after every flush
        self._run_id: str | None = None
        # Per stream: entries older than this (ms) were delivered to every consumer group.
        self._delivered_ms: dict[str, int] = {}
        self._started_ns = time.time_ns()
        self.outages = 0
        # Set by an outage: the next write waits for Redis's run id to be read and compared (a
        # restart lost what it held), so a write that lands first cannot hide the restart.
        self._unverified = False

    async def publish(self, stream: str, market_events: bytes, fence: Fenced | None = None) -> None:
        """An encoded MarketEvents; with `fence`, written only while its lease holds its token."""
        await self._wait_for_room()
        self.publisher.add(stream, wrap_market(self.source, market_events), fence=fence)
        self._wake.set()

    async def publish_envelope(self, stream: str, envelope: bytes, fence: Fenced | None = None) -> None:
        """A whole encoded Envelope (a venue's funding payments); with `fence`, as publish()."""
        await self._wait_for_room()
        self.publisher.add(stream, envelope, fence=fence)
        self._wake.set()

    async def publish_executions(
        self, stream: str, executions: bytes, epoch: int, position: int, fence: Fenced | None = None
    ) -> None:
        """An encoded Executions, written once: not when the stream already holds (epoch, position).
        A venue that numbers nothing (epoch 0) gets plain writes: nothing is lost, repeats may be."""
        await self._wait_for_room()
        once = (epoch, position) if epoch else None
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

    async def _wait_for_room(self) -> None:
        while self.publisher.queued >= self.max_queued:
            self._room.clear()
            await self._room.wait()

    async def connect(self, stop: asyncio.Event, url: str) -> bool:
        """Waits for Redis at `url` to answer; False if stopped first (InvalidArgument when what
        answers is not a Redis that takes the URL: core.foundations.bus.redis.checked_ping)."""

        async def first_answer() -> str:
            await checked_ping(self.publisher.redis, url)
            return await self._server_run_id()

        where = redact_url(url)
        run_id = await until_reachable(
            first_answer, what=f"{self.name}: the bus at {where}", retry_on=_REDIS_ERRORS, stop=stop
        )
        self._run_id = run_id
        return run_id is not None

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff(0.1, 3.0)
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
            except _REDIS_ERRORS as exc:
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
        trim point)."""
        while not stop.is_set():
            for stream in streams():
                try:
                    await self._note_delivered(stream)
                except _REDIS_ERRORS:
                    break
                except Exception as exc:  # a stream not made yet, or no groups
                    log.debug("%s: group check of %s: %s", self.name, stream, exc)
            await wait_any(stop, timeout_s=every_s)

    async def _note_delivered(self, stream: str) -> None:
        groups = await self.publisher.redis.xinfo_groups(stream)
        delivered = [int(_text(g["last-delivered-id"]).split("-")[0]) for g in groups]
        if 0 in delivered:  # a group that read nothing yet: it misses all the stream holds
            first = await self.publisher.redis.xrange(stream, count=1)
            delivered = [int(_text(first[0][0]).split("-")[0])] if first else [d for d in delivered if d]
        if delivered:
            self._delivered_ms[stream] = min(delivered)
        await self.publisher.check_lag(stream)

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

    async def _check_restart(self) -> None:
        """After an outage, before any write: Redis's run id against the one known (a restart
        says what may be lost: on_loss); a Redis error goes up (still away: another outage)."""
        run_id = await self._server_run_id()
        if self._run_id is not None and run_id != self._run_id:
            since = self._loss_horizon_ns()
            log.warning(
                "%s: Redis restarted (run id changed): entries since %d ns may be lost", self.name, since
            )
            self.on_loss(since)
        self._run_id = run_id
        self._unverified = False

    def _loss_horizon_ns(self) -> int:
        if not self._delivered_ms:
            return self._started_ns
        return min(self._delivered_ms.values()) * 1_000_000 - _EVENT_MARGIN_NS

    async def _server_run_id(self) -> str:
        return await server_run_id(self.publisher.redis)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
