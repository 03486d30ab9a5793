"""What a venue's replay stand-in must know about its wire formats.

Each venue's stand-in (`venues/<name>/standin/adapter.py`) subclasses ReplayAdapter. The server
(venues.replay.server) does the rest: HTTP and WebSocket plumbing, pacing,
routing frames to the connections subscribed to their topic, injected faults.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from venues.replay.capture import Capture, WsFrame

__all__ = ["MockConnection", "ReplayAdapter", "RestAnswer", "RestRequest"]


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


class MockConnection(Protocol):
    """One WebSocket client of the stand-in."""

    path: str
    topics: set[str]

    def subscribe(self, topic: str) -> None: ...

    def unsubscribe(self, topic: str) -> None: ...


class ReplayAdapter(abc.ABC):
    """Venue-specific wire knowledge for replaying a capture."""

    def __init__(self, capture: Capture) -> None:
        self.capture = capture
        # Sends a frame of the adapter's own (e.g. a private order update) to every connection
        # subscribed to a topic; the server wires it up.
        self.publish: Callable[[str, str], None] = lambda topic, text: None

    @abc.abstractmethod
    def topic(self, frame: WsFrame) -> str | None:
        """The stream a received frame belongs to; None for frames that are not market data."""

    @abc.abstractmethod
    def symbol_of(self, topic: str) -> str:
        """The venue's own name of the market a topic streams (e.g. "BTCUSDT")."""

    def native_symbols(self) -> list[str]:
        """The venue's own names of the markets the capture streams, in first-seen order."""
        seen: dict[str, None] = {}
        for frame in self.capture.received:
            if (topic := self.topic(frame)) is not None:
                seen[self.symbol_of(topic)] = None
        return list(seen)

    @abc.abstractmethod
    def on_client_message(self, connection: MockConnection, text: str) -> list[str]:
        """Answer a frame the client sent (subscribe, ping...); may (un)subscribe the connection."""

    def is_book(self, topic: str) -> bool:
        """True for order-book topics (a `gap` fault drops one of these)."""
        return False

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

    def delays_answer(self, request: RestRequest) -> bool:
        """Whether a `slow` fault delays this call's answer: by default every POST (order entry)."""
        return request.method == "POST"

    def lost(self, frame: WsFrame, topic: str, connections: list[MockConnection]) -> None:  # noqa: B027
        """A `gap` fault dropped this frame on its way to these connections (optional hook)."""

    def rest(self, request: RestRequest) -> RestAnswer:
        """Answer a REST call; by default the capture's recorded answer for that path."""
        records = self.capture.rest_for(request.path)
        if not records:
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

    def malformed(self) -> str:
        """A frame the venue's client cannot understand (for the `malformed` fault)."""
        return '{"truncated": "frame'
