"""Binance's wire formats for the replay stand-in (spot; venues.binanceusdm reuses it with /fapi).

- WebSocket: the client subscribes with {"method":"SUBSCRIBE","params":[streams],"id":n} and
  gets {"result":null,"id":n}; captures hold combined-stream frames
  {"stream":"nknusdt@depth@100ms","data":{...}}, and a raw-stream connection (ccxt's /ws)
  receives the `data` object alone.
- REST: exchangeInfo as recorded; depth snapshots follow the replay (the recorded snapshot
  with every depth update replayed since applied), so a client that re-snapshots after a
  gap or a reconnect gets the book the exchange would have had; orders live in a small
  order store speaking /api/v3/order, /openOrders and /account (marketable orders fill at
  the replayed book's best price), whose order updates go out on the WebSocket API's user
  data stream (`userDataStream.subscribe.signature`, events wrapped in
  {"subscriptionId":0,"event":...}); /klines serves each
  candle the capture streamed (its last state) and, before the capture, a deterministic
  synthetic history (the capture holds none), so paging through history can be tested.
"""

from __future__ import annotations

import json
from typing import Any

from venues.binance.standin.history import KlineHistory
from venues.binance.standin.order_store import OrderStore
from venues.replay.adapter import MockConnection, ReplayAdapter, RestAnswer, RestRequest
from venues.replay.capture import Capture, WsFrame

__all__ = ["BinanceReplay", "DepthBook"]

_USER = "user-data"  # the topic of the account's own order updates


class DepthBook:
    """A symbol's book as the exchange has it at the current replay position."""

    def __init__(self, snapshot: dict[str, Any]) -> None:
        self.last_update_id = int(snapshot["lastUpdateId"])
        self.bids = {p: q for p, q in snapshot["bids"]}
        self.asks = {p: q for p, q in snapshot["asks"]}
        self.extra = {k: v for k, v in snapshot.items() if k not in ("lastUpdateId", "bids", "asks")}

    def apply(self, update: dict[str, Any]) -> None:
        if int(update["u"]) <= self.last_update_id:
            return
        for side, levels in ((self.bids, update["b"]), (self.asks, update["a"])):
            for price, size in levels:
                if float(size) == 0:
                    side.pop(price, None)
                else:
                    side[price] = size
        self.last_update_id = int(update["u"])

    def answer(self, limit: int) -> dict[str, Any]:
        bids = sorted(self.bids.items(), key=lambda lv: -float(lv[0]))[:limit]
        asks = sorted(self.asks.items(), key=lambda lv: float(lv[0]))[:limit]
        return {
            "lastUpdateId": self.last_update_id,
            **self.extra,
            "bids": [list(lv) for lv in bids],
            "asks": [list(lv) for lv in asks],
        }


class BinanceReplay(ReplayAdapter):
    api_prefix = "/api/v3/"

    def __init__(self, capture: Capture) -> None:
        super().__init__(capture)
        self.books: dict[str, DepthBook] = {}
        for record in capture.rest_for(self.api_prefix + "depth"):
            self.books[record.query["symbol"]] = DepthBook(json.loads(record.body))
        self.orders = OrderStore(self.api_prefix, self._best)
        self.orders.on_event = self._user_event
        self.snapshots_served: set[str] = set()
        self.klines = KlineHistory(capture)

    def topic(self, frame: WsFrame) -> str | None:
        if not frame.text.startswith('{"stream":'):
            return None
        return str(json.loads(frame.text)["stream"]).lower()

    def symbol_of(self, topic: str) -> str:
        return topic.split("@", 1)[0].upper()

    def is_book(self, topic: str) -> bool:
        return "@depth" in topic

    def ready(self, topics: set[str]) -> bool:
        """Playback waits for the depth snapshots ccxt asks for after subscribing (as on Binance,
        where the snapshot is fetched while updates are already buffering)."""
        wanted = {topic.split("@", 1)[0].upper() for topic in topics if self.is_book(topic)}
        return wanted <= self.snapshots_served

    def _best(self, symbol: str) -> tuple[str, str] | None:
        book = self.books.get(symbol)
        if book is None or not book.bids or not book.asks:
            return None
        return max(book.bids, key=float), min(book.asks, key=float)

    def _user_event(self, event: dict[str, Any]) -> None:
        """An order update on the user data stream (WebSocket API subscription 0)."""
        self.publish(_USER, json.dumps({"subscriptionId": 0, "event": event}))

    def on_client_message(self, connection: MockConnection, text: str) -> list[str]:
        request = json.loads(text)
        method = request.get("method")
        if method == "userDataStream.subscribe.signature":  # the WebSocket API's user data stream
            connection.subscribe(_USER)
            return [json.dumps({"id": request.get("id"), "status": 200, "result": {"subscriptionId": 0}})]
        for stream in request.get("params") or []:
            if method == "SUBSCRIBE":
                connection.subscribe(stream.lower())
            elif method == "UNSUBSCRIBE":
                connection.unsubscribe(stream.lower())
        return [json.dumps({"result": None, "id": request.get("id")})]

    def render(self, frame: WsFrame, topic: str, connection: MockConnection) -> str:
        # The data object's own bytes: it is the last member of a combined-stream frame.
        start = frame.text.index('"data":') + len('"data":')
        return frame.text[start:-1]

    def delivered(self, frame: WsFrame, topic: str) -> None:
        if self.is_book(topic):
            data = json.loads(frame.text)["data"]
            book = self.books.get(data["s"])
            if book is not None:
                book.apply(data)

    def rest(self, request: RestRequest) -> RestAnswer:
        endpoint = request.path.split(self.api_prefix, 1)[-1] if self.api_prefix in request.path else ""
        if endpoint == "depth":
            book = self.books.get(request.query.get("symbol", ""))
            if book is None:
                return RestAnswer.json({"code": -1121, "msg": "Invalid symbol."}, 400)
            self.snapshots_served.add(request.query["symbol"])
            return RestAnswer.json(book.answer(int(request.query.get("limit", "100"))))
        if endpoint == "klines":
            return RestAnswer.json(self.klines.page(request.query))
        if endpoint in ("ping", "time"):
            return RestAnswer.json({} if endpoint == "ping" else {"serverTime": 0})
        answer = self.orders.answer(request, endpoint)
        return answer if answer is not None else super().rest(request)
