"""Watch loops: one per upstream stream, surviving disconnects, rate limits and resyncs.

Each loop calls its ccxt watch method forever. What ccxt raises decides what
happens next:
- rate limited (429/418, DDoS protection): count it, wait Retry-After when the
  venue sent one, else the backoff;
- sequence gap or checksum mismatch: count a resync (and the mismatch); the book's
  next emission is a snapshot marked as a resync (ccxt re-subscribes and rebuilds it);
  the watch is made again after the backoff, never at once;
- connection lost: a gap notice on the stream at once (consumers know data may
  be missing), count a reconnect, back off (doubling, with jitter), watch again;
- the venue does not know the symbol, or ccxt cannot watch the channel: the stream
  stops for good: FAILED in Admin (the venue is DEGRADED) and a GAP notice to its
  subscribers saying why.
A stream is CONNECTED as soon as the connection carrying it is open (a quiet stream,
e.g. an option's trades, is connected though no event has come yet), or when its
first event arrives. A watchdog restarts connections that stay silent too long.

Every failed watch is followed by a wait (the backoff, or the venue's Retry-After), so no
stream can hold the event loop, whatever its venue sends: a watch that fails at once, again
and again, would otherwise never yield (awaiting a future that is already done does not), and
gRPC, Admin and SIGTERM would wait behind it. The failed state is replaced first: ccxt's
client keeps a future rejected with an error it had stored for a watch not yet made (a book
that broke between two watches) and hands that same failed future to every later watch of
the stream; the watcher removes it, so the next watch waits for the venue again. The backoff
starts over once the stream has had events since its last failure.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import ccxt.pro

from trademesh.core.domain.model import StreamKey
from trademesh.core.platform.aio.backoff import Backoff
from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.venues.live.wire import BookResync
from trademesh.venues.runtime.feed import MarketFeed
from trademesh.venues.runtime.stats import StreamState, StreamStats

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
        self._events_at_failure = 0  # the stream's event count at its last failed watch
        # In the wait after a failed watch, before the next one: a replay's drain waits for it
        # (trademesh.venues.live.venue: what the stream's resubscription brings is the venue's work).
        self.backing_off = False

    def start(self) -> None:
        self._task = asyncio.create_task(
            self._run(), name=f"watch-{self.key.symbol}-{self.key.channel.value}"
        )

    async def stop(self) -> None:
        if self._task is not None:
            await cancel_and_wait(self._task)
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
            self.backing_off = False
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
                await self._retry(exc)
                continue
            except ccxt.NetworkError as exc:
                await self._disconnected(exc)
                continue
            except ccxt.BaseError as exc:
                log.warning("%s %s: venue error, retrying: %s", self.key.symbol, self.key.channel.value, exc)
                await self._retry(exc)
                continue
            except Exception as exc:  # a handler's own fault: the stream goes on, after the backoff
                log.exception("%s %s: watch failed, retrying", self.key.symbol, self.key.channel.value)
                await self._retry(exc)
                continue
            if self.stats.state is not StreamState.CONNECTED:
                self.stats.state = StreamState.CONNECTED
            self.backoff.reset()
            self._after_update()

    def _delay(self) -> float:
        """The backoff's next wait; it starts over when events came since the last failure (a new
        incident, not the same one failing again: a watch taken from the wire never returns)."""
        if self.stats.events_total != self._events_at_failure:
            self.backoff.reset()
        self._events_at_failure = self.stats.events_total
        return self.backoff.next()

    async def _retry(self, exc: BaseException) -> None:
        """Replace the failed state, then wait before watching again (yielding the loop)."""
        self.backing_off = True
        self._forget(exc)
        await self._wait(self._delay())

    async def _wait(self, delay: float) -> None:
        """Wait; a connection lost meanwhile (no watch was there to fail) is a loss all the same."""
        await asyncio.sleep(delay)
        connection = getattr(self._client, "connection", None)
        if connection is not None and getattr(connection, "closed", False) is True:
            self._lost()

    def _forget(self, exc: BaseException) -> None:
        """Drop the failed futures that delivered `exc` from the watch's ccxt connection.

        ccxt deletes a future when it resolves or rejects it, except one it rejects on creation
        with an error stored for it (Client.future): that one stays, already failed, and every
        later watch of its message hash gets it back at once."""
        futures = getattr(self._client, "futures", None)
        if not isinstance(futures, dict):
            return
        for message_hash, future in list(futures.items()):
            if future.done() and not future.cancelled() and future.exception() is exc:
                del futures[message_hash]

    async def _rate_limited(self, exc: Exception) -> None:
        self.backing_off = True
        self.stats.rate_limit_hits += 1
        self._forget(exc)
        delay = self._retry_after() or self._delay()
        log.warning(
            "%s %s: rate limited, waiting %.1f s: %s", self.key.symbol, self.key.channel.value, delay, exc
        )
        await self._wait(delay)

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
        self.backing_off = True
        self._lost()
        self._forget(exc)
        delay = self._delay()
        log.warning(
            "%s %s: disconnected (%s), reconnecting in %.1f s",
            self.key.symbol,
            self.key.channel.value,
            exc,
            delay,
        )
        await asyncio.sleep(delay)

    def _lost(self) -> None:
        """The stream's connection is lost: a GAP notice at once, a reconnect counted (once)."""
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
            await cancel_and_wait(self._task)

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
