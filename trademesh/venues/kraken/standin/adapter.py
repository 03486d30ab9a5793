"""Kraken's wire formats for the replay stand-in: v1 captures played to a v2 client.

The capture (KRAKEN.ws.*) is Kraken WebSocket **v1**, while ccxt.pro kraken speaks **v2**
(`wss://ws.kraken.com/v2`) for public data, so every captured frame is translated to the
frame the v2 API sends for the same event.

v1, as recorded:
- subscriptionStatus events map a channelID to (pair, channelName), e.g.
  {"channelID":464,"channelName":"book-1000","pair":"XBT/CHF",...};
- data frames are arrays `[channelID, payload..., channelName, pair]`:
  trade `[[price, volume, time, side b|s, ordertype l|m, misc], ...]`;
  ticker `{"a":[price, wholeLot, lot], "b":[...], "c":[price, lot], "v","p","l","h","o":[today, 24h],...}`;
  book snapshot `{"as":[[price, qty, time]...], "bs":[...]}`, book updates `{"a":[...]}` and/or
  `{"b":[...], "c":"<crc32>"}` (one or two payload objects). A qty of 0 deletes a level; levels
  pushed beyond the subscribed depth fall out of the book without a message.

v2, as sent to the client (numbers are JSON numbers written with the capture's own digits):
- subscribe `{"method":"subscribe","params":{"channel":"book","symbol":["BTC/CHF"],"depth":1000},
  "req_id":n}` is acknowledged per symbol with `{"method":"subscribe","result":{...},"success":true,
  "req_id":n}`; v2 names Bitcoin BTC and Dogecoin DOGE where v1 says XBT and XDG;
- trade `{"channel":"trade","type":"update","data":[{symbol, side, price, qty, ord_type, trade_id,
  timestamp}]}`: v1 has no trade ids, so trade_id is a per-pair sequence 1, 2, 3... in capture order;
- ticker `{"channel":"ticker","type":"snapshot"|"update","data":[{symbol, bid, bid_qty, ask, ask_qty,
  last, volume, vwap, low, high, change, change_pct}]}` (24 h values: the v1 arrays' second item);
- book `{"channel":"book","type":"snapshot"|"update","data":[{symbol, bids, asks, checksum,
  timestamp}]}` with levels `{"price":p,"qty":q}`. The checksum is v2's: CRC32 of the 10 best asks
  (ascending) then the 10 best bids (descending), each level as price then qty formatted to the
  pair's decimals (AssetPairs pair_decimals / lot_decimals), the point and leading zeros removed.
  It is computed from the book the stand-in keeps, which follows the replay (`delivered`), so a
  client re-subscribing after a checksum failure gets a snapshot of the book as it is now.

Sessions from other recorders (docs/replay.md, "Sessions from other recorders"): v1 event
objects (heartbeat, systemStatus, subscriptionStatus) are control frames; data frames of a
channelID no subscriptionStatus names cannot be routed and are tallied as unrecognized; a
book recorded at any depth is served (the v2 client's depth is the snapshot's); with no
recorded AssetPairs, the pairs the frames stream are described from them
(trademesh.venues.kraken.standin.synthesized), and their decimals drive the checksums.

REST /0/public/OHLC pages through the candle history (trademesh.venues.kraken.standin.history);
/0/public/Trades and /0/public/Ticker serve the trade history and every pair's ticker
(trademesh.venues.kraken.standin.trades).
"""

from __future__ import annotations

import binascii
import contextlib
import functools
import heapq
import json
import re
from bisect import bisect_left, insort
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from trademesh.venues.kraken.standin.history import KrakenOhlc
from trademesh.venues.kraken.standin.order_store import KrakenOrderStore, pairs_of
from trademesh.venues.kraken.standin.synthesized import asset_pair
from trademesh.venues.kraken.standin.trades import KrakenTrades
from trademesh.venues.replay.adapter import MockConnection, ReplayAdapter, RestAnswer, RestRequest
from trademesh.venues.replay.capture import Capture, WsFrame

__all__ = ["KrakenBook", "KrakenReplay", "checksum_text", "v2_symbol"]

