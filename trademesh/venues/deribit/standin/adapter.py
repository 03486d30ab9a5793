"""Deribit's wire formats for the replay stand-in (JSON-RPC 2.0 over one WebSocket).

- REST (www.deribit.com/api/v2/public/...): every answer is {"jsonrpc":"2.0","result":...}.
  get_instruments (optionally ?currency=BTC&kind=option&expired=false) is answered from the
  capture's recorded get_instruments calls, one per currency; get_currencies from the
  currencies those instruments are in; get_tradingview_chart_data the candle history
  (trademesh.venues.deribit.standin.history); get_last_trades_by_instrument[_and_time] the trade history
  and get_book_summary_by_currency every instrument's summary (trademesh.venues.deribit.standin.trades);
  anything else with JSON-RPC error -32601.
  Instruments recorded before Deribit added `counter_currency` and `settlement_currency`
  (2021: every instrument was inverse, priced in USD and settled in its base currency)
  get those two fields filled in, as today's API (and ccxt, which skips markets without
  them) has them.
- WebSocket (www.deribit.com/ws/api/v2): requests are {"jsonrpc":"2.0","id":n,"method":...,
  "params":{...}} and answers {"jsonrpc":"2.0","id":n,"result":...}. public/subscribe takes
  {"channels":[...]} and answers the list of channels subscribed. Notifications are
  {"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.X.raw","data":{...}}}.
- Channels are `<kind>.<instrument>.<interval>` (book, trades, ticker; interval raw or
  100ms). The capture holds `.raw` channels; ccxt subscribes to `.100ms` (raw needs auth),
  so a topic is the channel without its interval and frames are sent under the channel name
  the client asked for.
- Book: the first notification of an instrument is {"type":"snapshot","change_id":c,
  "bids":[["new",price,amount]...],"asks":[...]}; the next ones are {"type":"change",
  "prev_change_id":c0,"change_id":c1,...} with levels ["new"|"change"|"delete",price,amount].
  The stand-in keeps each book at the replay position and sends it as a fresh snapshot to a
  client that subscribes again after the capture's snapshot went by (e.g. after a reconnect).
- Trading (trademesh/venues/deribit/standin/order_store.py; futures' margin at the mark of the replayed
  `ticker` notifications, trademesh/venues/deribit/standin/margin.py): private/* methods, over REST (GET
  www.deribit.com/api/v2/private/<method>?..., as ccxt sends them, signed with a
  `deri-hmac-sha256` Authorization header; an unsigned call gets 13009 unauthorized) or
  over the WebSocket. After public/auth, private/subscribe to `user.orders.<kind>.<currency>.
  <interval>`, `user.trades...` (or `user.orders.<instrument>.<interval>`) delivers every
  order change as Deribit's notifications: the order (an object on `raw`, a list on
  `100ms`) on user.orders, then its trades (a list) on user.trades. A user channel is its
  own topic (the interval included): it is not in the capture.

Sessions from other recorders (docs/replay.md, "Sessions from other recorders"):
notifications are read whatever their key order and spacing; JSON-RPC answers ({"id":..})
and heartbeats are control frames; with no recorded get_instruments, the instruments the
frames stream are described from their names (trademesh.venues.deribit.standin.synthesized).
"""

from __future__ import annotations

import json
import re
import weakref
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from trademesh.venues.deribit.standin.history import DeribitChartData
from trademesh.venues.deribit.standin.order_store import (
    DeribitOrderStore,
    RpcError,
    instrument_currency,
    instrument_kind,
)
from trademesh.venues.deribit.standin.synthesized import instrument
from trademesh.venues.deribit.standin.trades import DeribitTrades
from trademesh.venues.replay.adapter import MockConnection, ReplayAdapter, RestAnswer, RestRequest
from trademesh.venues.replay.capture import Capture, WsFrame

__all__ = ["DeribitBook", "DeribitReplay"]

_TRADES = ("public/get_last_trades_by_instrument", "public/get_last_trades_by_instrument_and_time")
_BOOK_SUMMARY = "public/get_book_summary_by_currency"

_API = "/api/v2/"
_NO_METHOD = {"code": -32601, "message": "Method not found"}


