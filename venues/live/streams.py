"""Watch loops: one per upstream stream, surviving disconnects, rate limits and resyncs.

Each loop calls its ccxt watch method forever. What ccxt raises decides what
happens next:
- rate limited (429/418, DDoS protection): count it, wait Retry-After when the
  venue sent one, else the backoff;
- sequence gap or checksum mismatch: count a resync (and the mismatch); the book's
  next emission is a snapshot marked as a resync (ccxt re-subscribes and rebuilds it);
- connection lost: a gap notice on the stream at once (consumers know data may
  be missing), count a reconnect, back off (doubling, with jitter), watch again;
- the venue does not know the symbol, or ccxt cannot watch the channel: the stream
  stops for good: FAILED in Admin (the venue is DEGRADED) and a GAP notice to its
  subscribers saying why.
A stream is CONNECTED as soon as the connection carrying it is open (a quiet stream,
e.g. an option's trades, is connected though no event has come yet), or when its
first event arrives. A watchdog restarts connections that stay silent too long.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt.pro

from core.backoff import Backoff
from core.model import StreamKey
from venues.live.wire import BookResync
from venues.runtime.feed import MarketFeed
from venues.runtime.stats import StreamState, StreamStats

__all__ = ["StreamWatcher", "Watchdog", "current_watcher"]

log = logging.getLogger(__name__)

# The watcher whose task is running: ccxt's watch() calls made inside it are its own.
_CURRENT: contextvars.ContextVar[StreamWatcher | None] = contextvars.ContextVar("watcher", default=None)


def current_watcher() -> StreamWatcher | None:
    return _CURRENT.get()


class StreamWatcher:
    def __init__(
        self,
        key: StreamKey,
        watch: Callable[[], Awaitable[Any]],
        stats: StreamStats,
        feed: MarketFeed,
        backoff: Backoff,
        after_update: Callable[[], None],
        retry_after: Callable[[], float | None],
        book: BookResync | None = None,
        checksums: bool = False,
    ) -> None:
        self.key = key
        self.checksums = checksums  # the venue's ChecksumError is a checksum mismatch (LiveSpec)
        self.stats = stats
        self.feed = feed
        self.backoff = backoff
        self.book = book
        self._watch = watch
        self._after_update = after_update
        self._retry_after = retry_after
        self._task: asyncio.Task[None] | None = None
        self._client: Any = None  # the ccxt connection of the latest watch call
        self._events_at_loss = 0  # the stream's event count at its last lost connection

    def start(self) -> None:
        self._task = asyncio.create_task(
            self._run(), name=f"watch-{self.key.symbol}-{self.key.channel.value}"
        )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self.stats.state = StreamState.STOPPED

    def watching(self, client: Any) -> None:
        """ccxt watches this stream on `client`: the stream is connected once that connection is open."""
        self._client = client
        connected = getattr(client, "connected", None)
        if connected is None:
            return
        if connected.done():
            self._on_connection(client, connected)
        else:
            connected.add_done_callback(lambda done: self._on_connection(client, done))

    def _on_connection(self, client: Any, done: asyncio.Future[Any]) -> None:
        if client is not self._client or done.cancelled() or done.exception() is not None:
            return
        if self.stats.state in (StreamState.CONNECTING, StreamState.DISCONNECTED):
            self.stats.state = StreamState.CONNECTED

    async def _run(self) -> None:
        _CURRENT.set(self)
        while True:
            try:
                await self._watch()
            except (ccxt.BadSymbol, ccxt.NotSupported) as exc:
                self._failed(exc)
                return
            except ccxt.DDoSProtection as exc:  # RateLimitExceeded too
                await self._rate_limited(exc)
                continue
            except ccxt.InvalidNonce as exc:  # ChecksumError too
                self._resync(exc)
                continue
            except ccxt.NetworkError as exc:
                await self._disconnected(exc)
                continue
            except ccxt.BaseError as exc:
                log.warning("%s %s: venue error, retrying: %s", self.key.symbol, self.key.channel.value, exc)
                await asyncio.sleep(self.backoff.next())
                continue
            if self.stats.state is not StreamState.CONNECTED:
                self.stats.state = StreamState.CONNECTED
                self.backoff.reset()
            self._after_update()

    async def _rate_limited(self, exc: Exception) -> None:
        self.stats.rate_limit_hits += 1
        delay = self._retry_after() or self.backoff.next()
        log.warning(
            "%s %s: rate limited, waiting %.1f s: %s", self.key.symbol, self.key.channel.value, delay, exc
        )
        await asyncio.sleep(delay)

    def _failed(self, exc: Exception) -> None:
        """The stream cannot go on: say so in Admin and to its subscribers."""
        reason = f"the venue cannot serve it ({type(exc).__name__}: {str(exc)[:200]})"
        log.error("%s %s: stream stopped for good: %s", self.key.symbol, self.key.channel.value, reason)
        self.stats.fail(reason)
        self.feed.gap(self.key.symbol, self.key.channel, f"stream stopped: {reason}")
        self.feed.flush()

    def _resync(self, exc: Exception) -> None:
        log.warning("%s %s: book out of sync, rebuilding: %s", self.key.symbol, self.key.channel.value, exc)
        if self.checksums and isinstance(exc, ccxt.ChecksumError):
            self.stats.checksum_mismatches += 1
        if self.book is not None:
            self.book.resync(f"venue book out of sync ({type(exc).__name__}): rebuilt from a new snapshot")

    async def _disconnected(self, exc: Exception) -> None:
        # Events since the last loss: a new incident, the backoff starts over. (A watch's return
        # also resets it; a stream taken from the wire (venues/live/wire.py) has none to return.)
        if self.stats.events_total != self._events_at_loss:
            self.backoff.reset()
        self._events_at_loss = self.stats.events_total
        if self.stats.state is not StreamState.DISCONNECTED:
            self.stats.state = StreamState.DISCONNECTED
            self.stats.reconnects += 1
            self.feed.gap(
                self.key.symbol,
                self.key.channel,
                "connection to the venue lost; reconnecting: events may be missing",
            )
            self.feed.flush()
            if self.book is not None:
                self.book.restart()
        delay = self.backoff.next()
        log.warning(
            "%s %s: disconnected (%s), reconnecting in %.1f s",
            self.key.symbol,
            self.key.channel.value,
            exc,
            delay,
        )
        await asyncio.sleep(delay)


class Watchdog:
    """Restarts a venue connection that has been silent longer than `silence_s`."""

    def __init__(self, exchange: Any, silence_s: float, quiet_ok: Callable[[], bool]) -> None:
        self.exchange = exchange
        self.silence_s = silence_s
        self.quiet_ok = quiet_ok
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="watchdog")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(min(5.0, self.silence_s / 4))
            if not self.quiet_ok():
                await self.check()

    async def check(self) -> None:
        now_ms = time.time() * 1000
        for url, client in list(self.exchange.clients.items()):
            last = getattr(client, "last_message_at", None)
            if last is None or client.closed() or now_ms - last < self.silence_s * 1000:
                continue
            self.restarts += 1
            log.warning(
                "watchdog: %s silent for %.0f s, restarting the connection", url, (now_ms - last) / 1000
            )
            client.reset(ccxt.NetworkError(f"silent for more than {self.silence_s:g} s (watchdog)"))
            await client.close()
