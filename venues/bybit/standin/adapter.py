"""Bybit v5 public WebSocket formats for the replay stand-in (spot).

- The client sends {"op":"subscribe","req_id":"n","args":[topics]} and gets
  {"success":true,"ret_msg":"subscribe","conn_id":...,"req_id":"n","op":"subscribe"};
  {"op":"ping"} is answered with the spot pong ({"success":true,"ret_msg":"pong",...,"op":"ping"}).
- Market frames are {"topic":"orderbook.50.BTCUSDT","type":"snapshot"|"delta","data":{...}};
  the topic names the stream and its last segment the symbol.
- Bybit sends an order-book snapshot on every subscription: a client that subscribes
  again once playback has begun (after a reconnect or a resync) gets the book as it
  stands at the current replay position, tracked frame by frame in delivered().
- Private stream (wss://stream.bybit.com/v5/private): {"op":"auth","args":[key, expires,
  signature]} is answered {"success":true,"ret_msg":"","op":"auth",...} (the signature is not
  checked); "order" and "execution" may be subscribed only once authenticated, and carry the
  order store's pushes (venues/bybit/standin/order_store.py).
- REST: the recorded instruments-info answer (the base class's lookup); the order, account and
  wallet endpoints of the order store, whose fills take the best price of the tracked book.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from venues.bybit.standin.order_store import BybitOrderStore
from venues.replay.adapter import MockConnection, ReplayAdapter, RestAnswer, RestRequest
from venues.replay.capture import Capture, WsFrame

__all__ = ["BybitBook", "BybitReplay"]

_CONN_ID = "replay-bybit-conn"
_PRIVATE_TOPICS = ("order", "execution")
_V5 = "/v5/"


class BybitBook:
    """One topic's book at the current replay position, in the venue's own strings."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.symbol = topic.rsplit(".", 1)[-1]
        self.bids: dict[str, str] = {}
        self.asks: dict[str, str] = {}
        self.update_id = 0
        self.seq = 0
        self.ts = 0

    def apply(self, message: dict[str, Any]) -> None:
        """Apply a snapshot (replaces the book) or a delta (size 0 removes a level)."""
        data = message["data"]
        if message.get("type") == "snapshot":
            self.bids, self.asks = {}, {}
        for side, levels in ((self.bids, data.get("b", [])), (self.asks, data.get("a", []))):
            for price, size in levels:
                if Decimal(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        self.update_id = int(data.get("u", self.update_id))
        self.seq = int(data.get("seq", self.seq))
        self.ts = int(message.get("ts", self.ts))

    def snapshot(self) -> str:
        """The snapshot frame Bybit would send a new subscriber now."""
        bids = sorted(self.bids.items(), key=lambda level: -Decimal(level[0]))
        asks = sorted(self.asks.items(), key=lambda level: Decimal(level[0]))
        data = {
            "s": self.symbol,
            "b": [list(level) for level in bids],
            "a": [list(level) for level in asks],
            "u": self.update_id,
            "seq": self.seq,
        }
        return json.dumps(
            {"topic": self.topic, "ts": self.ts, "type": "snapshot", "data": data, "cts": self.ts}
        )


class BybitReplay(ReplayAdapter):
    def __init__(self, capture: Capture) -> None:
        super().__init__(capture)
        self.books: dict[str, BybitBook] = {}
        self.orders = BybitOrderStore(self._best)
        self.orders.on_event = lambda topic, message: self.publish(topic, json.dumps(message))
        self._authenticated: set[int] = set()  # id() of the connections that sent op "auth"

    def topic(self, frame: WsFrame) -> str | None:
        if not frame.text.startswith('{"topic":'):
            return None
        message = json.loads(frame.text)
        return str(message["topic"]) if "data" in message else None

    def symbol_of(self, topic: str) -> str:
        return topic.rsplit(".", 1)[-1]

    def is_book(self, topic: str) -> bool:
        return topic.startswith("orderbook.")

    def on_client_message(self, connection: MockConnection, text: str) -> list[str]:
        request = json.loads(text)
        op = request.get("op")
        req_id = str(request.get("req_id", ""))
        if op == "ping":
            return [_answer(op, req_id, "pong")]
        if op == "auth":
            self._authenticated.add(id(connection))
            return [_answer(op, req_id, "")]
        if op == "subscribe":
            return self._on_subscribe(connection, req_id, request.get("args") or [])
        if op == "unsubscribe":
            for topic in request.get("args") or []:
                connection.unsubscribe(topic)
            return [_answer(op, req_id, "")]
        return [
            json.dumps(
                {"success": False, "ret_msg": "error:invalid op", "conn_id": _CONN_ID, "req_id": req_id}
            )
        ]

    def _on_subscribe(self, connection: MockConnection, req_id: str, topics: list[str]) -> list[str]:
        """Private topics only after "auth", as on Bybit; then the answer and any book snapshots."""
        if any(t in _PRIVATE_TOPICS for t in topics) and id(connection) not in self._authenticated:
            refusal = {"success": False, "ret_msg": "Request not authorized", "conn_id": _CONN_ID}
            return [json.dumps({**refusal, "req_id": req_id, "op": "subscribe"})]
        return [_answer("subscribe", req_id, "subscribe"), *self._subscribe(connection, topics)]

    def _subscribe(self, connection: MockConnection, topics: list[str]) -> list[str]:
        """Subscribe the topics; a fresh snapshot for each book the replay has already started."""
        snapshots = []
        for topic in topics:
            connection.subscribe(topic)
            if self.is_book(topic) and topic in self.books:
                snapshots.append(self.books[topic].snapshot())
        return snapshots

    def delivered(self, frame: WsFrame, topic: str) -> None:
        if self.is_book(topic):
            self.books.setdefault(topic, BybitBook(topic)).apply(json.loads(frame.text))

    def _best(self, symbol: str) -> tuple[str, str] | None:
        """(best bid, best ask) of the symbol's book at the replay position, None before it has one."""
        book = next((b for b in self.books.values() if b.symbol == symbol and b.bids and b.asks), None)
        if book is None:
            return None
        return max(book.bids, key=Decimal), min(book.asks, key=Decimal)

    def rest(self, request: RestRequest) -> RestAnswer:
        endpoint = request.path.split(_V5, 1)[1] if _V5 in request.path else ""
        answer = self.orders.answer(request, endpoint)
        return answer if answer is not None else super().rest(request)


def _answer(op: str, req_id: str, ret_msg: str) -> str:
    return json.dumps({"success": True, "ret_msg": ret_msg, "conn_id": _CONN_ID, "req_id": req_id, "op": op})
