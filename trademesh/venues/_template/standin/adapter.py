"""The template venue's wire formats for the replay stand-in.

Write down, from the venue's API docs and the capture, what the client sends and what it gets:
- WebSocket: how a subscription is asked for and answered ({"op":"subscribe","args":[topics]}
  -> {"event":"subscribed","args":[topics]} here), which topic a captured frame belongs to,
  what a pong looks like;
- REST: which recorded answers are served as they are (the base class's lookup) and which
  follow the replay (book snapshots) or go to the order store.
- Sessions from other recorders (docs/venues.md): which received frames are control frames
  (is_control: acks, pongs, heartbeats), which endpoints carry this venue's markets where
  topic names repeat across endpoints (endpoint, serves), which topics are one stream under
  several names (stream_of, rename), the prices and sizes a frame shows (levels), and the
  REST answers ccxt needs that a capture may lack, made up from the frames (synthesize).
"""

from __future__ import annotations

import json

from trademesh.venues._template.standin.order_store import TemplateOrderStore
from trademesh.venues.replay.adapter import MockConnection, ReplayAdapter, RestAnswer, RestRequest
from trademesh.venues.replay.capture import Capture, WsFrame

__all__ = ["TemplateReplay"]


class TemplateReplay(ReplayAdapter):
    def __init__(self, capture: Capture) -> None:
        super().__init__(capture)
        self.orders = TemplateOrderStore()
        self.orders.on_event = lambda topic, message: self.publish(topic, json.dumps(message))

    def topic(self, frame: WsFrame) -> str | None:
        message = json.loads(frame.text)
        return str(message["topic"]) if isinstance(message, dict) and "data" in message else None

    def symbol_of(self, topic: str) -> str:
        return topic.rsplit(".", 1)[-1]  # "trades.BTCUSDT" -> "BTCUSDT"

    def is_control(self, frame: WsFrame) -> bool:
        return frame.text.startswith("{") and "event" in json.loads(frame.text)  # {"event":"subscribed"...}

    def is_book(self, topic: str) -> bool:
        return topic.startswith("book.")

    def on_client_message(self, connection: MockConnection, text: str) -> list[str]:
        request = json.loads(text)
        if request.get("op") != "subscribe":
            return [json.dumps({"event": "error", "msg": f"unknown op {request.get('op')!r}"})]
        for topic in request.get("args") or []:
            connection.subscribe(topic)
        return [json.dumps({"event": "subscribed", "args": request.get("args") or []})]

    def rest(self, request: RestRequest) -> RestAnswer:
        answer = self.orders.answer(request)
        return answer if answer is not None else super().rest(request)