def split_channel(channel: str) -> tuple[str, str]:
    """("book.X", "raw") for "book.X.raw": the topic and the interval."""
    topic, _, interval = channel.rpartition(".")
    return topic, interval


def topic_of(channel: str) -> str:
    """The topic a subscription joins: a market channel without its interval, a user channel whole."""
    return channel if channel.startswith("user.") else split_channel(channel)[0]


def user_channels(kind: str, instrument: str) -> list[str]:
    """Every user.<kind> channel an order change of this instrument is notified on."""
    currency = instrument_currency(instrument)
    names = [f"{kind}.{k}.{c}" for k in ("any", instrument_kind(instrument)) for c in ("any", currency)]
    names.append(f"{kind}.{instrument}")
    return [f"user.{name}.{interval}" for name in names for interval in ("raw", "100ms")]


class DeribitBook:
    """One instrument's book as Deribit has it at the current replay position."""

    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.change_id: int | None = None
        self.timestamp = 0

    def apply(self, data: dict[str, Any]) -> None:
        if data.get("type") == "snapshot":
            self.bids, self.asks = {}, {}
        for side, levels in ((self.bids, data.get("bids") or []), (self.asks, data.get("asks") or [])):
            for action, price, amount in levels:
                if action == "delete" or float(amount) == 0:
                    side.pop(price, None)
                else:
                    side[price] = amount
        self.change_id = data.get("change_id")
        self.timestamp = int(data.get("timestamp") or 0)

    def snapshot(self, instrument: str) -> dict[str, Any]:
        return {
            "type": "snapshot",
            "timestamp": self.timestamp,
            "instrument_name": instrument,
            "change_id": self.change_id,
            "bids": [["new", p, a] for p, a in sorted(self.bids.items(), key=lambda lv: -lv[0])],
            "asks": [["new", p, a] for p, a in sorted(self.asks.items(), key=lambda lv: lv[0])],
        }


def _current_format(instrument: dict[str, Any]) -> dict[str, Any]:
    """An instrument as today's API describes it (inverse: USD counter, settled in the base)."""
    return {
        "counter_currency": "USD",
        "settlement_currency": instrument["base_currency"],
        **instrument,
    }


def _object(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None


def _answer(request_id: Any, result: Any) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "result": result})


def _error(request_id: Any, error: dict[str, Any]) -> str:
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "error": error})


def _notification(channel: str, data: dict[str, Any] | list[dict[str, Any]]) -> str:
    return json.dumps(
        {"jsonrpc": "2.0", "method": "subscription", "params": {"channel": channel, "data": data}}
    )


