"""The recorder service: prepare the database, then consume the bus into it until stopped.

prepare() runs before the service is ready (migrations, partitions); a database it cannot
reach or migrate ends the process with one line naming the redacted URL. Then
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
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from redis.exceptions import RedisError

from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.retry import until_reachable
from trademesh.core.platform.bus.consumer import Entry, GroupConsumer
from trademesh.core.platform.bus.redis import checked_ping, open_redis
from trademesh.core.platform.config.env import redact_url
from trademesh.core.platform.errors import Corrupt, FailedPrecondition, Unavailable
from trademesh.core.platform.service.lifecycle import ServiceContext, WorkerApp
from trademesh.core.recorder.config import RecorderConfig
from trademesh.core.recorder.database import open_pool
from trademesh.core.recorder.migrate import migrate
from trademesh.core.recorder.partitions import DAY_NS, Partitions, day_of
from trademesh.core.recorder.writer import Writer

__all__ = ["Recorder", "RecorderConfig", "RecorderService", "default_consumer", "prepare"]

log = logging.getLogger(__name__)

_CLOSE_TIMEOUT_S = 5.0


def default_consumer() -> str:
    # Stable across restarts, so a restarted recorder reads its own pending entries first.
    return f"recorder-{socket.gethostname()}"


async def prepare(pool: Any, options: RecorderConfig) -> Partitions:
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
    def __init__(self, pool: Any, partitions: Partitions, options: RecorderConfig) -> None:
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
        backoff = Backoff(0.1, 5.0)
        while True:
            try:
                self.rows_written += await self.writer.write(entries)
                return
            except (Corrupt, Unavailable) as exc:
                if isinstance(exc, Corrupt) or self.stop.is_set():
                    raise
                delay = backoff.next()
                log.warning("recorder %s: %s; retrying in %.1f s", label, exc, delay)
            except Exception as exc:
                self.fault = exc
                self.stop.set()
                raise
            await asyncio.sleep(delay)

    async def work(self, stop: asyncio.Event, ready: Callable[[], Awaitable[None]]) -> None:
        """Consume until `stop` (calls `ready` once the bus answers)."""
        forward = asyncio.create_task(self._forward(stop))
        redis = open_redis(self.options.redis_url)
        maintenance = asyncio.create_task(self.maintain())
        try:
            reached = await until_reachable(
                lambda: checked_ping(redis, self.options.redis_url),
                what=f"recorder: the bus at {redact_url(self.options.redis_url)}",
                retry_on=(RedisError, OSError),
                stop=self.stop,
            )
            if reached is not None:
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


class RecorderService(WorkerApp[RecorderConfig]):
    """The recorder as a service (trademesh.core.platform.service.lifecycle):
    open the pool, prepare, consume until stopped."""

    name = "recorder"

    async def run(self, ctx: ServiceContext) -> None:
        config = self.config
        pool = await open_pool(config.database_url)
        log.info(
            "recorder: database %s, bus %s, streams %s, retention %s",
            redact_url(config.database_url),
            redact_url(config.redis_url),
            " ".join((*config.patterns, *config.streams)),
            f"{config.retention_days} days" if config.retention_days else "forever",
        )
        try:
            partitions = await prepare(pool, config)
            await Recorder(pool, partitions, config).work(ctx.stop, ctx.ready)
        finally:
            try:
                await asyncio.wait_for(pool.close(), _CLOSE_TIMEOUT_S)
            except TimeoutError:
                pool.terminate()
