"""What a venue's replay stand-in must know about its wire formats.

Each venue's stand-in (`trademesh/venues/<name>/standin/adapter.py`) subclasses ReplayAdapter. The server
(trademesh.venues.replay.server) does the rest: HTTP and WebSocket plumbing, pacing,
routing frames to the connections subscribed to their topic, injected faults.

Every received frame of the capture is classified once (market_frames): market data of a
topic on an endpoint this venue uses, a control frame (ack, pong, heartbeat) the stand-in
answers itself, or dropped for a reason the tally counts (trademesh.venues.replay.tally). A capture
may come from another recorder: its frames may name a stream otherwise than ccxt subscribes
(stream_of/rename serve it under the asked name), and it may lack REST answers ccxt needs
(synthesize makes them up from the frames, and the tally says so).
"""

from __future__ import annotations

import abc
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from trademesh.core.platform.errors import InvalidArgument
from trademesh.venues.replay.capture import Capture, RestRecord, WsFrame
from trademesh.venues.replay.synthesis import MarketsSeen
from trademesh.venues.replay.tally import Drop, ReplayTally

__all__ = [
    "MarketFrame",
    "MockConnection",
    "ReplayAdapter",
    "RestAnswer",
    "RestRequest",
    "url_host",
    "url_path",
]

log = logging.getLogger(__name__)


def url_host(url: str) -> str:
    """The host of a captured url ("wss://stream.bybit.com/v5/public/spot") or of a client's
    path on the stand-in ("stream.bybit.com:443/v5/public/spot"), without its port."""
    rest = url.split("://", 1)[-1]
    return rest.split("/", 1)[0].split("?", 1)[0].split(":", 1)[0].lower()


def url_path(url: str) -> str:
    """The path of a captured url or of a client's path on the stand-in ("/v5/public/spot")."""
    rest = url.split("://", 1)[-1].split("?", 1)[0]
    return "/" + rest.split("/", 1)[1] if "/" in rest else "/"


@dataclass(frozen=True)
class RestRequest:
    method: str
    path: str  # the exchange's host + path, e.g. "api.binance.com/api/v3/depth"
    query: Mapping[str, str]
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def params(self) -> dict[str, str]:
        """Query and form/JSON body parameters together."""
        params = dict(self.query)
        if self.body.startswith("{"):
            params.update({k: str(v) for k, v in json.loads(self.body).items()})
        elif "=" in self.body:
            from urllib.parse import parse_qsl

            params.update(dict(parse_qsl(self.body)))
        return params


@dataclass(frozen=True)
class RestAnswer:
    status: int
    body: str
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: object, status: int = 200) -> RestAnswer:
        return cls(status, json.dumps(value))


@dataclass(frozen=True)
class MarketFrame:
    """A captured market frame this venue serves: its topic, and the endpoint it was received on."""

    frame: WsFrame
    topic: str
    endpoint: str | None


class MockConnection(Protocol):
    """One WebSocket client of the stand-in."""

    path: str
    topics: set[str]

    def subscribe(self, topic: str) -> str:
        """Join a topic; returns the captured topic joined (another name of the same stream, or itself)."""
        ...

    def unsubscribe(self, topic: str) -> None: ...


