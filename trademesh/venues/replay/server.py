"""The replay stand-in: an aiohttp server speaking a venue's REST and WebSocket APIs.

Every exchange host is served under its own first path segment: ccxt's
`wss://stream.binance.com:9443/ws` becomes `ws://127.0.0.1:<port>/stream.binance.com:9443/ws`
(trademesh.venues.live.exchange rewrites the urls), so one server stands in for all of a
venue's hosts and knows which one was asked.

Playback starts once the venue releases it (when its first market-data subscriber arrives, so
that subscriber sees the whole session) and the client's subscriptions have settled; it sends
each captured market frame to the connections subscribed to its topic on its endpoint, in
capture order, at full speed (yielding between frames, and waiting while a subscriber of the
venue is far behind, so nothing is lost downstream) or at the recorded pace (or a multiple of
it, ReplayOptions.speed), and applies the injected faults (see Fault). A subscription to a topic
the capture holds under another name of the same stream (ReplayAdapter.stream_of) joins the
captured one. When a client connection closes mid-replay, playback waits until its topics are
subscribed again. Every frame is tallied (trademesh.venues.replay.tally) and the replay ends
with its summary line; then, once the venue has handled every frame it was sent (ReplayServer's
drain), with the DRAINED line.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import itertools
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import WSMsgType, web

from trademesh.core.platform.aio.cancellation import cancel_and_wait
from trademesh.core.platform.errors import InvalidArgument
from trademesh.venues.replay.adapter import (
    MarketFrame,
    MockConnection,
    ReplayAdapter,
    RestAnswer,
    RestRequest,
)
from trademesh.venues.replay.tally import Drop

__all__ = ["DRAINED", "Fault", "FaultKind", "ReplayOptions", "ReplayServer", "parse_fault"]

log = logging.getLogger(__name__)

# Subscriptions are taken as settled after this long without a new one.
_SETTLE_S = 0.3
# Full speed never outruns the venue's subscribers: playback waits while one is this far behind.
_BACKLOG_LIMIT = 64
# How late a `slow` fault answers (longer than the client's request timeout in the tests).
_SLOW_ANSWER_S = 3.0
# Longest wait for the adapter's ready() (e.g. rate-limited snapshot fetches).
_READY_WAIT_S = 10.0
# After a forced disconnect, how long playback waits for the client to come back.
_RECONNECT_WAIT_S = 30.0
# Before a forced disconnect, how long the frames already played may take to be written.
_DRAIN_S = 5.0
# After playback, the longest wait for the venue to have handled every frame (ReplayServer._drain).
_HANDLED_WAIT_S = 30.0
# The line logged once it has: what a reader of the venue's log may wait for.
DRAINED = "replay drained: the venue has handled every frame it was sent"


async def _nothing() -> bool:
    return False


class FaultKind(enum.Enum):
    DISCONNECT = "disconnect"  # close every connection before market frame N; resume once resubscribed
    GAP = "gap"  # drop the first book frame at or after N (a sequence gap for the client)
    REPEAT = "repeat"  # send the first book frame at or after N twice
    REORDER = "reorder"  # send the first book frame at or after N after the next frame of its topic
    MALFORMED = "malformed"  # send a frame the client cannot parse before market frame N
    RATELIMIT = "ratelimit"  # answer the next N REST calls after playback starts with 429 + Retry-After
    # Answer the next N history calls (trades, candles, tickers: ReplayAdapter.is_history) with 429
    # + Retry-After, whether playback started or not (a download reads history without subscribing).
    HISTORY_RATELIMIT = "history-ratelimit"
    BAN = "ban"  # as history-ratelimit, with 418: Binance's answer to a client that went on after 429s
    SLOW = "slow"  # carry out the next N order calls (POSTs, or as the adapter says) but answer after 3 s


# The faults that befall the first book frame at or after N (the others act at frame N itself,
# or on REST calls).
_BOOK_FAULTS = (FaultKind.GAP, FaultKind.REPEAT, FaultKind.REORDER)
# The faults that count REST calls, not market frames.
_REST_FAULTS = (FaultKind.RATELIMIT, FaultKind.SLOW, FaultKind.HISTORY_RATELIMIT, FaultKind.BAN)


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    at: int


@dataclass
class _BookFaults:
    """Book faults waiting for their book frame, and frames a reorder holds back (by topic)."""

    waiting: list[FaultKind] = field(default_factory=list)
    # topic -> the frame held back, with the text each subscriber gets (None: nobody subscribed)
    held: dict[str, tuple[MarketFrame, list[tuple[_Connection, str]] | None]] = field(default_factory=dict)


def parse_fault(text: str) -> Fault:
    kind, _, at = text.partition("@")
    kinds = ", ".join(k.value for k in FaultKind)
    try:
        fault = Fault(FaultKind(kind), int(at))
    except ValueError:
        raise InvalidArgument.field(
            "replay_fault", f"{text!r} is not KIND@N with KIND one of {kinds} and N a whole number"
        ) from None
    if fault.at < 0:
        raise InvalidArgument.field("replay_fault", f"{text!r}: N must be 0 or more")
    return fault


@dataclass(frozen=True)
class ReplayOptions:
    files: tuple[Path, ...]
    paced: bool = False
    # When paced: times the recorded pace (2.0 plays a 20 s session in 10 s, its silences halved).
    speed: float = 1.0
    faults: tuple[Fault, ...] = ()

    def __post_init__(self) -> None:
        if not 0 < self.speed < math.inf:  # NaN too
            raise InvalidArgument.field("replay-speed", f"must be a finite number above 0, got {self.speed}")


class _Delivery:
    """One captured frame on its way to the connections subscribed to it: served once any of
    them has written it, dropped (closed) when every one of them closed first."""

    __slots__ = ("_done", "pending", "written")

    def __init__(self, done: Callable[[bool], None]) -> None:
        self.pending = 0
        self.written = False
        self._done = done

    def settle(self, written: bool) -> None:
        self.pending -= 1
        self.written |= written
        if self.pending == 0:
            self._done(self.written)


class _Connection:
    """One client's WebSocket: every frame for it goes through one queue, so frames leave in
    the order they were made (replayed, replies, the adapter's own), whoever made them."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        path: str,
        endpoint: str | None,
        resolve: Callable[[_Connection, str], str],
        on_subscribe: Callable[[], None],
        on_enqueue: Callable[[], None],
    ) -> None:
        self.ws = ws
        self.path = path
        self.endpoint = endpoint
        self.topics: set[str] = set()  # captured topic names (routing) and the adapter's own
        self.asked: dict[str, str] = {}  # captured topic -> the name the client subscribed it under
        self._resolve = resolve
        self._on_subscribe = on_subscribe
        self._on_enqueue = on_enqueue
        self._outgoing: asyncio.Queue[tuple[str, _Delivery | None]] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write(), name=f"replay-ws-{path}")
        self._pongs: dict[bytes, asyncio.Future[None]] = {}  # pings sent, by payload, until answered
        self._pings = itertools.count()

    def subscribe(self, topic: str) -> str:
        joined = self._resolve(self, topic)
        self.topics.add(joined)
        if joined != topic:
            self.asked[joined] = topic
        self._on_subscribe()
        return joined

    def unsubscribe(self, topic: str) -> None:
        joined = next((captured for captured, asked in self.asked.items() if asked == topic), topic)
        self.topics.discard(joined)
        self.asked.pop(joined, None)

    def enqueue(self, text: str, delivery: _Delivery | None = None) -> None:
        if delivery is not None:
            delivery.pending += 1
        self._outgoing.put_nowait((text, delivery))
        self._on_enqueue()

    async def catch_up(self) -> None:
        """Wait until what is queued has been written: the replay's position is what the client
        has been sent (a snapshot made on a subscription then matches the frames that follow)."""
        if self._outgoing.qsize() > 0:
            await self._outgoing.join()

    async def handled(self, timeout_s: float) -> bool:
        """Wait until the client has handled every frame queued to it so far: they are written,
        then a ping after them is answered (a client handles its connection's frames in order:
        ccxt answers a ping from its receive loop). False if no answer came in time."""
        await self.catch_up()
        if self.ws.closed:
            return True  # nothing more reaches it
        payload = f"drain-{next(self._pings)}".encode()
        answered = self._pongs[payload] = asyncio.get_running_loop().create_future()
        try:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.ping(payload)
            await asyncio.wait_for(answered, timeout_s)
        except TimeoutError:
            return False
        finally:
            self._pongs.pop(payload, None)
        return True

    def ponged(self, payload: bytes) -> None:
        answered = self._pongs.get(payload)
        if answered is not None and not answered.done():
            answered.set_result(None)

    async def close(self) -> None:
        for answered in self._pongs.values():  # a closed connection has nothing left to handle
            if not answered.done():
                answered.set_result(None)
        await cancel_and_wait(self._writer)
        while not self._outgoing.empty():  # never written: the client has gone
            _, delivery = self._outgoing.get_nowait()
            self._outgoing.task_done()
            if delivery is not None:
                delivery.settle(False)
        await self.ws.close()

    async def _write(self) -> None:
        while True:
            text, delivery = await self._outgoing.get()
            written = False
            try:
                if not self.ws.closed:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await self.ws.send_str(text)
                        written = True
            finally:
                self._outgoing.task_done()
                if delivery is not None:
                    delivery.settle(written)


