"""Coinbase Advanced Trade WebSocket and REST formats for the replay stand-in (spot).

- The client sends {"type":"subscribe","product_ids":[...],"channel":"level2"} (one
  channel per message) and gets a "subscriptions" message listing everything the
  connection is subscribed to; an unsubscribe is answered the same way.
- Market messages are {"channel":"l2_data"|"market_trades"|"ticker"|"candles",...,
  "events":[...]}; the stream's topic is "<subscribed channel>:<product id>" (the
  level2 subscription's messages arrive on channel "l2_data").
- Coinbase sends a level2 snapshot on every subscription: a client that subscribes
  again once playback has begun (after a reconnect) gets the book as it stands at
  the current replay position, tracked message by message in delivered().
- `sequence_num` counts every message on a connection (as Coinbase numbers them): the
  stand-in renumbers captured messages and its own per connection, and a message lost
  to a `gap` fault still uses up its number, so the client can see the gap.
- Pings are WebSocket control frames (the server answers them); there is no
  application-level ping.
- REST: the recorded answers, matched on the exact query first (the product list
  is fetched twice: without a query, and with product_type=FUTURE); orders and accounts
  from a small order store (trademesh.venues.coinbase.standin.order_store), whose marketable
  orders fill at the best price of the book tracked here (none before playback has delivered
  a snapshot: an order then rests). A `slow` fault delays only order creation (POST
  .../orders). The product candles (market/products/{id}/candles) page through the candle
  history (trademesh.venues.coinbase.standin.history), the market trades
  (market/products/{id}/ticker) through the trade history
  (trademesh.venues.coinbase.standin.trades).
- The private `user` channel: a subscribe carrying a `jwt` (not verified here) gets the
  "subscriptions" answer and a "snapshot" event of the open orders; every order change
  then goes out as an "update" event ({"channel":"user","events":[{"type":"update",
  "orders":[...]}]}), numbered in the connection's own sequence. The change is numbered
  when it is published and sent just after: an order placed while market frames are being
  played could reach the client after a later-numbered frame (the tests trade before
  playback or after it).

Sessions from other recorders (docs/replay.md, "Sessions from other recorders"): market
messages are read by their "channel" member whatever the key order; "subscriptions" and
"heartbeats" messages are control; with no recorded REST answers, the products and currencies
ccxt's load_markets asks for are made up from the frames' products
(trademesh.venues.coinbase.standin.synthesized). A session of Coinbase Pro's API (its
successor Coinbase Exchange, and GDAX before it: ws-feed and api hosts of their own) is
refused at start: this stand-in speaks Advanced Trade only.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from trademesh.venues.coinbase.standin.history import CoinbaseCandles
from trademesh.venues.coinbase.standin.order_store import CoinbaseOrders, endpoint, ws_order
from trademesh.venues.coinbase.standin.synthesized import FIAT, crypto_currency, fiat_currency, product
from trademesh.venues.coinbase.standin.trades import CoinbaseTrades
from trademesh.venues.replay.adapter import MockConnection, ReplayAdapter, RestAnswer, RestRequest, url_host
from trademesh.venues.replay.capture import Capture, WsFrame

__all__ = ["CoinbaseBook", "CoinbaseReplay"]

# Message channel -> the channel a client subscribes to.
_SUBSCRIBED_AS = {
    "l2_data": "level2",
    "market_trades": "market_trades",
    "ticker": "ticker",
    "candles": "candles",
}
_USER_TOPIC = "user"  # the private channel; each connection also has "user#<id>" for its own frames
_SEQUENCE = re.compile(r'"sequence_num":\s*\d+')
# Where each channel's events name their product.
_ITEMS = {"market_trades": "trades", "ticker": "tickers", "candles": "candles"}
_CONTROL = ("subscriptions", "heartbeats")
_PRODUCTS = "/api/v3/brokerage/market/products"
# Hosts of Coinbase's other trading APIs (their own message formats), by name.
_OTHER_APIS = {
    "ws-feed.pro.coinbase.com": "Coinbase Pro's API",
    "api.pro.coinbase.com": "Coinbase Pro's API",
    "ws-feed.exchange.coinbase.com": "Coinbase Exchange's API",
    "api.exchange.coinbase.com": "Coinbase Exchange's API",
    "ws-feed.gdax.com": "GDAX's API",
    "api.gdax.com": "GDAX's API",
}


class CoinbaseBook:
    """One product's level2 book at the current replay position, in the venue's own strings."""

    def __init__(self, product_id: str) -> None:
        self.product_id = product_id
        self.sides: dict[str, dict[str, str]] = {"bid": {}, "offer": {}}
        self.timestamp = ""

    def apply(self, message: dict[str, Any]) -> None:
        """Apply the l2_data events for this product (a snapshot replaces the book)."""
        self.timestamp = str(message.get("timestamp", self.timestamp))
        for event in message.get("events", []):
            if event.get("product_id") != self.product_id:
                continue
            if event.get("type") == "snapshot":
                self.sides = {"bid": {}, "offer": {}}
            for update in event.get("updates", []):
                side = self.sides[update["side"]]
                if Decimal(update["new_quantity"]) == 0:
                    side.pop(update["price_level"], None)
                else:
                    side[update["price_level"]] = update["new_quantity"]

    def snapshot(self) -> str:
        """The l2_data snapshot Coinbase would send a new subscriber now."""
        updates = []
        for side, descending in (("bid", True), ("offer", False)):
            levels = sorted(self.sides[side].items(), key=lambda level: Decimal(level[0]), reverse=descending)
            updates += [
                {
                    "side": side,
                    "event_time": "1970-01-01T00:00:00Z",
                    "price_level": price,
                    "new_quantity": size,
                }
                for price, size in levels
            ]
        event = {"type": "snapshot", "product_id": self.product_id, "updates": updates}
        return _message("l2_data", self.timestamp, [event])


class CoinbaseReplay(ReplayAdapter):
    api = "Coinbase Advanced Trade"

    def __init__(self, capture: Capture) -> None:
        super().__init__(capture)
        self.books: dict[str, CoinbaseBook] = {}
        first = next((m for f in capture.received if (m := _object(f.text)) and "channel" in m), {})
        self.opening_time = str(first.get("timestamp", "1970-01-01T00:00:00Z"))
        self.sequence: dict[int, int] = {}  # id(connection) -> last sequence_num used
        self.orders = CoinbaseOrders(self._best)
        self.orders.on_update = self._user_update
        self.user_connections: dict[int, MockConnection] = {}
        self.candles = CoinbaseCandles(self)
        self.trades = CoinbaseTrades(self, self.candles, self._best)

    def other_api(self, url: str) -> str | None:
        return _OTHER_APIS.get(url_host(url))

    def _best(self, product_id: str) -> tuple[str, str] | None:
        book = self.books.get(product_id)
        if book is None or not book.sides["bid"] or not book.sides["offer"]:
            return None
        return max(book.sides["bid"], key=Decimal), min(book.sides["offer"], key=Decimal)

    def _user_update(self, order: dict[str, Any]) -> None:
        """An order change to every connection subscribed to the `user` channel."""
        event = {"type": "update", "orders": [ws_order(order)]}
        for key, connection in list(self.user_connections.items()):
            if _USER_TOPIC not in connection.topics:
                del self.user_connections[key]
                continue
            text = self._numbered(connection, _message("user", self._now(), [event]))
            self.publish(f"{_USER_TOPIC}#{key}", text)

    def _user_snapshot(self) -> str:
        orders = [ws_order(order) for order in self.orders.open_orders()]
        return _message("user", self._now(), [{"type": "snapshot", "orders": orders}])

    def _numbered(self, connection: MockConnection, text: str) -> str:
        number = self.sequence.get(id(connection), -1) + 1
        self.sequence[id(connection)] = number
        return _SEQUENCE.sub(f'"sequence_num":{number}', text, count=1)

    def render(self, frame: WsFrame, topic: str, connection: MockConnection) -> str:
        return self._numbered(connection, frame.text)

    def lost(self, frame: WsFrame, topic: str, connections: list[MockConnection]) -> None:
        for connection in connections:
            self.sequence[id(connection)] = self.sequence.get(id(connection), -1) + 1

    def topic(self, frame: WsFrame) -> str | None:
        message = _object(frame.text)
        if message is None:
            return None
        channel = message.get("channel")
        if channel not in _SUBSCRIBED_AS:
            return None
        product_id = _product_id(channel, message.get("events") or [])
        return f"{_SUBSCRIBED_AS[channel]}:{product_id}" if product_id else None

    def symbol_of(self, topic: str) -> str:
        return topic.split(":", 1)[1]

    def is_control(self, frame: WsFrame) -> bool:
        message = _object(frame.text)
        return message is not None and message.get("channel") in _CONTROL

    def levels(self, frame: WsFrame, topic: str) -> Iterable[tuple[object, object]]:
        events = json.loads(frame.text).get("events") or []
        if topic.startswith("level2:"):
            return [(u["price_level"], u["new_quantity"]) for e in events for u in e.get("updates", [])]
        if topic.startswith("market_trades:"):
            return [(t["price"], t["size"]) for e in events for t in e.get("trades", [])]
        return ()

    def synthesize(self, request: RestRequest) -> RestAnswer | None:
        """What load_markets asks, from the frames' products
        (trademesh.venues.coinbase.standin.synthesized)."""
        path = request.path
        products = [p for m in self.markets_seen() if (p := product(m)) is not None]
        codes = list(
            dict.fromkeys(c for p in products for c in (p["base_currency_id"], p["quote_currency_id"]))
        )
        if path.endswith(_PRODUCTS):
            spot = request.query.get("product_type", "SPOT") == "SPOT"
            listed = products if spot else []
            names = ", ".join(p["product_id"] for p in listed) or "none"
            self.tally.synthesize(f"coinbase products ({'spot' if spot else 'future'})", names)
            return RestAnswer.json({"products": listed, "num_products": len(listed)})
        if path.endswith("/v2/currencies"):
            self.tally.synthesize("coinbase currencies", ", ".join(c for c in codes if c in FIAT) or "none")
            return RestAnswer.json({"data": [fiat_currency(c) for c in codes if c in FIAT]})
        if path.endswith("/v2/currencies/crypto"):
            self.tally.synthesize("coinbase crypto currencies", ", ".join(c for c in codes if c not in FIAT))
            return RestAnswer.json({"data": [crypto_currency(c) for c in codes if c not in FIAT]})
        if path.endswith("/v2/exchange-rates"):
            self.tally.synthesize("coinbase exchange rates", "USD, no rates")
            return RestAnswer.json({"data": {"currency": "USD", "rates": {}}})
        return None

    def is_book(self, topic: str) -> bool:
        return topic.startswith("level2:")

    def on_client_message(self, connection: MockConnection, text: str) -> list[str]:
        request = json.loads(text)
        kind, channel = request.get("type"), str(request.get("channel", ""))
        products = [str(p) for p in request.get("product_ids") or []]
        if kind not in ("subscribe", "unsubscribe") or not channel:
            return [json.dumps({"type": "error", "message": "Failed to subscribe"})]
        if channel == _USER_TOPIC:
            return self._user_subscription(connection, kind, request)
        snapshots = []
        for product_id in products:
            topic = f"{channel}:{product_id}"
            if kind == "unsubscribe":
                connection.unsubscribe(topic)
                continue
            connection.subscribe(topic)
            if channel == "level2" and product_id in self.books:
                snapshots.append(self.books[product_id].snapshot())
        return [self._numbered(connection, text) for text in [self._subscriptions(connection), *snapshots]]

    def _user_subscription(self, connection: MockConnection, kind: str, request: dict[str, Any]) -> list[str]:
        """The private channel: a JWT is required (not verified), every product is covered."""
        if kind == "unsubscribe":
            connection.unsubscribe(_USER_TOPIC)
            connection.unsubscribe(f"{_USER_TOPIC}#{id(connection)}")
            return [self._numbered(connection, self._subscriptions(connection))]
        if not request.get("jwt"):
            return [json.dumps({"type": "error", "message": "authentication failure"})]
        connection.subscribe(_USER_TOPIC)
        connection.subscribe(f"{_USER_TOPIC}#{id(connection)}")
        self.user_connections[id(connection)] = connection
        return [
            self._numbered(connection, text)
            for text in (self._subscriptions(connection), self._user_snapshot())
        ]

    def _subscriptions(self, connection: MockConnection) -> str:
        """The "subscriptions" message: every channel the connection now has, with its products."""
        listed: dict[str, list[str]] = {}
        for topic in sorted(connection.topics):
            if topic.startswith(_USER_TOPIC):
                listed.setdefault(_USER_TOPIC, [])
                continue
            channel, product_id = topic.split(":", 1)
            listed.setdefault(channel, []).append(product_id)
        return _message("subscriptions", self._now(), [{"subscriptions": listed}])

    def _now(self) -> str:
        books = list(self.books.values())
        return books[0].timestamp if books and books[0].timestamp else self.opening_time

    def delivered(self, frame: WsFrame, topic: str) -> None:
        if self.is_book(topic):
            product_id = topic.split(":", 1)[1]
            self.books.setdefault(product_id, CoinbaseBook(product_id)).apply(json.loads(frame.text))

    def delays_answer(self, request: RestRequest) -> bool:
        """A `slow` fault delays order creation only (batch_cancel is a POST too)."""
        return request.method == "POST" and endpoint(request.path) == "orders"

    def is_history(self, request: RestRequest) -> bool:
        """Candles and trades; not the product list (fetch_tickers' answer, and load_markets')."""
        return self.candles.handles(request) or self.trades.handles(request)

    def rate_limited(self, status: int) -> RestAnswer:
        """Coinbase's answer over a rate limit (ccxt's RateLimitExceeded)."""
        body = {
            "error": "rate_limit_exceeded",
            "error_details": "Too many requests",
            "message": "Too many requests",
        }
        return RestAnswer.json(body, status)

    def rest(self, request: RestRequest) -> RestAnswer:
        if self.candles.handles(request):
            return self.candles.answer(request)
        if self.trades.handles(request):
            return self.trades.answer(request)
        answer = self.orders.answer(request)
        if answer is not None:
            return answer
        for record in self.recorded(request.path):
            if record.query == dict(request.query):
                return RestAnswer(200, record.body)
        return super().rest(request)


def _object(text: str) -> dict[str, Any] | None:
    """A frame's JSON object; None for anything else."""
    if not text.startswith("{"):
        return None
    try:
        value = json.loads(text)
    except ValueError:  # not JSON: the tally counts it as unrecognized
        return None
    return value if isinstance(value, dict) else None


def _product_id(channel: str, events: list[dict[str, Any]]) -> str | None:
    for event in events:
        if channel == "l2_data":
            return str(event.get("product_id")) if event.get("product_id") else None
        for item in event.get(_ITEMS[channel]) or []:
            return str(item.get("product_id")) if item.get("product_id") else None
    return None


def _message(channel: str, timestamp: str, events: list[dict[str, Any]]) -> str:
    # sequence_num is set per connection when the message is sent (CoinbaseReplay._numbered).
    return json.dumps(
        {"channel": channel, "client_id": "", "timestamp": timestamp, "sequence_num": 0, "events": events}
    )
