"""Binance spot's public frames taken from the wire (trademesh/venues/live/wire.py): depthUpdate, bookTicker,
aggTrade/trade and kline become our events before ccxt's handler would parse them.

The book follows Binance's rules for a local order book (its WebSocket streams' documentation,
"How to manage a local order book correctly"), as ccxt's own handler does: diffs are buffered
until the REST snapshot (lastUpdateId L) that ccxt fetches when the depth subscription is
acknowledged; diffs with u <= L are dropped; the first applied has U <= L + 1 <= u, each next
one U = the previous u + 1. Anything else is a gap: the book waits for a new snapshot and
ccxt's book watch is failed with ChecksumError, exactly as ccxt's handler fails it (its book
and subscription dropped), so StreamWatcher counts a resync and resubscribes, and the new
snapshot goes out marked as a resync.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ccxt

from trademesh.core.domain.model import Side
from trademesh.venues.live.wire import WireBook, WireStreams, now_ns

__all__ = ["BUFFERED_DIFFS", "BinanceWire", "DepthSync"]

# Diffs kept while a book waits for its snapshot (the oldest leave first: they are the ones
# a snapshot fetched later makes useless).
BUFFERED_DIFFS = 10_000

# What StreamWatcher says when ccxt's book watch fails with ChecksumError (a resync's reason).
_RESYNC_REASON = "venue book out of sync (ChecksumError): rebuilt from a new snapshot"


def _ns(ms: Any) -> int:
    return int(ms) * 1_000_000 if ms is not None else now_ns()


class DepthSync:
    """One symbol's book from its REST snapshot and its depthUpdate diffs (see the module's docstring)."""

    def __init__(self, book: WireBook, fail: Callable[[Any, str], None]) -> None:
        self.book = book
        self._fail = fail  # (ccxt client, reason): fail ccxt's book watch on that connection
        self.nonce: int | None = None  # the last update id applied; None: waiting for a snapshot
        self.applied = False  # a diff was applied since the snapshot (then U must be nonce + 1)
        self.buffer: list[dict[str, Any]] = []
        self.reason = ""  # the next snapshot's resync reason

    def resync(self, reason: str) -> None:
        self.reason = reason
        self._wait()

    def restart(self) -> None:
        self._wait()

    def _wait(self) -> None:
        self.nonce, self.applied, self.buffer = None, False, []

    def update(self, data: dict[str, Any], client: Any) -> bool:
        """A depthUpdate diff; True when it changed the published book (a delta went out)."""
        nonce = self.nonce
        if nonce is None:
            self.buffer.append(data)
            if len(self.buffer) > BUFFERED_DIFFS:
                del self.buffer[0]
            return False
        first, last = data["U"], data["u"]
        if last <= nonce:
            return False
        if first - 1 == nonce or (not self.applied and first - 1 <= nonce):
            bids, asks = self.book.apply(data["b"], data["a"])
            self.nonce, self.applied = last, True
            return self.book.publish_delta(_ns(data.get("E")), bids, asks)
        self._wait()
        self.reason = _RESYNC_REASON
        self._fail(client, f"update ids {first}-{last} do not follow {nonce}")
        return False

    def snapshot(self, book: Any, depth: int | None) -> None:
        """ccxt's REST snapshot: the book starts there, with the buffered diffs that follow it."""
        self.book.reset(book, depth)
        nonce = int(book.get("nonce") or 0)
        applied_at = None
        for data in self.buffer:
            first, last = data["U"], data["u"]
            if last > nonce and first - 1 <= nonce:
                self.book.apply(data["b"], data["a"])
                nonce, applied_at = last, data.get("E")
        self.nonce, self.applied, self.buffer = nonce, applied_at is not None, []
        self.book.publish_snapshot(_ns(applied_at), self.reason)
        self.reason = ""


class BinanceWire(WireStreams):
    """Binance spot's public frames for the streams the venue opened (raw or combined-stream frames)."""

    def book_sync(self, book: WireBook) -> DepthSync:
        return DepthSync(book, lambda client, reason: self._fail_book(client, book.symbol, reason))

    def handle(self, client: Any, message: Any) -> bool | None:
        if not isinstance(message, dict):
            return None
        data = message.get("data", message) if "stream" in message else message
        if not isinstance(data, dict):
            return None
        native: str = data.get("s") or ""
        event = data.get("e")
        if event == "depthUpdate":
            sync = self.books.get(native)
            return None if sync is None else sync.update(data, client)
        if event is None and "u" in data and "B" in data:  # bookTicker: no event type
            ticker = self.tickers.get(native)
            if ticker is None:
                return None
            return ticker.ticker(_ns(data.get("E")), data["b"], data["B"], data["a"], data["A"])
        if event == "aggTrade" or event == "trade":
            trades = self.trades.get(native)
            if trades is None:
                return None
            trade_id = str(data["a"] if event == "aggTrade" else data["t"])
            side = Side.SELL if data.get("m") else Side.BUY  # the buyer was the maker: a sell took it
            return trades.trade(_ns(data.get("T")), trade_id, data["p"], data["q"], side)
        if event == "kline":
            k = data["k"]
            candles = self.candles.get((native, k["i"]))
            if candles is None:
                return None
            return candles.update(int(k["t"]), k["o"], k["h"], k["l"], k["c"], k["v"])
        return None

    def book_closed(self, symbol: str) -> None:
        """ccxt keeps a closed stream's subscription (and its stale book): dropped, so that the
        stream's next watch subscribes again and ccxt fetches the snapshot it starts from."""
        self._drop_ccxt_book(symbol)
        for client in list(self.exchange.clients.values()):
            client.subscriptions.pop("orderbook::" + symbol, None)

    def _drop_ccxt_book(self, symbol: str) -> None:
        books = self.exchange.orderbooks
        if books is not None and symbol in books:
            del books[symbol]

    def _fail_book(self, client: Any, symbol: str, reason: str) -> None:
        """As ccxt's handle_order_book on a sequence break: its book and subscription dropped, the
        watch failed (a resubscription fetches a new snapshot)."""
        message_hash = "orderbook::" + symbol
        self._drop_ccxt_book(symbol)
        if message_hash in client.subscriptions:
            del client.subscriptions[message_hash]
        client.reject(ccxt.ChecksumError(f"binance {symbol}: {reason}"), message_hash)
