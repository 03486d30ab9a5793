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
  order store's pushes (trademesh/venues/bybit/standin/order_store.py).
- REST: the recorded instruments-info answer (the base class's lookup); the order, account and
  wallet endpoints of the order store, whose fills take the best price of the tracked book;
  GET /v5/market/tickers (category spot; every listed symbol without `symbol`) as the replay
  position stands: lastPrice the last publicTrade delivered, bid1/ask1 the tracked book's (the
  connector reads the last price before placing a stop; the order store sets a stop's direction
  from it), the 24 h statistics from the trade tape, and GET /v5/market/recent-trade
  (trademesh/venues/bybit/standin/trades.py); GET /v5/market/kline pages through the candle history
  (trademesh/venues/bybit/standin/history.py).

Sessions from other recorders (docs/replay.md, "Sessions from other recorders"):
- a market frame is any JSON object with "topic" and "data", whatever its key order (Bybit's
  kline pushes begin {"type":...}); acks and pongs ({"op":...} or {"success":...}) are control;
- the same topic names stream different markets on /v5/public/spot, /linear, /inverse and
  /option: this stand-in (spot) serves frames received on /v5/public/spot only (a capture
  without the connection's url counts as spot); the others are tallied as other-market;
- orderbook.<depth>.<symbol> at any depth is served to ccxt's orderbook.50 subscription,
  under the name it asked for;
- with no recorded instruments-info, the answer lists the spot markets the frames stream
  (base and quote split before a known quote currency; tick and lot from the decimals seen);
- a session of Bybit's API v2 (WebSocket /realtime, /realtime_public; REST /v2/...) or of its
  other APIs before v5 (/spot/..., /contract/...) is refused at start: this stand-in speaks v5.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from trademesh.venues.bybit.standin.history import BybitKlines
from trademesh.venues.bybit.standin.order_store import BybitOrderStore
from trademesh.venues.bybit.standin.trades import BybitTrades
from trademesh.venues.replay.adapter import MockConnection, ReplayAdapter, RestAnswer, RestRequest, url_path
from trademesh.venues.replay.capture import Capture, WsFrame
from trademesh.venues.replay.synthesis import split_joined

__all__ = ["BybitBook", "BybitReplay"]

_CONN_ID = "replay-bybit-conn"
_PRIVATE_TOPICS = ("order", "execution")
_V5 = "/v5/"
_SERVED_PATHS = ("/v5/public/spot", "/v5/private")  # this stand-in's venue is Bybit spot
# Bybit's APIs before v5, by the paths of their urls.
_OTHER_APIS = (
    (re.compile(r"^/(realtime|v2/)"), "Bybit's API v2"),
    (re.compile(r"^/(spot|contract|unified|perpetual|option)/"), "a Bybit API before v5"),
)
_INSTRUMENTS = "/v5/market/instruments-info"
_TICKERS = "market/tickers"
_KLINE = "market/kline"
_RECENT_TRADE = "market/recent-trade"
_HISTORY = (_KLINE, _RECENT_TRADE, _TICKERS)  # what the history-ratelimit and ban faults refuse


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
    api = "Bybit's API v5"

    def __init__(self, capture: Capture) -> None:
        super().__init__(capture)
        self.books: dict[str, BybitBook] = {}
        self.last_prices: dict[str, str] = {}  # symbol -> the last trade price delivered
        self.orders = BybitOrderStore(self._best, self.last_prices.get)
        self.orders.on_event = lambda topic, message: self.publish(topic, json.dumps(message))
        self._authenticated: set[int] = set()  # id() of the connections that sent op "auth"
        self.klines = BybitKlines(self)
        self.trades = BybitTrades(self, self.klines, self.last_prices, self._best_levels)

    def other_api(self, url: str) -> str | None:
        path = url_path(url)
        return next((name for pattern, name in _OTHER_APIS if pattern.match(path)), None)

    def topic(self, frame: WsFrame) -> str | None:
        message = _object(frame.text)
        if message is None or "topic" not in message or "data" not in message:
            return None
        return str(message["topic"])

    def is_control(self, frame: WsFrame) -> bool:
        message = _object(frame.text)
        return message is not None and ("op" in message or "success" in message)

    def symbol_of(self, topic: str) -> str:
        return topic.rsplit(".", 1)[-1]

    def is_book(self, topic: str) -> bool:
        return topic.startswith("orderbook.")

    def endpoint(self, url: str | None) -> str | None:
        return None if url is None else url_path(url).rstrip("/")

    def serves(self, endpoint: str | None) -> bool:
        return endpoint is None or endpoint in _SERVED_PATHS

    def stream_of(self, topic: str) -> str | None:
        """orderbook.<depth>.<symbol>: every depth is the symbol's book."""
        return f"orderbook.{self.symbol_of(topic)}" if self.is_book(topic) else None

    def levels(self, frame: WsFrame, topic: str) -> Iterable[tuple[object, object]]:
        data = json.loads(frame.text)["data"]
        if topic.startswith("publicTrade."):
            return [(trade["p"], trade["v"]) for trade in data]
        if self.is_book(topic):
            return [tuple(level[:2]) for level in [*data.get("b", []), *data.get("a", [])]]
        return ()

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
            joined = connection.subscribe(topic)  # the captured book, at whatever depth it was recorded
            if self.is_book(joined) and joined in self.books:
                snapshots.append(self.rename(self.books[joined].snapshot(), joined, topic))
        return snapshots

    def delivered(self, frame: WsFrame, topic: str) -> None:
        if self.is_book(topic):
            self.books.setdefault(topic, BybitBook(topic)).apply(json.loads(frame.text))
        elif topic.startswith("publicTrade."):
            trades = json.loads(frame.text)["data"]
            if trades:
                self.last_prices[self.symbol_of(topic)] = str(trades[-1]["p"])

    def _best(self, symbol: str) -> tuple[str, str] | None:
        """(best bid, best ask) of the symbol's book at the replay position, None before it has one."""
        book = next((b for b in self.books.values() if b.symbol == symbol and b.bids and b.asks), None)
        if book is None:
            return None
        return max(book.bids, key=Decimal), min(book.asks, key=Decimal)

    def _best_levels(self, symbol: str) -> tuple[str, str, str, str] | None:
        """The tracked book's best bid, its size, best ask and its size (None before it has both sides)."""
        best = self._best(symbol)
        book = next((b for b in self.books.values() if b.symbol == symbol and b.bids and b.asks), None)
        if best is None or book is None:
            return None
        return best[0], book.bids[best[0]], best[1], book.asks[best[1]]

    def is_history(self, request: RestRequest) -> bool:
        return request.method == "GET" and request.path.endswith(tuple(_V5 + e for e in _HISTORY))

    def rate_limited(self, status: int) -> RestAnswer:
        """Bybit's answer over a rate limit: retCode 10006 (ccxt's RateLimitExceeded)."""
        body = {"retCode": 10006, "retMsg": "Too many visits!", "result": {}, "retExtInfo": {}, "time": 0}
        return RestAnswer.json(body, status)

    def rest(self, request: RestRequest) -> RestAnswer:
        endpoint = request.path.split(_V5, 1)[1] if _V5 in request.path else ""
        if request.method == "GET" and endpoint == _TICKERS:
            return self.trades.tickers(request.params())
        if request.method == "GET" and endpoint == _KLINE:
            return self.klines.answer(request.params())
        if request.method == "GET" and endpoint == _RECENT_TRADE:
            return self.trades.recent(request.params())
        answer = self.orders.answer(request, endpoint)
        return answer if answer is not None else super().rest(request)

    def synthesize(self, request: RestRequest) -> RestAnswer | None:
        if not request.path.endswith(_INSTRUMENTS):
            return None
        category = request.params().get("category", "spot")
        described = (_instrument(m.native, m.tick, m.lot) for m in self.markets_seen())
        listed = [item for item in described if item is not None] if category == "spot" else []
        names = ", ".join(str(item["symbol"]) for item in listed) or "none"
        self.tally.synthesize(
            f"bybit instruments-info ({category})", f"{len(listed)} markets from the frames: {names}"
        )
        result = {"category": category, "list": listed, "nextPageCursor": ""}
        return RestAnswer.json({"retCode": 0, "retMsg": "OK", "result": result, "retExtInfo": {}, "time": 0})


def _object(text: str) -> dict[str, Any] | None:
    """A frame's JSON object; None for anything else (Bybit sends only objects)."""
    if not text.startswith("{"):
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None


def _instrument(native: str, tick: str, lot: str) -> dict[str, Any] | None:
    """A spot market as instruments-info lists it, from what the frames show (None: no quote known)."""
    pair = split_joined(native)
    if pair is None:
        return None
    lot_filter = {
        "basePrecision": lot,
        "quotePrecision": "0.00000001",
        "minOrderQty": lot,
        "maxOrderQty": "1000000000",
        "minOrderAmt": "0",
        "maxOrderAmt": "1000000000",
    }
    return {
        "symbol": native,
        "baseCoin": pair[0],
        "quoteCoin": pair[1],
        "innovation": "0",
        "status": "Trading",
        "marginTrading": "none",
        "lotSizeFilter": lot_filter,
        "priceFilter": {"tickSize": tick},
    }


def _answer(op: str, req_id: str, ret_msg: str) -> str:
    return json.dumps({"success": True, "ret_msg": ret_msg, "conn_id": _CONN_ID, "req_id": req_id, "op": op})