class DeribitReplay(ReplayAdapter):
    api = "Deribit's API v2"

    def __init__(self, capture: Capture) -> None:
        super().__init__(capture)
        self.books: dict[str, DeribitBook] = {}
        # The channel name each client subscribed a topic under (e.g. "book.X.100ms").
        self.channels: weakref.WeakKeyDictionary[MockConnection, dict[str, str]] = weakref.WeakKeyDictionary()
        self.marks: dict[str, Decimal] = {}  # the last mark_price a notification stated, by instrument
        self.orders = DeribitOrderStore(self._best, self.marks.get)
        self.orders.on_change = self._notify_user
        self.chart_data = DeribitChartData(
            self, lambda: [str(i["instrument_name"]) for i in self._instruments(None, None)]
        )
        self.trades = DeribitTrades(self, self.chart_data, self._instruments, self._best_levels)

    # ---- market frames

    def topic(self, frame: WsFrame) -> str | None:
        message = _object(frame.text)
        if message is None or message.get("method") != "subscription":
            return None
        return split_channel(str(message["params"]["channel"]))[0]

    def is_control(self, frame: WsFrame) -> bool:
        message = _object(frame.text)
        return message is not None and ("id" in message or message.get("method") == "heartbeat")

    def symbol_of(self, topic: str) -> str:
        return topic.split(".", 1)[1]

    def is_book(self, topic: str) -> bool:
        return topic.startswith("book.")

    def levels(self, frame: WsFrame, topic: str) -> Iterable[tuple[object, object]]:
        data = json.loads(frame.text)["params"]["data"]
        if topic.startswith("trades."):
            return [(t["price"], t["amount"]) for t in data]
        if self.is_book(topic):
            return [(lv[1], lv[2]) for lv in [*(data.get("bids") or []), *(data.get("asks") or [])]]
        return ()

    def render(self, frame: WsFrame, topic: str, connection: MockConnection) -> str:
        channel = self.channels.get(connection, {}).get(topic)
        if channel is None:
            return frame.text
        captured = re.escape(json.loads(frame.text)["params"]["channel"])
        return re.sub(rf'("channel"\s*:\s*)"{captured}"', rf'\1"{channel}"', frame.text, count=1)

    def delivered(self, frame: WsFrame, topic: str) -> None:
        if self.is_book(topic):
            data = json.loads(frame.text)["params"]["data"]
            self.books.setdefault(data["instrument_name"], DeribitBook()).apply(data)
        elif topic.startswith("ticker."):  # its mark_price: margins and liquidation (order_store)
            data = json.loads(frame.text)["params"]["data"]
            instrument = str(data.get("instrument_name"))
            if data.get("mark_price") is not None:
                self.marks[instrument] = Decimal(str(data["mark_price"]))
                self.orders.liquidate(instrument)

    # ---- client requests

    def on_client_message(self, connection: MockConnection, text: str) -> list[str]:
        request = json.loads(text)
        method, request_id = request.get("method"), request.get("id")
        params = request.get("params") or {}
        if method in ("public/subscribe", "private/subscribe"):
            return self._subscribe(connection, request_id, list(params.get("channels") or []))
        if method in ("public/unsubscribe", "private/unsubscribe"):
            for channel in params.get("channels") or []:
                connection.unsubscribe(topic_of(channel))
            return [_answer(request_id, params.get("channels") or [])]
        if method == "public/auth":
            return [_answer(request_id, self._token())]
        if method in ("public/test", "public/set_heartbeat", "public/disable_heartbeat"):
            return [_answer(request_id, {"version": "2.1.1"} if method == "public/test" else "ok")]
        if isinstance(method, str) and self.orders.handles(method):
            try:
                return [_answer(request_id, self.orders.call(method, params))]
            except RpcError as error:
                return [_error(request_id, error.body())]
        return [_error(request_id, _NO_METHOD)]

    def _subscribe(self, connection: MockConnection, request_id: Any, channels: list[str]) -> list[str]:
        named = self.channels.setdefault(connection, {})
        fresh: list[str] = []
        for channel in channels:
            topic = topic_of(channel)
            named[topic] = channel
            connection.subscribe(topic)
            book = self.books.get(topic.split(".", 1)[1]) if self.is_book(topic) else None
            if book is not None and book.change_id is not None:
                fresh.append(_notification(channel, book.snapshot(topic.split(".", 1)[1])))
        return [_answer(request_id, channels), *fresh]

    @staticmethod
    def _token() -> dict[str, Any]:
        return {
            "access_token": "replay-access-token",
            "expires_in": 31536000,
            "refresh_token": "replay-refresh-token",
            "scope": "connection mainaccount",
            "token_type": "bearer",
        }

    # ---- the account's own notifications

    def _best(self, instrument: str) -> tuple[Decimal | None, Decimal | None]:
        """The best bid and ask of the book at the replay position (None: that side is empty)."""
        book = self.books.get(instrument)
        if book is None:
            return None, None
        bid = Decimal(str(max(book.bids))) if book.bids else None
        ask = Decimal(str(min(book.asks))) if book.asks else None
        return bid, ask

    def _notify_user(self, order: dict[str, Any], trades: list[dict[str, Any]]) -> None:
        """Deribit's user.orders notification of an order change, then user.trades of its fills."""
        instrument = order["instrument_name"]
        for channel in user_channels("orders", instrument):
            self.publish(channel, _notification(channel, order if channel.endswith(".raw") else [order]))
        if trades:
            for channel in user_channels("trades", instrument):
                self.publish(channel, _notification(channel, trades))

    # ---- REST

    def delays_answer(self, request: RestRequest) -> bool:
        """ccxt sends Deribit's private calls as GETs: a `slow` fault delays order entry."""
        return request.path.endswith(("/private/buy", "/private/sell"))

    def _best_levels(self, instrument: str) -> tuple[Any, Any, Any, Any] | None:
        """The replayed book's best bid, its amount, best ask and its amount (None: a side empty)."""
        book = self.books.get(instrument)
        if book is None or not book.bids or not book.asks:
            return None
        bid, ask = max(book.bids), min(book.asks)
        return bid, book.bids[bid], ask, book.asks[ask]

    def is_history(self, request: RestRequest) -> bool:
        method = request.path.split(_API, 1)[1] if _API in request.path else ""
        return method in (*_TRADES, _BOOK_SUMMARY, "public/get_tradingview_chart_data")

    def rate_limited(self, status: int) -> RestAnswer:
        """Deribit's answer over its rate limit: JSON-RPC error 10028 (ccxt's DDoSProtection)."""
        error = {"code": 10028, "message": "too_many_requests"}
        return RestAnswer.json({"jsonrpc": "2.0", "error": error, "testnet": False}, status)

    def rest(self, request: RestRequest) -> RestAnswer:
        method = request.path.split(_API, 1)[1] if _API in request.path else ""
        params = request.params()
        if method == "public/get_instruments":
            return self._result(self._instruments(params.get("currency"), params.get("kind")))
        if method == "public/get_currencies":
            currencies = self._currencies()
            names = ", ".join(c["currency"] for c in currencies)
            self.tally.synthesize("deribit currencies", f"the instruments' base currencies: {names}")
            return self._result(currencies)
        if method == "public/test":
            return self._result({"version": "2.1.1"})
        if method == "public/get_tradingview_chart_data":
            return self.chart_data.answer(params)
        if method in _TRADES:
            return self.trades.trades(method, params)
        if method == _BOOK_SUMMARY:
            return self.trades.book_summary(params)
        if self.orders.handles(method):
            return self._private(method, request)
        return RestAnswer.json({"jsonrpc": "2.0", "error": _NO_METHOD}, 400)

    def _private(self, method: str, request: RestRequest) -> RestAnswer:
        if not request.headers.get("Authorization", "").startswith("deri-hmac-sha256 "):
            return RestAnswer.json(
                {"jsonrpc": "2.0", "error": {"code": 13009, "message": "unauthorized"}}, 400
            )
        try:
            return self._result(self.orders.call(method, request.params()))
        except RpcError as error:
            return RestAnswer.json({"jsonrpc": "2.0", "error": error.body()}, 400)

    @staticmethod
    def _result(result: Any) -> RestAnswer:
        return RestAnswer.json({"jsonrpc": "2.0", "result": result})

    def _instruments(self, currency: str | None, kind: str | None) -> list[dict[str, Any]]:
        if not self.capture.rest_for("public/get_instruments"):
            return self._synthesized(currency, kind)
        found: list[dict[str, Any]] = []
        for record in self.capture.rest_for("public/get_instruments"):
            if currency not in (None, "any", record.query.get("currency")):
                continue
            found.extend(
                _current_format(i) for i in json.loads(record.body)["result"] if kind in (None, i.get("kind"))
            )
        return found

    def _synthesized(self, currency: str | None, kind: str | None) -> list[dict[str, Any]]:
        """The instruments the frames stream, described from their names."""
        described = [i for m in self.markets_seen() if (i := instrument(m)) is not None]
        names = ", ".join(i["instrument_name"] for i in described) or "none"
        self.tally.synthesize("deribit instruments", f"{names} (contract size unknown: 1 taken)")
        return [
            i
            for i in described
            if currency in (None, "any", i["base_currency"]) and kind in (None, i["kind"])
        ]

    def _currencies(self) -> list[dict[str, Any]]:
        names = dict.fromkeys(str(i["base_currency"]) for i in self._instruments(None, None))
        return [
            {
                "currency": name,
                "currency_long": name,
                "fee_precision": 4,
                "min_confirmations": 1,
                "min_withdrawal_fee": 0.0001,
                "withdrawal_fee": 0.0001,
                "withdrawal_priorities": [],
                "coin_type": name,
            }
            for name in names
        ]
