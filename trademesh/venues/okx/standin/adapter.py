"""OKX's API v5 wire formats for the replay stand-in (spot; trademesh.venues.okx_swap reuses it for swaps).

- WebSocket: the client sends {"op":"subscribe","args":[{"channel":..,"instId":..}]} (and
  "unsubscribe"), answered per argument with {"event":"subscribe","arg":{..},"connId":".."};
  market frames {"arg":{"channel":..,"instId":..},"data":[..]} are routed by channel:instId.
  OKX's keepalive is the text "ping", answered with "pong".
- Books: OKX sends a book snapshot only in reply to a subscribe. The capture holds the first
  one; when the client subscribes again (after a gap it unsubscribes and resubscribes), the
  stand-in answers with a fresh snapshot of the book at the current replay position, with
  its seqId and its CRC32 checksum.
- REST: the recorded instruments; /api/v5/public/time answers the current time;
  /api/v5/market/ticker the last `tickers` push replayed of the instrument; /market/candles and
  /market/history-candles the candle history (trademesh.venues.okx.standin.history); the trade
  and account calls go to a small order store (trademesh.venues.okx.standin.order_store) whose
  marketable orders fill at the replayed book's best price.
- Private WebSocket (/ws/v5/private): the client logs in with {"op":"login","args":[{apiKey,
  passphrase,timestamp,sign}]}, answered {"event":"login","code":"0","msg":"","connId":..}
  (the signature is not checked), then subscribes to {"channel":"orders","instType":"ANY"}
  (or SPOT/SWAP, optionally with instId); every order change is pushed as
  {"arg":{"channel":"orders","instType":..,"uid":..},"data":[order]} to the matching
  subscriptions (topic "orders:<instType>[:<instId>]"). The stops (algo orders,
  trademesh.venues.okx.standin.order_store) go the same way on the `orders-algo` channel, which ccxt
  subscribes on the business WebSocket (/ws/v5/business) after the same login.

Sessions from other recorders (docs/replay.md, "Sessions from other recorders"):
- {"event":...} answers and "pong" are control frames;
- a book channel other than the one ccxt subscribes ("books-l2-tbt", "books50-l2-tbt",
  "books5", "bbo-tbt" where ccxt asks "books") is served under the asked channel's name;
  books5 and bbo-tbt pushes (whole books, no `action`) go out as snapshots with their
  checksum;
- with no recorded instruments, /public/instruments answers the SPOT or SWAP instruments the
  frames stream (trademesh.venues.okx.standin.synthesized); recorded ones are used as recorded, under
  any host (okex.com before OKX's rename: trademesh.venues.replay.adapter, ReplayAdapter.recorded);
- a session of OKEx's APIs before v5 (WebSocket /ws/v3, REST /api/<market>/v3/...) is refused
  at start: this stand-in speaks v5.
"""

from __future__ import annotations

import json
import logging
import re
import time
import zlib
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from trademesh.venues.okx.standin.history import CANDLES, HISTORY_CANDLES, OkxCandles
from trademesh.venues.okx.standin.order_store import UID, OkxAlgoOrders, OkxOrderStore, instruments_of
from trademesh.venues.okx.standin.synthesized import instrument_row, kind_of
from trademesh.venues.okx.standin.trades import HISTORY_TRADES, TICKERS, TRADES, OkxTrades
from trademesh.venues.replay.adapter import MockConnection, ReplayAdapter, RestAnswer, RestRequest, url_path
from trademesh.venues.replay.capture import Capture, WsFrame

log = logging.getLogger(__name__)

__all__ = ["OkxBook", "OkxReplay", "okx_checksum"]

_BOOK_CHANNELS = ("books", "books5", "bbo-tbt", "books-l2-tbt", "books50-l2-tbt", "books-rpi")
_WHOLE_BOOK_CHANNELS = ("books5", "bbo-tbt")  # every push is the whole book, with no `action`
_INSTRUMENTS = "/api/v5/public/instruments"
_CONN_ID = "5e2b7c19"
_PRIVATE_CHANNELS = ("orders", "orders-algo", "account", "positions")
# The paths of OKEx's APIs before v5: the WebSocket /ws/v3, REST /api/spot/v3/... (the version).
_OLD_API = re.compile(r"^/(?:ws|api/\w+)/v([1-4])(?:/|$)")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def okx_checksum(bids: list[list[str]], asks: list[list[str]]) -> int:
    """CRC32 (signed 32-bit) of "bid:size:ask:size:..." over the top 25 levels, as OKX documents."""
    parts: list[str] = []
    for i in range(25):
        if i < len(bids):
            parts += bids[i][:2]
        if i < len(asks):
            parts += asks[i][:2]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= (1 << 31) else crc


