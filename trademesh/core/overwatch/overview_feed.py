"""One gathering of the overview for every StreamOverview stream (issue 57, item 11).

Each stream used to gather for itself every second: the inspector, the ledger and every
detector asked once per subscriber, and 200 subscribers cost about 0.8 of Overwatch's core. Now
one task gathers each `every_s` while anyone listens (started with the first listener, stopped
with the last) and every listener sends the newest overview. A listener's queue is that one
newest overview: a slow stream skips to the latest, never holds a backlog, never slows another.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator

from trademesh.core.overwatch import metrics
from trademesh.overwatch.v1 import overwatch_pb2 as ow

__all__ = ["OverviewFeed", "OverviewListener"]

log = logging.getLogger(__name__)

Take = Callable[[int], Awaitable[ow.Overview]]


class OverviewListener:
    """One stream's view of the feed: each overview newer than the one it sent last."""

    def __init__(self, feed: OverviewFeed) -> None:
        self._feed = feed
        self._sent: ow.StreamOverviewResponse | None = None

    async def next(self) -> ow.StreamOverviewResponse:
        """The newest overview, once there is one this listener has not sent (it may have
        skipped others meanwhile); the gathering's failure, if it failed."""
        while True:
            feed = self._feed
            if feed.failure is not None:
                raise feed.failure
            latest = feed.latest
            if latest is not None and latest is not self._sent:
                self._sent = latest
                return latest
            await feed.changed.wait()


class OverviewFeed:
    def __init__(self, take: Take, every_s: float, clock: Callable[[], int]) -> None:
        self._take = take
        self.every_s = every_s
        self._clock = clock
        # The newest overview (as sent: every stream sends the same message) and its change.
        self.latest: ow.StreamOverviewResponse | None = None
        self.changed = asyncio.Event()
        self.failure: BaseException | None = None
        self._listeners = 0
        self._task: asyncio.Task[None] | None = None

    @property
    def listeners(self) -> int:
        return self._listeners

    @contextlib.contextmanager
    def listening(self) -> Iterator[OverviewListener]:
        """A listener for the `with` block; the gathering runs while any block is open."""
        self._join()
        try:
            yield OverviewListener(self)
        finally:
            self._leave()

    async def close(self) -> None:
        """The gathering stopped (the service stops), its task awaited."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def _join(self) -> None:
        self._listeners += 1
        metrics.OVERVIEW_LISTENERS.set(self._listeners)
        if self._task is None or self._task.done():
            self.latest, self.failure = None, None
            self._task = asyncio.create_task(self._gather(), name="overwatch overview")

    def _leave(self) -> None:
        self._listeners -= 1
        metrics.OVERVIEW_LISTENERS.set(self._listeners)
        if self._listeners == 0 and self._task is not None:
            # Nobody listens: no gathering, and no overview kept to go stale.
            self._task.cancel()
            self._task, self.latest = None, None

    async def _gather(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                started = loop.time()
                overview = await self._take(self._clock())
                metrics.OVERVIEW_GATHERINGS.inc()
                self._publish(ow.StreamOverviewResponse(overview=overview))
                await asyncio.sleep(max(self.every_s - (loop.time() - started), 0.0))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a defect in the gathering: every stream ends with it
            log.exception("overwatch: the overview's gathering failed")
            self.failure = exc
            self._wake()

    def _publish(self, message: ow.StreamOverviewResponse) -> None:
        self.latest = message
        self._wake()

    def _wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()