class ReplayAdapter(abc.ABC):
    """Venue-specific wire knowledge for replaying a capture."""

    # The API this stand-in speaks, named when a capture of another is refused.
    api = "the venue's current API"

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        self._refuse_other_api()  # before anything reads the frames
        # Sends a frame of the adapter's own (e.g. a private order update) to every connection
        # subscribed to a topic; the server wires it up.
        self.publish: Callable[[str, str], None] = lambda topic, text: None
        self.tally = ReplayTally(total=len(capture.received))
        self.tally.hold()  # what classifying the capture finds is logged once the replay starts
        self._market: list[MarketFrame] | None = None
        self._seen: MarketsSeen | None = None
        self._other_hosts: set[str] = set()  # paths answered with a record of another host

    # ---- captures this stand-in cannot serve

    def other_api(self, url: str) -> str | None:
        """The name of an API of this exchange that the stand-in does not speak (a retired
        version, another product line), when a captured WebSocket or REST url belongs to one:
        "OKEx's API v3"; None for its own API and for urls it does not know."""
        return None

    def _refuse_other_api(self) -> None:
        """A capture whose every url belongs to an API the stand-in does not speak is refused:
        served, it would start an empty venue (its frames unrecognized, its markets unknown)."""
        urls = [*self.capture.ws_urls.values(), *(record.url for record in self.capture.rest)]
        names = [self.other_api(url) for url in urls]
        if urls and all(names):
            raise InvalidArgument.field(
                "replay",
                f"the capture was recorded from {names[0]} ({urls[0]}), which this stand-in does "
                f"not speak: it serves {self.api} only",
            )

    def unserved(self) -> str | None:
        """Why the capture cannot be served when none of its received frames is market data
        this stand-in serves (None: some are, or it holds no frames at all)."""
        received = self.capture.received
        if not received or self.market_frames():
            return None
        dropped = ", ".join(f"{reason.value} {n}" for reason, n in self.tally.dropped.most_common() if n)
        return (
            f"none of the capture's {len(received)} received frames is market data this stand-in "
            f"serves ({self.api}): {dropped or 'none dropped'}, {self.tally.control} control; "
            f"the first: {received[0].text[:60]!r}"
        )

    @abc.abstractmethod
    def topic(self, frame: WsFrame) -> str | None:
        """The stream a received frame belongs to; None for frames that are not market data."""

    @abc.abstractmethod
    def symbol_of(self, topic: str) -> str:
        """The venue's own name of the market a topic streams (e.g. "BTCUSDT")."""

    def native_symbols(self) -> list[str]:
        """The venue's own names of the markets the capture streams, in first-seen order."""
        return list(dict.fromkeys(self.symbol_of(market.topic) for market in self.market_frames()))

    # ---- the capture, classified once

    def market_frames(self) -> list[MarketFrame]:
        """The captured market frames this venue serves, in capture order (the rest is tallied)."""
        if self._market is None:
            self._market = [m for frame in self.capture.received if (m := self._classify(frame)) is not None]
        return self._market

    def _classify(self, frame: WsFrame) -> MarketFrame | None:
        try:
            topic = self.topic(frame)
            control = topic is None and self.is_control(frame)
        except Exception as exc:  # another recorder's frame this stand-in cannot read: counted, not fatal
            self.tally.drop(Drop.UNREADABLE, f"{type(exc).__name__} {exc}: {frame.text}")
            return None
        if topic is None:
            if control:
                self.tally.control += 1
            else:
                self.tally.drop(Drop.UNRECOGNIZED, frame.text)
            return None
        endpoint = self.endpoint(self.capture.ws_urls.get(frame.connection))
        if not self.serves(endpoint):
            self.tally.drop(Drop.OTHER_MARKET, f"(endpoint {endpoint}) {frame.text}")
            return None
        return MarketFrame(frame, topic, endpoint)

    def markets_seen(self) -> MarketsSeen:
        """The markets the served frames stream, with the decimals of their prices and sizes."""
        if self._seen is None:
            self._seen = MarketsSeen()
            for market in self.market_frames():
                try:
                    levels = list(self.levels(market.frame, market.topic))
                except Exception:  # a frame it cannot read still names its market
                    levels = []
                self._seen.see(self.symbol_of(market.topic), levels)
        return self._seen

    def is_control(self, frame: WsFrame) -> bool:
        """A received frame that is not market data but the venue's answer to the client (ack,
        pong, heartbeat, status): the stand-in makes its own, so these are not replayed."""
        return False

    def endpoint(self, url: str | None) -> str | None:
        """Which of the venue's WebSocket endpoints a url (captured, or a client's path) is, where
        the same topic names stream different markets on different endpoints (Bybit's spot and
        linear); None: the topic alone says which market it is."""
        return None

    def serves(self, endpoint: str | None) -> bool:
        """Whether this venue's client ever connects to the endpoint (frames of others are tallied)."""
        return True

    def stream_of(self, topic: str) -> str | None:
        """The stream a topic carries, for topics that carry the same stream under other names
        (e.g. a book at another depth): a client subscribing one such name is served the
        captured one. None: the topic is only itself."""
        return None

    def rename(self, text: str, captured: str, asked: str) -> str:
        """A frame of topic `captured` as sent to a client that subscribed it as `asked`."""
        return text.replace(json.dumps(captured), json.dumps(asked), 1)

    def levels(self, frame: WsFrame, topic: str) -> Iterable[tuple[object, object]]:
        """(price, size) pairs a market frame shows (trades, book levels): what synthesized
        markets take their tick and lot from."""
        return ()

    def synthesize(self, request: RestRequest) -> RestAnswer | None:
        """An answer for a REST call the capture holds none for, made up from the frames (the
        adapter tells the tally what it made up); None: refused with 404."""
        return None

    @abc.abstractmethod
    def on_client_message(self, connection: MockConnection, text: str) -> list[str]:
        """Answer a frame the client sent (subscribe, ping...); may (un)subscribe the connection."""

    def is_book(self, topic: str) -> bool:
        """True for order-book topics (a `gap` fault drops one of these)."""
        return False

    def made_up_books(self) -> dict[str, str]:
        """The venue's own names of the markets whose book the stand-in starts from something it
        made up (no snapshot in the capture), each with why: the venue marks those books (an
        INCOMPLETE stream, a GAP notice), never publishing them as the exchange's."""
        return {}

    def ready(self, topics: set[str]) -> bool:
        """True once the client has done what it does before the stream starts (e.g. fetched snapshots)."""
        return True

    def on_connect(self, connection: MockConnection) -> list[str]:
        """Frames sent as soon as a client connects (greetings, system status)."""
        return []

    def render(self, frame: WsFrame, topic: str, connection: MockConnection) -> str:
        """The text sent for a captured frame; the capture's own bytes unless the venue wraps it."""
        return frame.text

    def delivered(self, frame: WsFrame, topic: str) -> None:  # noqa: B027 (optional hook)
        """Called for every market frame the replay has passed (sent or lost)."""

    def is_history(self, request: RestRequest) -> bool:
        """Whether a call reads history or all tickers (the `history-ratelimit` and `ban` faults
        refuse these): by default none."""
        return False

    def rate_limited(self, status: int) -> RestAnswer:
        """The venue's answer to a client over its rate limit (`status` 429, or 418 for a ban),
        as its client maps it to ccxt's RateLimitExceeded or DDoSProtection; the server adds
        `Retry-After: 1`. By default Binance's body."""
        if status == 418:
            return RestAnswer.json({"code": -1003, "msg": "Way too many requests; IP banned."}, 418)
        return RestAnswer.json({"code": -1003, "msg": "Too many requests."}, status)

    def delays_answer(self, request: RestRequest) -> bool:
        """Whether a `slow` fault delays this call's answer: by default every POST (order entry)."""
        return request.method == "POST"

    def lost(self, frame: WsFrame, topic: str, connections: list[MockConnection]) -> None:  # noqa: B027
        """A `gap` fault dropped this frame on its way to these connections (optional hook)."""

    def rest(self, request: RestRequest) -> RestAnswer:
        """Answer a REST call; by default the capture's recorded answer for that path."""
        records = self.recorded(request.path)
        if not records:
            synthesized = self.synthesize(request)
            if synthesized is not None:
                return synthesized
            self.tally.refuse(request.path)
            return RestAnswer.json({"error": f"no recorded answer for {request.path}"}, 404)
        # The same query first; else one that agrees on every key it has (requests add
        # timestamps and signatures); else the path's first answer.
        exact = [record for record in records if record.query == dict(request.query)]
        agreeing = [
            record
            for record in records
            if all(
                record.query.get(key) == value for key, value in request.query.items() if key in record.query
            )
        ]
        return RestAnswer(200, (exact or agreeing or records)[0].body)

    def recorded(self, path: str) -> list[RestRecord]:
        """The capture's answers for a host and path ("www.okx.com/api/v5/public/instruments"),
        else those it recorded for the same path under another host: an exchange that renamed
        its hosts (OKX's www.okex.com) or serves its API from several is the same exchange, and
        what it answered is used as recorded (said once per path)."""
        records = self.capture.rest_for(path)
        if records:
            return records
        records = self.capture.rest_for(url_path(path))
        if records and path not in self._other_hosts:
            self._other_hosts.add(path)
            log.info("replay: the capture's answer for %s serves %s", records[0].path, path)
        return records

    def malformed(self) -> str:
        """A frame the venue's client cannot understand (for the `malformed` fault)."""
        return '{"truncated": "frame'