def _as_snapshot(message: dict[str, Any], channel: str) -> str:
    """A whole-book push (books5, bbo-tbt) as a `channel` snapshot, with OKX's checksum."""
    data = []
    for book in message.get("data") or []:
        bids, asks = book.get("bids", []), book.get("asks", [])
        extra = {k: v for k, v in book.items() if k not in ("bids", "asks", "instId")}
        data.append(
            {"asks": asks, "bids": bids, **extra, "checksum": okx_checksum(bids, asks), "prevSeqId": -1}
        )
    arg = {**message.get("arg", {}), "channel": channel}
    return _dumps({"arg": arg, "action": "snapshot", "data": data})


def _private_topic(arg: dict[str, str]) -> str:
    """The topic of an `orders` or `orders-algo` subscription: "orders:ANY",
    "orders-algo:SWAP:BTC-USDT-SWAP"..."""
    parts = (arg.get("channel", "orders"), arg.get("instType", "ANY"), arg.get("instId"))
    return ":".join(part for part in parts if part)


class OkxBook:
    """One instrument's book as OKX has it at the current replay position (levels as sent)."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, list[str]] = {}
        self.asks: dict[Decimal, list[str]] = {}
        self.seq_id = -1
        self.ts = "0"

    def apply(self, action: str | None, data: dict[str, Any]) -> None:
        """Apply a snapshot or an update frame's data object (no action: a whole-book push)."""
        if action in ("snapshot", None):
            self.bids, self.asks = {}, {}
        for side, levels in ((self.bids, data.get("bids", [])), (self.asks, data.get("asks", []))):
            for level in levels:
                price = Decimal(level[0])
                if Decimal(level[1]) == 0:
                    side.pop(price, None)
                else:
                    side[price] = list(level)
        self.seq_id = int(data.get("seqId", self.seq_id))
        self.ts = str(data.get("ts", self.ts))

    def snapshot(self, arg: dict[str, str]) -> str:
        """A books snapshot frame of the current book, with a correct checksum."""
        bids = [self.bids[p] for p in sorted(self.bids, reverse=True)][:400]
        asks = [self.asks[p] for p in sorted(self.asks)][:400]
        data = {
            "asks": asks,
            "bids": bids,
            "ts": self.ts,
            "checksum": okx_checksum(bids, asks),
            "prevSeqId": -1,
            "seqId": self.seq_id,
        }
        return _dumps({"arg": arg, "action": "snapshot", "data": [data]})


