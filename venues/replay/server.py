"""The replay stand-in: an aiohttp server speaking a venue's REST and WebSocket APIs.

Every exchange host is served under its own first path segment: ccxt's
`wss://stream.binance.com:9443/ws` becomes `ws://127.0.0.1:<port>/stream.binance.com:9443/ws`
(venues.live.exchange rewrites the urls), so one server stands in for all of a
venue's hosts and knows which one was asked.

Playback starts once the venue releases it (when its first market-data subscriber
arrives, so that subscriber sees the whole session) and the client's
subscriptions have settled; it sends each
captured market frame to the connections subscribed to its topic, in capture
order, at full speed (yielding between frames, and waiting while a subscriber of
the venue is far behind, so nothing is lost downstream) or at the recorded pace, and
applies the injected faults (see Fault).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from aiohttp import WSMsgType, web

from core.errors import InvalidArgument
from venues.replay.adapter import ReplayAdapter, RestAnswer, RestRequest
from venues.replay.capture import WsFrame

__all__ = ["Fault", "FaultKind", "ReplayOptions", "ReplayServer", "parse_fault"]

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


class FaultKind(enum.Enum):
    DISCONNECT = "disconnect"  # close every connection before market frame N; resume once resubscribed
    GAP = "gap"  # drop the first book frame at or after N (a sequence gap for the client)
    MALFORMED = "malformed"  # send a frame the client cannot parse before market frame N
    RATELIMIT = "ratelimit"  # answer the next N REST calls after playback starts with 429 + Retry-After
    SLOW = "slow"  # carry out the next N order calls (POSTs, or as the adapter says) but answer after 3 s


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    at: int


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
    faults: tuple[Fault, ...] = ()


class _Connection:
    """One client's WebSocket: every frame for it goes through one queue, so frames leave in
    the order they were made (replayed, replies, the adapter's own), whoever made them."""

    def __init__(self, ws: web.WebSocketResponse, path: str, on_subscribe: Callable[[], None]) -> None:
        self.ws = ws
        self.path = path
        self.topics: set[str] = set()
        self._on_subscribe = on_subscribe
        self._outgoing: asyncio.Queue[str] = asyncio.Queue()
        self._writer = asyncio.create_task(self._write(), name=f"replay-ws-{path}")

    def subscribe(self, topic: str) -> None:
        self.topics.add(topic)
        self._on_subscribe()

    def unsubscribe(self, topic: str) -> None:
        self.topics.discard(topic)

    def enqueue(self, text: str) -> None:
        self._outgoing.put_nowait(text)

    async def catch_up(self) -> None:
        """Wait until what is queued has been written: the replay's position is what the client
        has been sent (a snapshot made on a subscription then matches the frames that follow)."""
        if self._outgoing.qsize() > 0:
            await self._outgoing.join()

    async def close(self) -> None:
        self._writer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._writer
        await self.ws.close()

    async def _write(self) -> None:
        while True:
            text = await self._outgoing.get()
            try:
                if not self.ws.closed:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await self.ws.send_str(text)
            finally:
                self._outgoing.task_done()


class ReplayServer:
    def __init__(self, adapter: ReplayAdapter, options: ReplayOptions) -> None:
        self.adapter = adapter
        self.options = options
        self.exhausted = False
        self.started_at = 0.0  # perf_counter when playback began (benchmarks)
        self.frames_sent = 0
        self._market = [
            (frame, topic)
            for frame in adapter.capture.received
            if (topic := adapter.topic(frame)) is not None
        ]
        self._connections: list[_Connection] = []
        adapter.publish = self._publish
        self._subscribed = asyncio.Event()
        self._last_subscribe = 0.0
        self._playing = False
        self._rate_limited_left = 0
        self._slow_left = sum(f.at for f in options.faults if f.kind is FaultKind.SLOW)
        self._runner: web.AppRunner | None = None
        self._player: asyncio.Task[None] | None = None
        self._released = asyncio.Event()
        # The venue's longest subscriber queue (set by the venue); full speed waits on it.
        self.backlog: Callable[[], int] = lambda: 0

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
        log.info("replay stand-in on port %d: %d market frames", port, len(self._market))
        return f"http://127.0.0.1:{port}"

    def release(self) -> None:
        """Let playback begin (the venue calls this once someone listens downstream)."""
        self._released.set()

    async def stop(self) -> None:
        if self._player is not None:
            self._player.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._player
        for connection in list(self._connections):
            await connection.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- HTTP and WebSocket

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["tail"]
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, path)
        return await self._rest(request, path)

    async def _rest(self, request: web.Request, path: str) -> web.Response:
        if self._playing and self._rate_limited_left > 0:
            self._rate_limited_left -= 1
            return web.Response(
                status=429,
                text='{"code":-1003,"msg":"Too many requests."}',
                headers={"Retry-After": "1", "Content-Type": "application/json"},
            )
        body = await request.text()
        rest_request = RestRequest(request.method, path, dict(request.query), body, dict(request.headers))
        answer: RestAnswer = self.adapter.rest(rest_request)
        if self._slow_left > 0 and self.adapter.delays_answer(rest_request):
            self._slow_left -= 1
            log.warning("replay fault: %s %s done, answering in %.0f s", request.method, path, _SLOW_ANSWER_S)
            await asyncio.sleep(_SLOW_ANSWER_S)
        headers = {"Content-Type": "application/json", **answer.headers}
        return web.Response(status=answer.status, text=answer.body, headers=headers)

    async def _websocket(self, request: web.Request, path: str) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        query = request.query_string
        connection = _Connection(ws, f"{path}?{query}" if query else path, self._on_subscribe)
        self._connections.append(connection)
        try:
            for text in self.adapter.on_connect(connection):
                connection.enqueue(text)
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    for reply in self.adapter.on_client_message(connection, message.data):
                        connection.enqueue(reply)
        finally:
            self._connections.remove(connection)
            await connection.close()
        return ws

    def _on_subscribe(self) -> None:
        self._last_subscribe = asyncio.get_running_loop().time()
        self._subscribed.set()

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

    async def _play(self) -> None:
        await self._released.wait()
        await self._settle()
        self._playing = True
        self.started_at = time.perf_counter()
        faults = sorted(self.options.faults, key=lambda f: f.at)
        self._rate_limited_left = sum(f.at for f in faults if f.kind is FaultKind.RATELIMIT)
        drop_next_book = False
        loop = asyncio.get_running_loop()
        started = loop.time()
        first_ts = self._market[0][0].ts if self._market else 0.0
        for index, (frame, topic) in enumerate(self._market):
            for fault in faults:
                if fault.at == index and fault.kind not in (FaultKind.RATELIMIT, FaultKind.SLOW):
                    drop_next_book |= await self._inject(fault)
            if self.options.paced:
                await asyncio.sleep(max(0.0, (frame.ts - first_ts) - (loop.time() - started)))
            while self.backlog() > _BACKLOG_LIMIT:  # noqa: ASYNC110 (polls the venue's queues)
                await asyncio.sleep(0.005)
            if drop_next_book and self.adapter.is_book(topic):
                drop_next_book = False
                log.warning("replay fault: dropped book frame %d (%s)", index, topic)
                self.adapter.lost(frame, topic, [c for c in self._connections if topic in c.topics])
            else:
                self._send(frame, topic)
            # Sent (queued), then delivered, with no await between: a subscription handled
            # meanwhile would get a snapshot that misses a frame the client still receives.
            self.adapter.delivered(frame, topic)
            await self._catch_up()
        self.exhausted = True
        log.info("replay finished: %d frames sent", self.frames_sent)

    def _send(self, frame: WsFrame, topic: str) -> None:
        for connection in self._connections:
            if topic in connection.topics:
                connection.enqueue(self.adapter.render(frame, topic, connection))
                self.frames_sent += 1

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

    async def _inject(self, fault: Fault) -> bool:
        """Apply a fault; True when the next book frame is to be dropped."""
        log.warning("replay fault: %s at market frame %d", fault.kind.value, fault.at)
        if fault.kind is FaultKind.GAP:
            return True
        if fault.kind is FaultKind.MALFORMED:
            for connection in list(self._connections):
                connection.enqueue(self.adapter.malformed())
        elif fault.kind is FaultKind.DISCONNECT:
            self._subscribed.clear()
            for connection in list(self._connections):
                await connection.close()
            await self._settle(_RECONNECT_WAIT_S)
        return False
