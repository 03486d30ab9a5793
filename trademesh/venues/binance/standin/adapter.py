"""Binance's wire formats for the replay stand-in (spot; trademesh.venues.binanceusdm reuses it with /fapi).

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
- exchangeInfo as a listing file (TRADEMESH_REPLAY_LISTING: trademesh.venues.replay.listing) has it
  now: symbols delisted, rules changed (a live venue's markets reload, tested offline).

Sessions from other recorders (docs/replay.md, "Sessions from other recorders"):
- frames of raw streams (the event alone, as /ws/<stream> sends it) are read as well as
  combined-stream frames, whatever the key order; {"result":..,"id":..} answers are control;
- spot and USD-M futures share stream names: spot frames are those received from any host
  but fstream/dstream (futures), and the USD-M stand-in takes fstream's only;
- a diff-depth stream at another speed (`btcusdt@depth`, 1000 ms) is served to ccxt's
  `btcusdt@depth@100ms` subscription;
- depth snapshots are read at every address recorders used (`depth_paths`: the older
  /api/v1/depth, /api/v3/depth), with or without `limit`;
- with no recorded exchangeInfo or depth snapshot, both are made up from the frames
  (trademesh.venues.binance.standin.synthesized); a book so started is named by made_up_books, and the
  venue marks its stream INCOMPLETE.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

from trademesh.venues.binance.standin.history import KlineHistory
from trademesh.venues.binance.standin.listing import listed_now
from trademesh.venues.binance.standin.order_store import OrderStore
from trademesh.venues.binance.standin.synthesized import exchange_info, spot_symbol
from trademesh.venues.binance.standin.trades import BinanceTrades
from trademesh.venues.replay.adapter import MockConnection, ReplayAdapter, RestAnswer, RestRequest, url_host
from trademesh.venues.replay.capture import Capture, WsFrame
from trademesh.venues.replay.listing import ReplayListing
from trademesh.venues.replay.synthesis import SeenMarket

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
    api = "Binance spot's API"
    api_prefix = "/api/v3/"
    # Every address recorders took depth snapshots at, with or without `limit`: Binance's older
    # /api/v1/depth (cryptofeed's sessions until 2021-09) and /api/v3/depth; on any of
    # Binance's hosts (api., www. ...).
    depth_paths: tuple[str, ...] = ("/api/v1/depth", "/api/v3/depth")
    market_endpoint = "spot"  # which of Binance's stream hosts (endpoint()) this venue reads
    api_host = "api.binance.com"
    futures = False  # aggTrades and ticker/24hr in USD-M's shapes
    describe: Callable[[SeenMarket], dict[str, Any] | None] = staticmethod(spot_symbol)

    def __init__(self, capture: Capture) -> None:
        super().__init__(capture)
        self.books: dict[str, DepthBook] = {}
        for record in capture.rest:  # in capture order: a symbol's last snapshot is its start
            if record.path.endswith(self.depth_paths) and record.query.get("symbol"):
                self.books[record.query["symbol"].upper()] = DepthBook(json.loads(record.body))
        self.synthesized_books: set[str] = set()
        for symbol, before in self._before_first_updates().items():
            if symbol not in self.books:  # no recorded snapshot: empty, just before the first update
                self.books[symbol] = DepthBook({"lastUpdateId": before, "bids": [], "asks": []})
                self.synthesized_books.add(symbol)
        self.orders = OrderStore(self.api_prefix, self._best)
        self.orders.on_event = self._user_event
        self.snapshots_served: set[str] = set()
        self.trades = BinanceTrades(self, self._listed, self._best_levels, futures=self.futures)
        self.klines = KlineHistory(
            capture, lambda: {s: tape.candles for s, tape in self.trades.tapes.items()}
        )
        self._listing: list[str] | None = None
        self.listing = ReplayListing()  # TRADEMESH_REPLAY_LISTING: delistings, changed rules

    def topic(self, frame: WsFrame) -> str | None:
        message = _object(frame.text)
        if message is None:
            return None
        if "stream" in message and "data" in message:
            return str(message["stream"]).lower()
        raw = _raw_stream(message)
        return raw.lower() if raw is not None else None  # stream names are matched lowercased

    def is_control(self, frame: WsFrame) -> bool:
        message = _object(frame.text)
        return message is not None and "result" in message and "id" in message

    def symbol_of(self, topic: str) -> str:
        return topic.split("@", 1)[0].upper()

    def is_book(self, topic: str) -> bool:
        return "@depth" in topic

    def endpoint(self, url: str | None) -> str | None:
        if url is None:
            return None
        host = url_host(url)
        return "usdm" if host.startswith("fstream") else "coinm" if host.startswith("dstream") else "spot"

    def serves(self, endpoint: str | None) -> bool:
        return endpoint in (None, self.market_endpoint)

    def stream_of(self, topic: str) -> str | None:
        """Diff depth at any speed (`@depth`, `@depth@100ms`) is the symbol's book; partial books
        (`@depth5`...) are not diffs and stay apart."""
        symbol, _, rest = topic.partition("@")
        return f"{symbol}@depth" if rest == "depth" or rest.startswith("depth@") else None

    def levels(self, frame: WsFrame, topic: str) -> Iterable[tuple[object, object]]:
        data = _data(json.loads(frame.text))
        if data.get("e") in ("aggTrade", "trade"):
            return [(data["p"], data["q"])]
        if data.get("e") == "depthUpdate":
            return [(level[0], level[1]) for level in [*data.get("b", []), *data.get("a", [])]]
        return ()

    def _before_first_updates(self) -> dict[str, int]:
        """Each symbol's update id just before its first diff-depth event in the capture: the
        event's `pu` where it links to the previous one (futures), else its first id `U` - 1."""
        before: dict[str, int] = {}
        for market in self.market_frames():
            data = _data(json.loads(market.frame.text)) if self.stream_of(market.topic) else {}
            if data.get("e") == "depthUpdate" and "U" in data:
                before.setdefault(str(data["s"]), int(data["pu"]) if "pu" in data else int(data["U"]) - 1)
        return before

    def made_up_books(self) -> dict[str, str]:
        return {
            symbol: "the capture holds no depth snapshot of it: the stand-in started its book empty "
            "just before its first update, so it holds only the levels the session's updates set"
            for symbol in self.synthesized_books
        }

    def ready(self, topics: set[str]) -> bool:
        """Playback waits for the depth snapshots ccxt asks for after subscribing (as on Binance,
        where the snapshot is fetched while updates are already buffering), of the books it holds:
        a symbol the capture has no book of is refused its snapshot (-1121), so there is none to
        wait for (waiting held every playback of such a capture back by its longest wait, 10 s)."""
        wanted = {topic.split("@", 1)[0].upper() for topic in topics if self.is_book(topic)}
        return wanted & self.books.keys() <= self.snapshots_served

    def _best(self, symbol: str) -> tuple[str, str] | None:
        book = self.books.get(symbol)
        if book is None or not book.bids or not book.asks:
            return None
        return max(book.bids, key=float), min(book.asks, key=float)

    def _best_levels(self, symbol: str) -> tuple[str, str, str, str] | None:
        """The replayed book's best bid, its size, best ask and its size (None: no book, or a side empty)."""
        best = self._best(symbol)
        if best is None:
            return None
        book = self.books[symbol]
        return best[0], book.bids[best[0]], best[1], book.asks[best[1]]

    def _listed(self) -> list[str]:
        """The symbols exchangeInfo lists (recorded, or made up from the frames), in its order."""
        if self._listing is None:
            info = self.rest(RestRequest("GET", self.api_host + self.api_prefix + "exchangeInfo", {}, ""))
            body = json.loads(info.body) if info.status == 200 else {}
            self._listing = [str(s["symbol"]) for s in body.get("symbols", [])]
        return self._listing

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
        message = json.loads(frame.text)
        if "stream" not in message:
            return frame.text  # a raw-stream frame is what ccxt's /ws connection gets
        if list(message)[-1] == "data":  # the data object's own bytes (Binance's number text kept)
            start = frame.text.index('"data"') + len('"data"')
            return frame.text[start:].lstrip().removeprefix(":").strip()[:-1].rstrip()
        return json.dumps(message["data"], separators=(",", ":"))

    def delivered(self, frame: WsFrame, topic: str) -> None:
        if self.is_book(topic):
            data = _data(json.loads(frame.text))
            book = self.books.get(str(data.get("s")))
            if book is not None and data.get("e") == "depthUpdate":
                book.apply(data)

    def is_history(self, request: RestRequest) -> bool:
        return self._endpoint(request) in ("aggTrades", "ticker/24hr", "klines")

    def _endpoint(self, request: RestRequest) -> str:
        return request.path.split(self.api_prefix, 1)[-1] if self.api_prefix in request.path else ""

    def rest(self, request: RestRequest) -> RestAnswer:
        endpoint = self._endpoint(request)
        if endpoint == "depth":
            book = self.books.get(request.query.get("symbol", ""))
            if book is None:
                return RestAnswer.json({"code": -1121, "msg": "Invalid symbol."}, 400)
            if request.query["symbol"] in self.synthesized_books:
                detail = "an empty book just before each symbol's first update, then the replayed updates"
                self.tally.synthesize("binance depth snapshots", detail)
            self.snapshots_served.add(request.query["symbol"])
            return RestAnswer.json(book.answer(int(request.query.get("limit", "100"))))
        if endpoint == "klines":
            return RestAnswer.json(self.klines.page(request.query))
        if endpoint == "aggTrades":
            return self.trades.agg_trades(request)
        if endpoint == "ticker/24hr":
            return self.trades.tickers(request)
        if endpoint == "exchangeInfo":  # as the listing file has it now
            return listed_now(super().rest(request), self.listing.read())
        if endpoint in ("ping", "time"):
            return RestAnswer.json({} if endpoint == "ping" else {"serverTime": 0})
        answer = self.orders.answer(request, endpoint)
        return answer if answer is not None else super().rest(request)

    def synthesize(self, request: RestRequest) -> RestAnswer | None:
        if not request.path.endswith(self.api_prefix + "exchangeInfo"):
            return None
        symbols = [s for m in self.markets_seen() if (s := self.describe(m)) is not None]
        names = ", ".join(str(s["symbol"]) for s in symbols) or "none"
        self.tally.synthesize(
            f"binance exchangeInfo ({self.market_endpoint})", f"{len(symbols)} symbols: {names}"
        )
        return RestAnswer.json(exchange_info(symbols))


def _object(text: str) -> dict[str, Any] | None:
    if not text.startswith("{"):
        return None
    value = json.loads(text)
    return value if isinstance(value, dict) else None


def _data(message: dict[str, Any]) -> dict[str, Any]:
    """The event of a combined-stream frame, or the raw-stream frame itself."""
    data = message.get("data", message) if "stream" in message else message
    return data if isinstance(data, dict) else {}


def _raw_stream(event: dict[str, Any]) -> str | None:
    """The stream a raw-stream event came on (its name is not in the frame): "btcusdt@aggTrade"."""
    symbol = str(event.get("s", "")).lower()
    kind = event.get("e")
    if not symbol:
        return None
    if kind == "depthUpdate":
        return f"{symbol}@depth"  # speed unknown: served to any diff-depth subscription (stream_of)
    if kind == "kline":
        return f"{symbol}@kline_{event.get('k', {}).get('i')}"
    if kind in ("aggTrade", "trade", "markPriceUpdate"):
        return f"{symbol}@{kind if kind != 'markPriceUpdate' else 'markPrice'}"
    if kind == "bookTicker" or (kind is None and {"b", "B", "a", "A"} <= set(event)):
        return f"{symbol}@bookTicker"
    return None