# v1 (and REST wsname) asset names that WebSocket v2 spells differently.
_V2_ASSETS = {"XBT": "BTC", "XDG": "DOGE"}
# What the history-ratelimit and ban faults refuse.
_HISTORY = ("/0/public/OHLC", "/0/public/Trades", "/0/public/Ticker")
_CHANNELS = {"trade": "trade", "ticker": "ticker", "book": "book", "ohlc": "ohlc"}
_DEFAULT_DEPTH = 10
# What a `slow` fault delays: Kraken's order entry calls.
_ORDER_ENTRY = (
    "AddOrder",
    "AddOrderBatch",
    "EditOrder",
    "AmendOrder",
    "CancelOrder",
    "CancelOrderBatch",
    "CancelAll",
)
_EXECUTIONS = "executions"  # the private channel (ws-auth.kraken.com/v2), one topic for the account
_CHECKSUM_LEVELS = 10
_ASSET_PAIRS = "/0/public/AssetPairs"


def v2_symbol(pair: str) -> str:
    """The v2 name of a v1 pair: "XBT/CHF" -> "BTC/CHF"."""
    return "/".join(_V2_ASSETS.get(asset, asset) for asset in pair.split("/"))


def _iso(seconds: str) -> str:
    """v1's "1618678142.557535" as v2's RFC 3339 "2021-04-17T16:49:02.557535Z"."""
    whole, _, fraction = seconds.partition(".")
    moment = datetime.fromtimestamp(int(whole), UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + "." + (fraction + "000000")[:6] + "Z"


def _number(text: str) -> str:
    """A decimal string as a JSON number literal with the same digits ("0.12345000" stays so)."""
    if not re.fullmatch(r"-?\d+(\.\d+)?", text):
        raise ValueError(f"not a decimal number: {text!r}")
    return text


@functools.lru_cache(maxsize=1 << 16)
def _format(text: str, decimals: int | None) -> str:
    """A price or qty as the checksum wants it: to the pair's decimals, no point, no leading zeros."""
    if decimals is not None:
        text = str(Decimal(text).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_EVEN))
    return text.replace(".", "").lstrip("0")


def checksum_text(
    asks: list[tuple[str, str]], bids: list[tuple[str, str]], decimals: tuple[int, int] | None
) -> int:
    """Kraken's book checksum over the best levels given (asks ascending, bids descending)."""
    price_decimals, qty_decimals = decimals if decimals is not None else (None, None)
    payload = "".join(
        _format(price, price_decimals) + _format(qty, qty_decimals)
        for price, qty in [*asks[:_CHECKSUM_LEVELS], *bids[:_CHECKSUM_LEVELS]]
    )
    return binascii.crc32(payload.encode()) & 0xFFFFFFFF


class KrakenBook:
    """A pair's book as the exchange has it at the current replay position (capture text kept)."""

    def __init__(self, depth: int, decimals: tuple[int, int] | None) -> None:
        self.depth = depth
        self.decimals = decimals
        self.bids: dict[Decimal, tuple[str, str]] = {}
        self.asks: dict[Decimal, tuple[str, str]] = {}
        # each side's prices kept sorted, ascending (asks best first, bids best last)
        self._keys: dict[str, list[Decimal]] = {"bids": [], "asks": []}

    def reset(self) -> None:
        self.bids.clear()
        self.asks.clear()
        self._keys = {"bids": [], "asks": []}

    def apply(self, side: str, levels: list[list[str]]) -> None:
        book = self.bids if side == "bids" else self.asks
        keys = self._keys[side]
        for level in levels:
            price, qty = level[0], level[1]
            key = Decimal(price)
            if Decimal(qty) == 0:
                if book.pop(key, None) is not None:
                    del keys[bisect_left(keys, key)]
            else:
                if key not in book:
                    insort(keys, key)
                book[key] = (price, qty)
        extra = len(keys) - self.depth
        if extra > 0:  # out of scope: Kraken sends no delete
            start = 0 if side == "bids" else self.depth  # the worst: the lowest bids, the highest asks
            dropped = keys[start : start + extra]
            del keys[start : start + extra]
            for gone in dropped:
                del book[gone]

    def _best_keys(self, side: str, count: int) -> list[Decimal]:
        """The prices of the `count` best levels of a side, best first."""
        keys = self._keys[side]
        if side == "asks":
            return keys[:count]
        return keys[max(0, len(keys) - count) :][::-1]

    def _sorted(self, side: str) -> list[tuple[str, str]]:
        book = self.bids if side == "bids" else self.asks
        return [book[p] for p in self._best_keys(side, len(book))]

    def _best(self, side: str, count: int) -> list[tuple[str, str]]:
        """The `count` best levels of a side, best first."""
        book = self.bids if side == "bids" else self.asks
        return [book[p] for p in self._best_keys(side, count)]

    def checksum(self) -> int:
        return checksum_text(
            self._best("asks", _CHECKSUM_LEVELS), self._best("bids", _CHECKSUM_LEVELS), self.decimals
        )

    def best_after(self, side: str, levels: list[list[str]], count: int) -> list[tuple[str, str]]:
        """The `count` best levels of a side as they would be once `levels` were applied (without
        applying them): the book's best `count` + len(levels) levels, less those the update sets
        or deletes, with the ones it sets (the last word on a price counts, as in apply)."""
        book = self.bids if side == "bids" else self.asks
        pick = heapq.nlargest if side == "bids" else heapq.nsmallest
        changed = {Decimal(level[0]): (level[0], level[1]) for level in levels}
        kept = [price for price in self._best_keys(side, count + len(changed)) if price not in changed]
        live = [price for price, (_, qty) in changed.items() if Decimal(qty) != 0]
        return [changed[p] if p in changed else book[p] for p in pick(count, kept + live)]

    def checksum_after(self, asks: list[list[str]], bids: list[list[str]]) -> int:
        """The checksum the book would have once an update's asks and bids were applied (levels
        trimmed past the depth are never among the best min(10, depth))."""
        count = min(_CHECKSUM_LEVELS, self.depth)
        return checksum_text(
            self.best_after("asks", asks, count), self.best_after("bids", bids, count), self.decimals
        )

    def snapshot(self, symbol: str, limit: int) -> str:
        return _book_frame(
            "snapshot",
            symbol,
            self._sorted("bids")[:limit],
            self._sorted("asks")[:limit],
            self.checksum(),
            None,
        )


