"""The recorder service: prepare the database, then consume the bus into it until stopped.

prepare() runs before the service announces itself (migrations, partitions); a database it
cannot reach or migrate ends the process with one line naming the redacted URL. Then
Recorder.work() runs the consumer group and, beside it, the maintenance loop (partitions
ahead, retention). A batch is acknowledged only after its transaction committed:
- bad data (Corrupt) fails the batch: the consumer retries it entry by entry and, after
  max_deliveries, dead-letters the bad entry while the others are recorded;
- an unreachable database holds the batch and retries it until the database is back, so a
  database outage never dead-letters good entries;
- any other database fault stops the recorder (exit 1); its entries stay pending for the
  next start.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

import asyncpg
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core.bus.consumer import ConsumerOptions, Entry, GroupConsumer
from core.env import redact_url
from core.errors import Corrupt, FailedPrecondition, Unavailable
from core.recorder.migrate import migrate
from core.recorder.partitions import DAY_NS, Partitions, day_of
from core.recorder.writer import Writer
from core.service import Ready

__all__ = ["Recorder", "RecorderOptions", "default_consumer", "prepare"]

log = logging.getLogger(__name__)

_RETRY_MAX_S = 5.0


def default_consumer() -> str:
    # Stable across restarts, so a restarted recorder reads its own pending entries first.
    return f"recorder-{socket.gethostname()}"


@dataclass(frozen=True)
class RecorderOptions:
    database_url: str
    redis_url: str
    # Whole days of data to keep; 0 keeps everything.
    retention_days: int = 0
    # Entries read per stream per batch (each entry holds many events).
    batch: int = 500
    consumer: str = "recorder"
    group: str = "recorder"
    patterns: tuple[str, ...] = ("md.*", "bars.*")
    claim_idle_ms: int = 30_000
    max_deliveries: int = 5
    # How often partitions ahead and retention are checked.
    maintenance_s: float = 300.0
    # Days after today whose partitions exist before any row needs them.
    days_ahead: int = 2

    def consumer_options(self) -> ConsumerOptions:
        return ConsumerOptions(
            group=self.group,
            consumer=self.consumer,
            patterns=self.patterns,
            batch=self.batch,
            claim_idle_ms=self.claim_idle_ms,
            max_deliveries=self.max_deliveries,
        )


async def prepare(pool: Any, options: RecorderOptions) -> Partitions:
    """Migrations, then the partitions of yesterday to `days_ahead` days from now."""
    partitions = Partitions()
    try:
        async with pool.acquire() as conn:
            await migrate(conn)
            await partitions.load(conn)
            today = day_of(time.time_ns())
            await partitions.ensure_days(conn, today - 1, today + options.days_ahead)
    except asyncpg.PostgresError as exc:
        where = redact_url(options.database_url)
        raise FailedPrecondition(f"cannot prepare the database at {where}: {exc}") from exc
    except (OSError, TimeoutError, asyncpg.InterfaceError) as exc:
        where = redact_url(options.database_url)
        raise Unavailable(f"lost the database at {where} while preparing it: {exc}") from exc
    return partitions


class Recorder:
    def __init__(self, pool: Any, partitions: Partitions, options: RecorderOptions) -> None:
        self.pool = pool
        self.options = options
        self.partitions = partitions
        self.writer = Writer(pool, partitions)
        self.stop = asyncio.Event()
        self.fault: BaseException | None = None
        self.rows_written = 0

    async def handle(self, stream: str, entries: list[Entry]) -> None:
        """The consumer's handler: returns once the entries' rows are committed."""
        await self._commit(stream, entries)

    async def handle_read(self, reads: list[tuple[str, list[Entry]]]) -> None:
        """Every stream of one bus read in one transaction: one commit wait instead of one per
        stream, which is most of the venue-to-commit latency on a busy machine."""
        await self._commit(f"{len(reads)} streams", [entry for _, entries in reads for entry in entries])

    async def _commit(self, label: str, entries: list[Entry]) -> None:
        if self.fault is not None:
            raise Unavailable("the recorder is stopping on a database fault")
        delay = 0.1
        while True:
            try:
                self.rows_written += await self.writer.write(entries)
                return
            except (Corrupt, Unavailable) as exc:
                if isinstance(exc, Corrupt) or self.stop.is_set():
                    raise
                log.warning("recorder %s: %s; retrying in %.1f s", label, exc, delay)
            except Exception as exc:
                self.fault = exc
                self.stop.set()
                raise
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)

    async def work(self, stop: asyncio.Event, ready: Ready) -> None:
        """The service's work (core.service.run_service)."""
        forward = asyncio.create_task(self._forward(stop))
        redis = aioredis.Redis.from_url(self.options.redis_url, socket_connect_timeout=5, socket_timeout=30)
        maintenance = asyncio.create_task(self.maintain())
        try:
            await self._reach_redis(redis)
            if not self.stop.is_set():
                await ready()
                consumer = GroupConsumer(
                    redis, self.options.consumer_options(), self.handle, self.handle_read
                )
                await consumer.run(self.stop)
        finally:
            for task in (forward, maintenance):
                task.cancel()
            await asyncio.gather(forward, maintenance, return_exceptions=True)
            await redis.aclose()
        if self.fault is not None:
            raise self.fault

    async def _forward(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.stop.set()

    async def _reach_redis(self, redis: Any) -> None:
        delay = 0.1
        while not self.stop.is_set():
            try:
                await redis.ping()
                return
            except (RedisError, OSError) as exc:
                log.warning("recorder: bus at %s unreachable (%s)", redact_url(self.options.redis_url), exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)

    async def maintain(self) -> None:
        """Partitions ahead and retention, now and every maintenance_s, until stopped."""
        while not self.stop.is_set():
            try:
                await self.maintain_once(time.time_ns())
            except Exception as exc:  # never fatal: the writer creates the partitions it needs itself
                log.warning(
                    "recorder: partition maintenance failed (%s); next try in %.0f s",
                    exc,
                    self.options.maintenance_s,
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.stop.wait(), self.options.maintenance_s)

    async def maintain_once(self, now_ns: int) -> list[str]:
        """Creates the coming days' partitions, drops those past retention; the dropped names."""
        today = day_of(now_ns)
        async with self.pool.acquire() as conn:
            await self.partitions.ensure_days(conn, today, today + self.options.days_ahead)
            if self.options.retention_days <= 0:
                return []
            dropped = await self.partitions.drop_before(conn, now_ns - self.options.retention_days * DAY_NS)
        if dropped:
            log.info("recorder: retention dropped %s", ", ".join(dropped))
        return dropped