class ReplayServer:
    def __init__(self, adapter: ReplayAdapter, options: ReplayOptions) -> None:
        self.adapter = adapter
        self.options = options
        self.tally = adapter.tally
        self.exhausted = False
        self.started_at = 0.0  # perf_counter when playback began (benchmarks)
        self.frames_sent = 0  # frames written, per connection (benchmarks)
        self._market = adapter.market_frames()
        # captured topic -> the endpoints it was received on (None: any endpoint)
        self._captured: dict[str, set[str | None]] = {}
        for market in self._market:
            self._captured.setdefault(market.topic, set()).add(market.endpoint)
        self._aliases_logged: set[tuple[str, str]] = set()
        self._connections: list[_Connection] = []
        adapter.publish = self._publish
        self._subscribed = asyncio.Event()
        self._last_subscribe = 0.0
        self._playing = False
        self._stopping = False
        self._position = 0  # index of the next market frame to play
        self._waiting_for: set[str] = set()  # captured topics of client connections that closed
        self._rate_limited_left = 0
        self._slow_left = sum(f.at for f in options.faults if f.kind is FaultKind.SLOW)
        # History calls refused with 429 (history-ratelimit), then with 418 (ban), in that order.
        self._history_refusals = [
            status
            for kind, status in ((FaultKind.HISTORY_RATELIMIT, 429), (FaultKind.BAN, 418))
            for _ in range(sum(f.at for f in options.faults if f.kind is kind))
        ]
        self._runner: web.AppRunner | None = None
        self._player: asyncio.Task[None] | None = None
        self._released = asyncio.Event()
        # The venue's longest subscriber queue (set by the venue); full speed waits on it.
        self.backlog: Callable[[], int] = lambda: 0
        # The venue's own work on the frames its client has handled (set by the venue): the drain
        # waits for it (its resubscriptions, the events it has yet to hand its subscribers); True
        # when it waited for one, whose answer is news.
        self.settle: Callable[[], Awaitable[bool]] = _nothing
        self._enqueued = 0  # frames queued to any connection, ever (the drain's measure of news)
        self._drained = False  # the drain is over (done or given up)

    # ---- lifecycle

    async def start(self) -> str:
        """Start serving on a free loopback port; returns the base URL (http://127.0.0.1:PORT)."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._player = asyncio.create_task(self._play(), name="replay-player")
        self.tally.release()
        log.info(
            "replay stand-in on port %d: %d market frames of %d received (%d control, %d dropped)",
            port,
            len(self._market),
            self.tally.total,
            self.tally.control,
            sum(self.tally.dropped.values()),
        )
        return f"http://127.0.0.1:{port}"

    def release(self) -> None:
        """Let playback begin (the venue calls this once someone listens downstream)."""
        self._released.set()

    async def stop(self) -> None:
        self._stopping = True
        if self._player is not None:
            await cancel_and_wait(self._player)
        for connection in list(self._connections):
            await connection.close()
        if self._runner is not None:
            await self._runner.cleanup()
        if self._playing and not self.exhausted:
            self.tally.not_played = len(self._market) - self._position
            log.info("%s", self.tally.summary())

    # ---- HTTP and WebSocket

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"]
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, path)
        return await self._rest(request, path)

    async def _rest(self, request: web.Request, path: str) -> web.Response:
        body = await request.text()
        rest_request = RestRequest(request.method, path, dict(request.query), body, dict(request.headers))
        refused: int | None = None
        if self._playing and self._rate_limited_left > 0:
            self._rate_limited_left -= 1
            refused = 429
        elif self._history_refusals and self.adapter.is_history(rest_request):
            refused = self._history_refusals.pop(0)
        if refused is not None:
            limited = self.adapter.rate_limited(refused)
            headers = {"Retry-After": "1", "Content-Type": "application/json", **limited.headers}
            return web.Response(status=limited.status, text=limited.body, headers=headers)
        answer: RestAnswer = self.adapter.rest(rest_request)
        if self._slow_left > 0 and self.adapter.delays_answer(rest_request):
            self._slow_left -= 1
            log.warning("replay fault: %s %s done, answering in %.0f s", request.method, path, _SLOW_ANSWER_S)
            await asyncio.sleep(_SLOW_ANSWER_S)
        headers = {"Content-Type": "application/json", **answer.headers}
        return web.Response(status=answer.status, text=answer.body, headers=headers)

    async def _websocket(self, request: web.Request, path: str) -> web.WebSocketResponse:
        # Pings answered here, pongs read here: the drain's pings (ReplayServer._drain).
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        query = request.query_string
        full_path = f"{path}?{query}" if query else path
        endpoint = self.adapter.endpoint(full_path)
        connection = _Connection(ws, full_path, endpoint, self._resolve, self._on_subscribe, self._on_enqueue)
        self._connections.append(connection)
        try:
            for text in self.adapter.on_connect(connection):
                connection.enqueue(text)
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    for reply in self.adapter.on_client_message(connection, message.data):
                        connection.enqueue(reply)
                elif message.type is WSMsgType.PING:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await ws.pong(message.data)
                elif message.type is WSMsgType.PONG:
                    connection.ponged(bytes(message.data))
        finally:
            self._lost(connection)
            await connection.close()
        return ws

    def _on_subscribe(self) -> None:
        self._last_subscribe = asyncio.get_running_loop().time()
        self._subscribed.set()

    def _on_enqueue(self) -> None:
        self._enqueued += 1

    def _resolve(self, connection: _Connection, topic: str) -> str:
        """The captured topic a subscription joins: itself when captured on the connection's
        endpoint, else a captured topic of the same stream under another name (a book at
        another depth), else itself (nothing captured: the client gets only what the adapter makes)."""
        if self._captured_on(topic, connection.endpoint):
            return topic
        stream = self.adapter.stream_of(topic)
        same = [
            captured
            for captured in self._captured
            if stream is not None
            and self.adapter.stream_of(captured) == stream
            and self._captured_on(captured, connection.endpoint)
        ]
        if not same:
            return topic
        if (same[0], topic) not in self._aliases_logged:
            self._aliases_logged.add((same[0], topic))
            log.warning("replay: the capture's %s is served to the subscription of %s", same[0], topic)
        return same[0]

    def _captured_on(self, topic: str, endpoint: str | None) -> bool:
        endpoints = self._captured.get(topic, set())
        return None in endpoints or endpoint in endpoints or (endpoint is None and bool(endpoints))

    def _lost(self, connection: _Connection) -> None:
        """A client connection closed: playback waits for its captured topics to be subscribed again."""
        if connection not in self._connections:
            return  # already handled (a fault closed it)
        self._connections.remove(connection)
        lost = {topic for topic in connection.topics if topic in self._captured}
        # Played out, it still waits for them (the drain): a client resubscribing (a resync) gets
        # its snapshot then, which the venue must handle too.
        if self._playing and not self._drained and not self._stopping and lost:
            if not self._waiting_for:
                log.info("replay: a client connection closed; playback waits for it to subscribe again")
            self._waiting_for |= lost

    # ---- playback

    async def _settle(self, wait_s: float | None = None) -> None:
        """Wait for a first subscription, then until none has come for a moment."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._subscribed.wait(), wait_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _READY_WAIT_S
        while (quiet := loop.time() - self._last_subscribe) < _SETTLE_S or (  # noqa: ASYNC110
            not self.adapter.ready(self._topics()) and loop.time() < deadline
        ):
            await asyncio.sleep(max(0.02, _SETTLE_S - quiet))

    def _topics(self) -> set[str]:
        return set().union(*(connection.topics for connection in self._connections))

    async def _await_return(self) -> float:
        """After a client connection closed mid-replay: wait until its topics are subscribed again
        (so the rest of the session is not played to nobody), then until subscriptions settle.
        Returns how long playback was paused (a paced replay keeps its pace after it)."""
        loop = asyncio.get_running_loop()
        paused_at = loop.time()
        deadline = paused_at + _RECONNECT_WAIT_S
        while (missing := self._waiting_for - self._topics()) and loop.time() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        if missing:
            log.warning(
                "replay: %s not subscribed again within %.0f s; playback goes on without them",
                ", ".join(sorted(missing)),
                _RECONNECT_WAIT_S,
            )
        else:
            self.tally.reconnects += 1
        self._waiting_for.clear()
        await self._settle()
        return loop.time() - paused_at

    async def _play(self) -> None:
        await self._released.wait()
        await self._settle()
        self._playing = True
        self.started_at = time.perf_counter()
        faults = sorted(self.options.faults, key=lambda f: f.at)
        self._rate_limited_left = sum(f.at for f in faults if f.kind is FaultKind.RATELIMIT)
        book_faults = _BookFaults()
        loop = asyncio.get_running_loop()
        started = loop.time()
        first_ts = self._market[0].frame.ts if self._market else 0.0
        for index, market in enumerate(self._market):
            self._position = index
            for fault in faults:
                if fault.at == index and fault.kind not in _REST_FAULTS:
                    await self._inject(fault, book_faults)
            if self.options.paced:
                due = (market.frame.ts - first_ts) / self.options.speed
                await asyncio.sleep(max(0.0, due - (loop.time() - started)))
            while self.backlog() > _BACKLOG_LIMIT:  # noqa: ASYNC110 (polls the venue's queues)
                await asyncio.sleep(0.005)
            if self._waiting_for:  # a client connection closed: nothing is played to nobody
                started += await self._await_return()
            self._play_frame(index, market, book_faults)
            # Sent (queued), then delivered, with no await between: a subscription handled
            # meanwhile would get a snapshot that misses a frame the client still receives.
            self.adapter.delivered(market.frame, market.topic)
            await self._catch_up()
        for topic in list(book_faults.held):  # a reordered frame whose topic had no later frame
            self._release(topic, book_faults)
        self._position = len(self._market)
        self.exhausted = True
        self._report_unsubscribed()
        log.info("%s", self.tally.summary())
        drained = await self._drain()
        self._drained = True
        if drained:
            log.info("%s", DRAINED)
        else:
            log.warning("replay: the venue had not handled every frame within %.0f s", _HANDLED_WAIT_S)

    async def _drain(self) -> bool:
        """After the last frame: wait until the venue has handled every frame sent to it, and is
        done with them. Each round waits for every connection's client to handle what it was
        sent (a ping answered), then for the venue's own work on it (settle: a stream watched
        again, its events handed to its subscribers), and for any connection the client closed
        (a resync) to be subscribed again; done when a round had no news: nothing sent, no
        stream watched again (a subscription it sends reaches us before the next round's ping
        is answered, and its answer is counted as sent)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _HANDLED_WAIT_S
        while loop.time() < deadline:
            sent = self._enqueued
            for connection in list(self._connections):
                if not await connection.handled(deadline - loop.time()):
                    return False
            try:
                waited = await asyncio.wait_for(self.settle(), max(0.0, deadline - loop.time()))
            except TimeoutError:
                return False
            if self._waiting_for:
                await self._await_return()
            elif not waited and self._enqueued == sent:
                return True
        return False

    def _play_frame(self, index: int, market: MarketFrame, faults: _BookFaults) -> None:
        """Send one market frame, or do to it the book fault waiting for it."""
        kind = faults.waiting.pop(0) if faults.waiting and self.adapter.is_book(market.topic) else None
        if kind is FaultKind.GAP:
            self._drop_for_fault(index, market)
        elif kind is FaultKind.REORDER:
            log.warning(
                "replay fault: book frame %d (%s) held back behind its next frame", index, market.topic
            )
            self._release(market.topic, faults)  # held by the reorder just before
            faults.held[market.topic] = (market, self._render(market))
            return
        else:
            if kind is FaultKind.REPEAT:
                log.warning("replay fault: book frame %d (%s) sent twice", index, market.topic)
            self._send(market, twice=kind is FaultKind.REPEAT)
        self._release(market.topic, faults)

    def _release(self, topic: str, faults: _BookFaults) -> None:
        """Send the frame a reorder held back on this topic, if any (as it was rendered then)."""
        held = faults.held.pop(topic, None)
        if held is not None:
            self._enqueue(*held)

    def _drop_for_fault(self, index: int, market: MarketFrame) -> None:
        log.warning("replay fault: dropped book frame %d (%s)", index, market.topic)
        self.tally.drop(Drop.FAULT, market.frame.text)
        subscribers: list[MockConnection] = list(self._subscribers(market))
        self.adapter.lost(market.frame, market.topic, subscribers)

    def _subscribers(self, market: MarketFrame) -> list[_Connection]:
        return [
            connection
            for connection in self._connections
            if market.topic in connection.topics and market.endpoint in (None, connection.endpoint)
        ]

    def _send(self, market: MarketFrame, twice: bool = False) -> None:
        """Queue a frame to its subscribers (`twice`: the same text again right after, a fault's
        copy, which the tally does not count)."""
        self._enqueue(market, self._render(market), twice)

    def _render(self, market: MarketFrame) -> list[tuple[_Connection, str]] | None:
        """The text each subscriber of the frame gets (rendered now: the venue numbers and
        checksums its messages as it makes them); None: nobody is subscribed."""
        subscribers = self._subscribers(market)
        if not subscribers:
            return None
        rendered = []
        for connection in subscribers:
            try:
                text = self.adapter.render(market.frame, market.topic, connection)
                asked = connection.asked.get(market.topic)
                rendered.append(
                    (connection, text if asked is None else self.adapter.rename(text, market.topic, asked))
                )
            except Exception as exc:  # a frame of another recorder the adapter cannot render
                log.warning("replay: cannot render %s: %s %s", market.topic, type(exc).__name__, exc)
        return rendered

    def _enqueue(
        self, market: MarketFrame, rendered: list[tuple[_Connection, str]] | None, twice: bool = False
    ) -> None:
        if rendered is None:
            self.tally.drop(Drop.UNSUBSCRIBED, market.frame.text)
            self.tally.unsubscribed_topics[market.topic] += 1
            return
        delivery = _Delivery(lambda written: self._delivered(written, market))
        for connection, text in rendered:
            if connection not in self._connections:  # closed since it was rendered (a held frame)
                continue
            connection.enqueue(text, delivery)
            if twice:
                connection.enqueue(text)
        if delivery.pending == 0:
            reason = Drop.UNREADABLE if not rendered else Drop.CLOSED
            self.tally.drop(reason, market.frame.text)
        self.frames_sent += delivery.pending * (2 if twice else 1)

    def _delivered(self, written: bool, market: MarketFrame) -> None:
        if written:
            self.tally.served += 1
        else:
            self.tally.drop(Drop.CLOSED, f"(its connection closed before it was written) {market.frame.text}")

    def _report_unsubscribed(self) -> None:
        for topic, count in self.tally.unsubscribed_topics.most_common():
            log.warning(
                "replay: %d frames of %s were played while no client was subscribed to it", count, topic
            )

    async def _catch_up(self) -> None:
        """Yield to the clients, and wait for any that is far behind."""
        await asyncio.sleep(0)
        for connection in list(self._connections):
            await connection.catch_up()

    def _publish(self, topic: str, text: str) -> None:
        """An adapter's own frame to every connection on a topic, sent in the order published."""
        for connection in self._connections:
            if topic in connection.topics:
                connection.enqueue(text)

    async def _inject(self, fault: Fault, book_faults: _BookFaults) -> None:
        """Apply a fault at its frame; a book fault waits for the next book frame."""
        log.warning("replay fault: %s at market frame %d", fault.kind.value, fault.at)
        if fault.kind in _BOOK_FAULTS:
            book_faults.waiting.append(fault.kind)
        elif fault.kind is FaultKind.MALFORMED:
            for connection in list(self._connections):
                connection.enqueue(self.adapter.malformed())
        elif fault.kind is FaultKind.DISCONNECT:
            for connection in list(self._connections):
                self._lost(connection)  # playback waits for the client to come back
                # The frames played before N reach the client first (closed at once, what its
                # writer had yet to send was lost: a ticker missing under load).
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(connection.catch_up(), _DRAIN_S)
                await connection.close()