def _levels(levels: list[tuple[str, str]]) -> str:
    return "[" + ",".join(f'{{"price":{_number(p)},"qty":{_number(q)}}}' for p, q in levels) + "]"


def _book_frame(
    kind: str,
    symbol: str,
    bids: list[tuple[str, str]],
    asks: list[tuple[str, str]],
    checksum: int,
    timestamp: str | None,
) -> str:
    stamp = f',"timestamp":"{timestamp}"' if timestamp is not None else ""
    return (
        f'{{"channel":"book","type":"{kind}","data":[{{"symbol":{json.dumps(symbol)},'
        f'"bids":{_levels(bids)},"asks":{_levels(asks)},"checksum":{checksum}{stamp}}}]}}'
    )


@dataclass(frozen=True)
class _Route:
    pair: str  # v1 name, e.g. "XBT/CHF"
    channel: str  # "trade", "ticker" or "book"


class KrakenReplay(ReplayAdapter):
    api = "Kraken's spot API"

    def __init__(self, capture: Capture) -> None:
        super().__init__(capture)
        self.routes: dict[tuple[int, int], _Route] = {}  # (connection, channelID) -> route
        self.depth = _DEFAULT_DEPTH
        for frame in capture.received:
            if '"subscriptionStatus"' in frame.text:
                with contextlib.suppress(ValueError, KeyError, TypeError):  # unreadable: tallied later
                    self._route(frame)
        self.pairs = list(dict.fromkeys(route.pair for route in self.routes.values()))
        self.by_v2 = {v2_symbol(pair): pair for pair in self.pairs}
        decimals = self._decimals()
        self.books = {pair: KrakenBook(self.depth, decimals.get(pair)) for pair in self.pairs}
        self.trade_ids: dict[str, int] = {}  # pair -> last synthesized trade_id
        self.sent_first: set[tuple[int, str]] = set()  # (id(connection), topic) given a snapshot-type frame
        pairs = {}
        for body in self._asset_pair_bodies():
            pairs.update(pairs_of(body))
        self.orders = KrakenOrderStore(pairs, self._best)
        self.orders.on_executions = self._executions
        self._sequence = 0  # the executions channel's message counter
        self.ohlc = KrakenOhlc(self, self._asset_pair_bodies())
        self.trades = KrakenTrades(self, self.ohlc, self._best_levels)

    def _route(self, frame: WsFrame) -> None:
        status = json.loads(frame.text)
        if status.get("status") != "subscribed" or "channelID" not in status:
            return
        name = str(status["subscription"]["name"])
        if name == "book":
            self.depth = int(status["subscription"].get("depth", _DEFAULT_DEPTH))
        self.routes[(frame.connection, int(status["channelID"]))] = _Route(str(status["pair"]), name)

    def _decimals(self) -> dict[str, tuple[int, int]]:
        """wsname -> (pair_decimals, lot_decimals), from the (recorded or synthesized) AssetPairs."""
        found: dict[str, tuple[int, int]] = {}
        for body in self._asset_pair_bodies():
            for info in json.loads(body).get("result", {}).values():
                if "wsname" in info:
                    found[info["wsname"]] = (int(info["pair_decimals"]), int(info["lot_decimals"]))
        return found

    def _asset_pair_bodies(self) -> list[str]:
        """The recorded AssetPairs answers; else one describing the pairs the frames stream."""
        recorded = [record.body for record in self.capture.rest_for(_ASSET_PAIRS)]
        return recorded or [json.dumps(self._synthesized_pairs())]

    def _synthesized_pairs(self) -> dict[str, Any]:
        seen = self.markets_seen().markets
        described = [asset_pair(pair, seen.get(pair)) for pair in self.pairs]
        return {"error": [], "result": dict(entry for entry in described if entry is not None)}

    def synthesize(self, request: RestRequest) -> RestAnswer | None:
        if not request.path.endswith(_ASSET_PAIRS):
            return None
        body = self._synthesized_pairs()
        self.tally.synthesize(
            "kraken AssetPairs", f"{len(body['result'])} pairs: {', '.join(body['result'])}"
        )
        return RestAnswer.json(body)

    def is_control(self, frame: WsFrame) -> bool:
        return frame.text.startswith("{") and "event" in json.loads(frame.text)

    def levels(self, frame: WsFrame, topic: str) -> Iterable[tuple[object, object]]:
        parsed = self._parsed(frame)
        if parsed is None:
            return ()
        route, message = parsed
        if route.channel == "trade":
            return [(trade[0], trade[1]) for trade in message[1]]
        if route.channel == "book":
            payloads = [p for p in message[1:-2] if isinstance(p, dict)]
            return [
                (lv[0], lv[1]) for p in payloads for key in ("as", "bs", "a", "b") for lv in p.get(key, [])
            ]
        return ()

    # ---- routing

    def _parsed(self, frame: WsFrame) -> tuple[_Route, list[Any]] | None:
        if not frame.text.startswith("["):
            return None
        message = json.loads(frame.text)
        route = self.routes.get((frame.connection, int(message[0])))
        return (route, message) if route is not None else None

    def topic(self, frame: WsFrame) -> str | None:
        parsed = self._parsed(frame)
        return f"{parsed[0].channel}:{parsed[0].pair}" if parsed is not None else None

    def symbol_of(self, topic: str) -> str:
        return topic.split(":", 1)[1]

    def native_symbols(self) -> list[str]:
        return list(self.pairs)  # from the subscription answers: pairs that never traded count too

    def is_book(self, topic: str) -> bool:
        return topic.startswith("book:")

    # ---- the client's side

    def on_connect(self, connection: MockConnection) -> list[str]:
        return [
            '{"channel":"status","type":"update","data":[{"version":"2.0.0","system":"online",'
            '"api_version":"v2","connection_id":1}]}'
        ]

    def on_client_message(self, connection: MockConnection, text: str) -> list[str]:
        request = json.loads(text)
        method = request.get("method")
        if method == "ping":
            return [json.dumps({"method": "pong", "req_id": request.get("req_id")})]
        if method not in ("subscribe", "unsubscribe"):
            return [json.dumps({"error": f"unsupported method {method}", "success": False})]
        params = request.get("params") or {}
        if params.get("channel") == _EXECUTIONS:
            return self._on_executions(connection, method, request)
        channel = _CHANNELS.get(str(params.get("channel")))
        replies: list[str] = []
        for symbol in params.get("symbol") or []:
            pair = self.by_v2.get(symbol, symbol)
            topic = f"{channel}:{pair}"
            result = {"channel": params.get("channel"), "symbol": symbol}
            ack = {"method": method, "result": result, "success": True, "req_id": request.get("req_id")}
            replies.append(json.dumps(ack))  # v2 acknowledges each symbol on its own
            if method == "unsubscribe":
                connection.unsubscribe(topic)
            else:
                connection.subscribe(topic)
                replies += self._snapshot_now(connection, topic, pair, params)
        return replies

    def _snapshot_now(
        self, connection: MockConnection, topic: str, pair: str, params: dict[str, Any]
    ) -> list[str]:
        """A book subscription after the capture's own snapshot has passed gets the book as it is now."""
        book = self.books.get(pair)
        if not self.is_book(topic) or book is None or not (book.bids or book.asks):
            return []
        self.sent_first.add((id(connection), topic))
        return [book.snapshot(v2_symbol(pair), int(params.get("depth") or _DEFAULT_DEPTH))]

    # ---- the capture's frames, in v2

    def render(self, frame: WsFrame, topic: str, connection: MockConnection) -> str:
        parsed = self._parsed(frame)
        assert parsed is not None
        route, message = parsed
        first = (id(connection), topic) not in self.sent_first
        self.sent_first.add((id(connection), topic))
        symbol = v2_symbol(route.pair)
        if route.channel == "trade":
            return self._trades(symbol, message[1])
        if route.channel == "ticker":
            return _ticker("snapshot" if first else "update", symbol, message[1])
        return self._book(route.pair, symbol, message[1:-2])

    def _trades(self, symbol: str, trades: list[list[str]]) -> str:
        # trade ids are taken in delivered(); the ones this frame gets follow the last delivered
        next_id = self.trade_ids.get(self.by_v2[symbol], 0)
        items = []
        for offset, (price, volume, time, side, kind, *_) in enumerate(trades, start=1):
            items.append(
                f'{{"symbol":{json.dumps(symbol)},"side":"{"buy" if side == "b" else "sell"}",'
                f'"price":{_number(price)},"qty":{_number(volume)},'
                f'"ord_type":"{"limit" if kind == "l" else "market"}","trade_id":{next_id + offset},'
                f'"timestamp":"{_iso(time)}"}}'
            )
        return '{"channel":"trade","type":"update","data":[' + ",".join(items) + "]}"

    def _book(self, pair: str, symbol: str, payloads: list[dict[str, Any]]) -> str:
        """The frame v2 would send; the checksum is the book's once this frame is applied."""
        book = self.books[pair]
        merged = {k: v for payload in payloads for k, v in payload.items()}
        if "as" in merged or "bs" in merged:
            staged = KrakenBook(book.depth, book.decimals)
            staged.apply("asks", merged.get("as", []))
            staged.apply("bids", merged.get("bs", []))
            return staged.snapshot(symbol, book.depth)
        checksum = book.checksum_after(merged.get("a", []), merged.get("b", []))
        stamps = [level[2] for side in ("a", "b") for level in merged.get(side, [])]
        return _book_frame(
            "update",
            symbol,
            [(level[0], level[1]) for level in merged.get("b", [])],
            [(level[0], level[1]) for level in merged.get("a", [])],
            checksum,
            _iso(max(stamps, key=Decimal)) if stamps else None,
        )

    def delivered(self, frame: WsFrame, topic: str) -> None:
        parsed = self._parsed(frame)
        if parsed is None:
            return
        route, message = parsed
        if route.channel == "trade":
            self.trade_ids[route.pair] = self.trade_ids.get(route.pair, 0) + len(message[1])
        elif route.channel == "book":
            book = self.books[route.pair]
            for payload in message[1:-2]:
                if "as" in payload or "bs" in payload:
                    book.reset()
                for key, side in (("as", "asks"), ("a", "asks"), ("bs", "bids"), ("b", "bids")):
                    if key in payload:
                        book.apply(side, payload[key])

    # ---- the account (trademesh/venues/kraken/standin/order_store.py) and its executions channel

    def _on_executions(self, connection: MockConnection, method: str, request: dict[str, Any]) -> list[str]:
        """Subscribe (with a token; the stand-in does not check it) or unsubscribe the executions channel."""
        params = request.get("params") or {}
        result = {"channel": _EXECUTIONS, "snapshot": bool(params.get("snap_orders", True))}
        ack = {"method": method, "result": result, "success": True, "req_id": request.get("req_id")}
        if method == "unsubscribe":
            connection.unsubscribe(_EXECUTIONS)
            return [json.dumps(ack)]
        connection.subscribe(_EXECUTIONS)
        replies = [json.dumps(ack)]
        snapshot = self.orders.snapshot() if params.get("snap_orders", True) else []
        if snapshot:
            replies.append(self._execution_message("snapshot", snapshot))
        return replies

    def _execution_message(self, kind: str, items: list[dict[str, Any]]) -> str:
        self._sequence += 1
        return json.dumps({"channel": _EXECUTIONS, "type": kind, "data": items, "sequence": self._sequence})

    def _executions(self, items: list[dict[str, Any]]) -> None:
        self.publish(_EXECUTIONS, self._execution_message("update", items))

    def _best(self, pair: str) -> tuple[str, str] | None:
        """The best bid and ask of a pair's replayed book, as the capture wrote them."""
        book = self.books.get(pair)
        if book is None or not book.bids or not book.asks:
            return None
        return book.bids[max(book.bids)][0], book.asks[min(book.asks)][0]

    def delays_answer(self, request: RestRequest) -> bool:
        """Only order entry: every private Kraken call is a POST (balances, token, queries too)."""
        return request.method == "POST" and request.path.rsplit("/", 1)[-1] in _ORDER_ENTRY

    def _best_levels(self, pair: str) -> tuple[str, str, str, str] | None:
        """The replayed book's best bid, its size, best ask and its size (None: a side empty)."""
        book = self.books.get(pair)
        if book is None or not book.bids or not book.asks:
            return None
        bid, ask = book.bids[max(book.bids)], book.asks[min(book.asks)]
        return bid[0], bid[1], ask[0], ask[1]

    def is_history(self, request: RestRequest) -> bool:
        return request.method == "GET" and request.path.endswith(_HISTORY)

    def rate_limited(self, status: int) -> RestAnswer:
        """Kraken's answer over a rate limit (ccxt's DDoSProtection)."""
        return RestAnswer.json({"error": ["EGeneral:Too many requests"]}, status)

    def rest(self, request: RestRequest) -> RestAnswer:
        if request.method == "GET" and request.path.endswith("/0/public/Trades"):
            return self.trades.trades(request.params())
        if request.method == "GET" and request.path.endswith("/0/public/Ticker"):
            return self.trades.tickers(request.params())
        if request.path.endswith("/0/public/Assets"):
            assets = self._assets()
            self.tally.synthesize("kraken Assets", f"the AssetPairs' bases and quotes: {', '.join(assets)}")
            return RestAnswer.json({"error": [], "result": assets})
        if request.method == "GET" and request.path.endswith("/0/public/OHLC"):
            return self.ohlc.answer(request.params())
        answer = self.orders.answer(request)
        return answer if answer is not None else super().rest(request)

    def _assets(self) -> dict[str, dict[str, Any]]:
        """Assets as /0/public/Assets lists them, read off the recorded AssetPairs (not recorded itself)."""
        assets: dict[str, dict[str, Any]] = {}
        for body in self._asset_pair_bodies():
            for info in json.loads(body).get("result", {}).values():
                names = str(info.get("wsname", "")).split("/")
                if len(names) != 2:
                    continue
                for asset, altname in zip((info["base"], info["quote"]), names, strict=True):
                    assets.setdefault(
                        asset,
                        {
                            "aclass": "currency",
                            "altname": altname,
                            "decimals": 10,
                            "display_decimals": 5,
                            "status": "enabled",
                        },
                    )
        return assets

    def malformed(self) -> str:
        return '{"channel":"book","type":"update","data":[{"symbol"'


def _ticker(kind: str, symbol: str, v1: dict[str, Any]) -> str:
    last, open_24h = v1["c"][0], v1["o"][1]
    change = Decimal(last) - Decimal(open_24h)
    change_pct = (
        (change / Decimal(open_24h) * 100).quantize(Decimal("0.01")) if Decimal(open_24h) else Decimal(0)
    )
    fields = {
        "bid": v1["b"][0],
        "bid_qty": v1["b"][2],
        "ask": v1["a"][0],
        "ask_qty": v1["a"][2],
        "last": last,
        "volume": v1["v"][1],
        "vwap": v1["p"][1],
        "low": v1["l"][1],
        "high": v1["h"][1],
        "change": format(change, "f"),
        "change_pct": format(change_pct, "f"),
    }
    body = ",".join(f'"{name}":{_number(value)}' for name, value in fields.items())
    return f'{{"channel":"ticker","type":"{kind}","data":[{{"symbol":{json.dumps(symbol)},{body}}}]}}'
