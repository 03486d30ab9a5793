"""OKX's API v5 wire formats for the replay stand-in (spot; venues.okx_swap reuses it for swaps).

- WebSocket: the client sends {"op":"subscribe","args":[{"channel":..,"instId":..}]} (and
  "unsubscribe"), answered per argument with {"event":"subscribe","arg":{..},"connId":".."};
  market frames {"arg":{"channel":..,"instId":..},"data":[..]} are routed by channel:instId.
  OKX's keepalive is the text "ping", answered with "pong".
- Books: OKX sends a book snapshot only in reply to a subscribe. The capture holds the first
  one; when the client subscribes again (after a gap it unsubscribes and resubscribes), the
  stand-in answers with a fresh snapshot of the book at the current replay position, with
  its seqId and its CRC32 checksum.
- REST: the recorded instruments; /api/v5/public/time answers the current time; the trade
  and account calls go to a small order store (venues.okx.standin.order_store) whose marketable orders
  fill at the replayed book's best price.
- Private WebSocket (/ws/v5/private): the client logs in with {"op":"login","args":[{apiKey,
  passphrase,timestamp,sign}]}, answered {"event":"login","code":"0","msg":"","connId":..}
  (the signature is not checked), then subscribes to {"channel":"orders","instType":"ANY"}
  (or SPOT/SWAP, optionally with instId); every order change is pushed as
  {"arg":{"channel":"orders","instType":..,"uid":..},"data":[order]} to the matching
  subscriptions (topic "orders:<instType>[:<instId>]").
"""

from __future__ import annotations

import json
import logging
import time
import zlib
from decimal import Decimal
from typing import Any

from venues.okx.standin.order_store import UID, OkxOrderStore, instruments_of
from venues.replay.adapter import MockConnection, ReplayAdapter, RestAnswer, RestRequest
from venues.replay.capture import Capture, WsFrame

log = logging.getLogger(__name__)

__all__ = ["OkxBook", "OkxReplay", "okx_checksum"]

_BOOK_CHANNELS = ("books", "books5", "bbo-tbt", "books-l2-tbt", "books50-l2-tbt", "books-rpi")
_CONN_ID = "5e2b7c19"


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


def _private_topic(arg: dict[str, str]) -> str:
    """The topic of an `orders` subscription: "orders:ANY", "orders:SWAP:BTC-USDT-SWAP"..."""
    return ":".join(part for part in ("orders", arg.get("instType", "ANY"), arg.get("instId")) if part)


class OkxBook:
    """One instrument's book as OKX has it at the current replay position (levels as sent)."""

    def __init__(self) -> None:
        self.bids: dict[Decimal, list[str]] = {}
        self.asks: dict[Decimal, list[str]] = {}
        self.seq_id = -1
        self.ts = "0"

    def apply(self, action: str | None, data: dict[str, Any]) -> None:
        """Apply a snapshot or an update frame's data object."""
        if action == "snapshot":
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

    def __init__(self, capture: Capture) -> None:
        super().__init__(capture)
        self.books: dict[str, OkxBook] = {}
        instruments = {}
        for record in capture.rest_for("/api/v5/public/instruments"):
            instruments.update(instruments_of(record.body))
        self.orders = OkxOrderStore(instruments, self._best)
        self.orders.on_push = self._push

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
            if arg.get("channel") == "orders"
            else f"{arg.get('channel')}:{arg.get('instId')}"
        )
        event = {"event": op, "arg": arg, "connId": _CONN_ID}
        if op == "unsubscribe":
            connection.unsubscribe(topic)
            return [_dumps(event)]
        connection.subscribe(topic)
        replies = [_dumps(event)]
        book = self.books.get(topic)
        if book is not None and self.is_book(topic):  # the capture's own snapshot has been played
            replies.append(book.snapshot(arg))
        return replies

    def _best(self, inst_id: str) -> tuple[str, str] | None:
        """The best bid and ask of the replayed `books` channel, as OKX wrote them."""
        book = self.books.get(f"books:{inst_id}")
        if book is None or not book.bids or not book.asks:
            return None
        return book.bids[max(book.bids)][0], book.asks[min(book.asks)][0]

    def _push(self, inst_type: str, inst_id: str, data: dict[str, Any]) -> None:
        """An order change to every `orders` subscription it matches (any type, its type, its instrument)."""
        for arg in (
            {"channel": "orders", "instType": "ANY"},
            {"channel": "orders", "instType": inst_type},
            {"channel": "orders", "instType": inst_type, "instId": inst_id},
        ):
            self.publish(_private_topic(arg), _dumps({"arg": {**arg, "uid": UID}, "data": [data]}))

    def delivered(self, frame: WsFrame, topic: str) -> None:
        if not self.is_book(topic):
            return
        message = json.loads(frame.text)
        book = self.books.setdefault(topic, OkxBook())
        for data in message.get("data") or []:
            book.apply(message.get("action"), data)

    def rest(self, request: RestRequest) -> RestAnswer:
        if request.path.endswith("/api/v5/public/time"):
            return RestAnswer.json({"code": "0", "msg": "", "data": [{"ts": str(int(time.time() * 1000))}]})
        if request.path.endswith("/api/v5/trade/cancel-all-after"):
            return self._cancel_all_after(request)
        if request.path.endswith("/api/v5/asset/currencies"):
            return self._currencies()
        answer = self.orders.answer(request)
        return answer if answer is not None else super().rest(request)

    def _currencies(self) -> RestAnswer:
        """/asset/currencies (ccxt asks when it has credentials): the recorded instruments' coins."""
        coins: dict[str, None] = {}
        for record in self.capture.rest_for("/api/v5/public/instruments"):
            for instrument in json.loads(record.body).get("data", []):
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
        return RestAnswer.json({"code": "0", "msg": "", "data": data})

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