class OkxReplay(ReplayAdapter):
    """Spot and swaps alike: OKX's public and business WebSocket share one message format."""

    api = "OKX's API v5"

    def __init__(self, capture: Capture) -> None:
        super().__init__(capture)
        self.books: dict[str, OkxBook] = {}
        self.tickers: dict[str, dict[str, Any]] = {}  # the last `tickers` push replayed, by instId
        instruments = {}
        for body in self._instrument_bodies():
            instruments.update(instruments_of(body))
        self.orders = OkxOrderStore(instruments, self._best)
        self.orders.on_push = self._push
        self.orders.on_account = self._push_account
        self.orders.on_position = lambda inst_type, inst_id, data: self._push(
            inst_type, inst_id, data, "positions"
        )
        self.algos = OkxAlgoOrders({inst_id: i.inst_type for inst_id, i in instruments.items()})
        self.candles = OkxCandles(self, instruments)
        self.trades = OkxTrades(self, instruments, lambda: self.candles.markets, self.tickers)
        self.algos.on_push = lambda inst_type, inst_id, data: self._push(
            inst_type, inst_id, data, "orders-algo"
        )

    def other_api(self, url: str) -> str | None:
        old = _OLD_API.match(url_path(url))
        return f"OKEx's API v{old[1]}" if old else None

    def _instrument_bodies(self) -> list[str]:
        """The recorded /public/instruments answers; else those the frames describe."""
        recorded = [record.body for record in self.capture.rest_for(_INSTRUMENTS)]
        return recorded or [_dumps(self._synthesized("SPOT")), _dumps(self._synthesized("SWAP"))]

    def _synthesized(self, inst_type: str) -> dict[str, Any]:
        rows = [
            row for m in self.markets_seen() if kind_of(m.native) == inst_type and (row := instrument_row(m))
        ]
        return {"code": "0", "msg": "", "data": rows}

    def synthesize(self, request: RestRequest) -> RestAnswer | None:
        if not request.path.endswith(_INSTRUMENTS):
            return None
        inst_type = request.params().get("instType", "SPOT")
        body = self._synthesized(inst_type)
        names = ", ".join(row["instId"] for row in body["data"]) or "none"
        detail = f"{len(body['data'])} instruments from the frames: {names}"
        if inst_type == "SWAP":
            detail += " (contract value unknown: ctVal 1 taken)"
        self.tally.synthesize(f"okx instruments ({inst_type})", detail)
        return RestAnswer.json(body)

    def is_control(self, frame: WsFrame) -> bool:
        return frame.text == "pong" or (frame.text.startswith("{") and "event" in json.loads(frame.text))

    def stream_of(self, topic: str) -> str | None:
        """Every book channel of an instrument is its book."""
        return f"book:{self.symbol_of(topic)}" if self.is_book(topic) else None

    def rename(self, text: str, captured: str, asked: str) -> str:
        """A captured book channel's frame under the channel the client asked for."""
        old, new = captured.split(":", 1)[0], asked.split(":", 1)[0]
        if old in _WHOLE_BOOK_CHANNELS and new not in _WHOLE_BOOK_CHANNELS:
            return _as_snapshot(json.loads(text), new)
        return re.sub(rf'("channel"\s*:\s*)"{re.escape(old)}"', rf'\1"{new}"', text, count=1)

    def levels(self, frame: WsFrame, topic: str) -> Iterable[tuple[object, object]]:
        channel = topic.split(":", 1)[0]
        data = json.loads(frame.text).get("data") or []
        if channel == "trades":
            return [(t["px"], t["sz"]) for t in data]
        if self.is_book(topic):
            return [(level[0], level[1]) for d in data for level in [*d.get("bids", []), *d.get("asks", [])]]
        return ()

    def topic(self, frame: WsFrame) -> str | None:
        if not frame.text.startswith("{") or '"data"' not in frame.text:
            return None
        arg = json.loads(frame.text).get("arg") or {}
        if "channel" not in arg or "instId" not in arg:
            return None
        return f"{arg['channel']}:{arg['instId']}"

    def symbol_of(self, topic: str) -> str:
        return topic.split(":", 1)[1]

    def is_book(self, topic: str) -> bool:
        return topic.split(":", 1)[0] in _BOOK_CHANNELS

    def on_client_message(self, connection: MockConnection, text: str) -> list[str]:
        if text == "ping":
            return ["pong"]
        request = json.loads(text)
        op = request.get("op")
        if op == "login":  # the private connection; OKX checks the signature, the stand-in does not
            return [_dumps({"event": "login", "code": "0", "msg": "", "connId": _CONN_ID})]
        if op not in ("subscribe", "unsubscribe"):
            return [
                _dumps(
                    {"event": "error", "code": "60012", "msg": f"Illegal request: {text}", "connId": _CONN_ID}
                )
            ]
        replies: list[str] = []
        for arg in request.get("args") or []:
            replies += self._subscription(connection, op, arg)
        return replies

    def _subscription(self, connection: MockConnection, op: str, arg: dict[str, str]) -> list[str]:
        topic = (
            _private_topic(arg)
            if arg.get("channel") in _PRIVATE_CHANNELS
            else f"{arg.get('channel')}:{arg.get('instId')}"
        )
        event = {"event": op, "arg": arg, "connId": _CONN_ID}
        if arg.get("channel") in _PRIVATE_CHANNELS:
            log.info("replay: OKX %s %s", op, topic)
        if op == "unsubscribe":
            connection.unsubscribe(topic)
            return [_dumps(event)]
        joined = connection.subscribe(topic)  # a captured book channel of another name serves it too
        replies = [_dumps(event)]
        book = self.books.get(joined)
        if book is not None and self.is_book(topic):  # the capture's own snapshot has been played
            replies.append(book.snapshot(arg))
        return replies

    def _best(self, inst_id: str) -> tuple[str, str] | None:
        """The best bid and ask of the replayed `books` channel, as OKX wrote them."""
        book = self.books.get(f"books:{inst_id}")
        if book is None or not book.bids or not book.asks:
            return None
        return book.bids[max(book.bids)][0], book.asks[min(book.asks)][0]

    def _push(self, inst_type: str, inst_id: str, data: dict[str, Any], channel: str = "orders") -> None:
        """An order change to every subscription of its channel (`orders`, or `orders-algo` for
        an algo order) it matches: any type, its type, its instrument."""
        for arg in (
            {"channel": channel, "instType": "ANY"},
            {"channel": channel, "instType": inst_type},
            {"channel": channel, "instType": inst_type, "instId": inst_id},
        ):
            self.publish(_private_topic(arg), _dumps({"arg": {**arg, "uid": UID}, "data": [data]}))

    def _push_account(self, data: dict[str, Any]) -> None:
        """The `account` channel's push (its subscription names no instrument type)."""
        arg = {"channel": "account"}
        self.publish(_private_topic(arg), _dumps({"arg": {**arg, "uid": UID}, "data": [data]}))

    def delivered(self, frame: WsFrame, topic: str) -> None:
        if topic.startswith("tickers:"):
            for data in json.loads(frame.text).get("data") or []:
                self.tickers[str(data.get("instId"))] = data
            return
        if not self.is_book(topic):
            return
        message = json.loads(frame.text)
        book = self.books.setdefault(topic, OkxBook())
        for data in message.get("data") or []:
            book.apply(message.get("action"), data)

    def is_history(self, request: RestRequest) -> bool:
        return request.path.endswith((CANDLES, HISTORY_CANDLES, TRADES, HISTORY_TRADES, TICKERS))

    def rate_limited(self, status: int) -> RestAnswer:
        """OKX's answer over a rate limit: HTTP 429, code 50011 (ccxt's RateLimitExceeded)."""
        return RestAnswer.json({"msg": "Too Many Requests", "code": "50011"}, status)

    def rest(self, request: RestRequest) -> RestAnswer:
        if request.path.endswith("/api/v5/public/time"):
            return RestAnswer.json({"code": "0", "msg": "", "data": [{"ts": str(int(time.time() * 1000))}]})
        if request.path.endswith("/api/v5/trade/cancel-all-after"):
            return self._cancel_all_after(request)
        if request.path.endswith("/api/v5/asset/currencies"):
            return self._currencies()
        if request.path.endswith("/api/v5/market/ticker"):
            return self._ticker(request.query.get("instId", ""))
        if request.method == "GET" and request.path.endswith((CANDLES, HISTORY_CANDLES)):
            return self.candles.answer(request.path, request.params())
        if request.method == "GET" and request.path.endswith((TRADES, HISTORY_TRADES)):
            return self.trades.trades(request.path, request.params())
        if request.method == "GET" and request.path.endswith(TICKERS):
            return self.trades.tickers(request.params())
        answer = self.orders.answer(request) or self.algos.answer(
            request, request.path.split("/api/v5/", 1)[-1]
        )
        return answer if answer is not None else super().rest(request)

    def _currencies(self) -> RestAnswer:
        """/asset/currencies (ccxt asks when it has credentials): the instruments' coins."""
        coins: dict[str, None] = {}
        for body in self._instrument_bodies():
            for instrument in json.loads(body).get("data", []):
                for key in ("baseCcy", "quoteCcy", "settleCcy"):
                    if instrument.get(key):
                        coins[instrument[key]] = None
        data = [
            {
                "ccy": coin,
                "name": coin,
                "chain": f"{coin}-{coin}",
                "canDep": True,
                "canWd": True,
                "canInternal": True,
                "minWd": "0.0001",
                "maxFee": "0.001",
                "minFee": "0.0001",
                "wdTickSz": "8",
                "minDep": "0.00000001",
                "mainNet": True,
                "logoLink": "",
            }
            for coin in coins
        ]
        self.tally.synthesize("okx currencies", f"the instruments' coins: {', '.join(coins)}")
        return RestAnswer.json({"code": "0", "msg": "", "data": data})

    def _ticker(self, inst_id: str) -> RestAnswer:
        """GET /market/ticker: the `tickers` channel's last push of the instrument replayed so
        far (the channel's data object is the REST ticker); no ticker before the first."""
        if inst_id not in self.orders.instruments:
            return RestAnswer.json({"code": "51001", "msg": "Instrument ID does not exist", "data": []})
        found = self.tickers.get(inst_id)
        return RestAnswer.json({"code": "0", "msg": "", "data": [found] if found else []})

    def _cancel_all_after(self, request: RestRequest) -> RestAnswer:
        """OKX's dead-man switch: timeOut 0 disarms it, else 10 to 120 seconds."""
        timeout = int(request.params().get("timeOut", "-1"))
        if timeout != 0 and not 10 <= timeout <= 120:
            return RestAnswer.json({"code": "51000", "msg": "Parameter timeOut error", "data": []})
        log.info("replay: OKX cancel-all-after timeOut=%d", timeout)
        now = int(time.time() * 1000)
        trigger = "0" if timeout == 0 else str(now + timeout * 1000)
        return RestAnswer.json(
            {"code": "0", "msg": "", "data": [{"triggerTime": trigger, "tag": "", "ts": str(now)}]}
        )
