"""Turn ccxt's unified caches into exactly-once trademesh events.

ccxt keeps the latest state (a ring of recent trades, the whole order book, the
latest ticker, recent candles) and hands back the same objects again and again.
Each normalizer remembers what it has already emitted and emits only what is
new: trades after the last one sent (a cursor by object identity; if it fell
out of the ring, a gap notice), book changes as deltas against the last book
sent (a snapshot first and after every resync), tickers and candles when their
object changed.

Numbers: ccxt parses JSON numbers to floats; a float's shortest repr reads back
as the decimal the venue sent (venues send at most 15 significant digits), so
prices and sizes go out as exact plain decimal strings.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from core.book import Level
from core.decimals import format_decimal
from core.model import Candle, Channel, Side, Timeframe
from trademesh.marketdata.v1 import marketdata_pb2 as md
from venues.runtime.feed import MarketFeed

__all__ = [
    "BookNormalizer",
    "CandleNormalizer",
    "TickerNormalizer",
    "TradeNormalizer",
    "decimal_or_zero",
    "decimal_text",
]


def decimal_text(value: Any) -> str:
    """A ccxt number (float, int or str) as a plain decimal string; "" when absent."""
    if value is None:
        return ""
    text = repr(value) if isinstance(value, float) else str(value)
    return format_decimal(Decimal(text))


def decimal_or_zero(value: Any) -> Decimal:
    text = decimal_text(value)
    return Decimal(text) if text else Decimal(0)


def _ns(ms: Any) -> int:
    return int(ms) * 1_000_000 if ms is not None else time.time_ns()


class TradeNormalizer:
    def __init__(self, feed: MarketFeed, symbol: str) -> None:
        self.feed = feed
        self.symbol = symbol
        self._last: object | None = None
        self.emitted = 0

    def poll(self, exchange: Any) -> bool:
        ring = exchange.trades.get(self.symbol) if exchange.trades else None
        if not ring or ring[-1] is self._last:
            return False
        for trade in self._new(ring):
            self.feed.trade(
                self.symbol,
                _ns(trade.get("timestamp")),
                str(trade.get("id") or ""),
                decimal_text(trade["price"]),
                decimal_text(trade["amount"]),
                Side.SELL if trade.get("side") == "sell" else Side.BUY,
            )
            self.emitted += 1
        self._last = ring[-1]
        return True

    def _new(self, ring: Any) -> list[Any]:
        if self._last is None:
            return list(ring)
        count = len(ring)
        for back, trade in enumerate(reversed(ring)):
            if trade is self._last:
                return [ring[i] for i in range(count - back, count)]
        maxlen = ring._deque.maxlen
        if maxlen is not None and count >= maxlen:
            self.feed.gap(
                self.symbol,
                Channel.TRADES,
                f"more than {maxlen} trades arrived between two reads: some were dropped",
            )
        return list(ring)


class BookNormalizer:
    """Emits the venue book as a snapshot, then as deltas against what was last emitted.

    The book is diffed when ccxt says it changed (it resolved the book for its watchers) or
    when its fingerprint (nonce, timestamp, depth, best levels) moved.
    """

    def __init__(self, feed: MarketFeed, symbol: str, resolved: set[int] | None = None) -> None:
        self.feed = feed
        self.symbol = symbol
        # ids of the structures ccxt handed its watchers since the last poll round (see exchange.Hooks)
        self._resolved = resolved if resolved is not None else set()
        self._bids: dict[float, Any] = {}
        self._asks: dict[float, Any] = {}
        self._fingerprint: tuple[Any, ...] | None = None
        self._stale: tuple[Any, ...] | None = None
        self._need_snapshot = True
        self._resync_reason = ""

    def resync(self, reason: str) -> None:
        """The next book is emitted as a snapshot that tells subscribers it was rebuilt."""
        self._resync_reason = reason
        self.restart()

    def restart(self) -> None:
        """After a reconnect: the next book is a plain snapshot (a gap notice was sent already).

        Until ccxt's book changes, what it holds is the stale book: nothing is emitted from it.
        """
        self._need_snapshot = True
        if self._fingerprint is not None:
            self._stale = self._fingerprint
        self._fingerprint = None

    def poll(self, exchange: Any) -> bool:
        book = exchange.orderbooks.get(self.symbol) if exchange.orderbooks else None
        if book is None:
            return False
        bids, asks = book["bids"], book["asks"]
        if not bids and not asks:
            return False
        fingerprint = (
            book.get("nonce"),
            book.get("timestamp"),
            len(bids),
            len(asks),
            tuple(bids[0]) if bids else None,  # copies: ccxt mutates its level lists
            tuple(asks[0]) if asks else None,
        )
        if fingerprint == self._stale or (
            fingerprint == self._fingerprint and id(book) not in self._resolved
        ):
            return False
        self._fingerprint, self._stale = fingerprint, None
        new_bids, new_asks = {p: a for p, a, *_ in bids}, {p: a for p, a, *_ in asks}
        ts = _ns(book.get("timestamp"))
        if self._need_snapshot:
            self.feed.book_snapshot(
                self.symbol, ts, _levels(new_bids), _levels(new_asks), self._resync_reason
            )
            self._need_snapshot, self._resync_reason = False, ""
        else:
            bid_changes, ask_changes = _diff(self._bids, new_bids), _diff(self._asks, new_asks)
            if not bid_changes and not ask_changes:
                self._bids, self._asks = new_bids, new_asks
                return False
            self.feed.book_delta(self.symbol, ts, bid_changes, ask_changes)
        self._bids, self._asks = new_bids, new_asks
        return True


def _levels(side: Mapping[float, Any]) -> list[Level]:
    return [(decimal_text(price), decimal_text(size)) for price, size in side.items()]


def _diff(old: Mapping[float, Any], new: Mapping[float, Any]) -> list[Level]:
    changes = [(decimal_text(p), decimal_text(s)) for p, s in new.items() if old.get(p) != s]
    changes.extend((decimal_text(p), "0") for p in old if p not in new)
    return changes


class TickerNormalizer:
    def __init__(self, feed: MarketFeed, symbol: str, cache: str) -> None:
        self.feed = feed
        self.symbol = symbol
        self.cache = cache  # "tickers" or "bidsasks"
        self._last: object | None = None

    def poll(self, exchange: Any) -> bool:
        tickers = getattr(exchange, self.cache, None)
        ticker = tickers.get(self.symbol) if tickers else None
        if ticker is None or ticker is self._last:
            return False
        self._last = ticker
        self.feed.ticker(
            self.symbol,
            _ns(ticker.get("timestamp")),
            md.Ticker(
                best_bid=decimal_text(ticker.get("bid")),
                best_bid_size=decimal_text(ticker.get("bidVolume")),
                best_ask=decimal_text(ticker.get("ask")),
                best_ask_size=decimal_text(ticker.get("askVolume")),
                last_price=decimal_text(ticker.get("last")),
            ),
        )
        return True


class CandleNormalizer:
    """Emits a candle whenever ccxt's row for it changes; earlier rows close when a newer one opens.

    ccxt updates a candle's row in place (and a venue may send the closing update of a
    candle after the next one opened), so the last few rows are compared by value.
    """

    _WATCHED_ROWS = 3

    def __init__(self, feed: MarketFeed, symbol: str, timeframe: Timeframe, ccxt_timeframe: str) -> None:
        self.feed = feed
        self.symbol = symbol
        self.timeframe = timeframe
        self.ccxt_timeframe = ccxt_timeframe
        self._seen: dict[int, tuple[Any, ...]] = {}  # open time -> values last emitted

    def poll(self, exchange: Any) -> bool:
        rows = (exchange.ohlcvs.get(self.symbol) or {}).get(self.ccxt_timeframe) if exchange.ohlcvs else None
        if not rows:
            return False
        latest_open = rows[-1][0]
        emitted = False
        for row in rows[-self._WATCHED_ROWS :]:
            closed = row[0] < latest_open
            values = (*row, closed)
            if self._seen.get(row[0]) == values:
                continue
            self._seen[row[0]] = values
            self.feed.candle(
                self.symbol, _ns(row[0]), candle_from_row(self.timeframe, row, row[0] < latest_open)
            )
            emitted = True
        if len(self._seen) > 4 * self._WATCHED_ROWS:
            for open_time in sorted(self._seen)[: -self._WATCHED_ROWS]:
                del self._seen[open_time]
        return emitted


def candle_from_row(timeframe: Timeframe, row: list[Any], closed: bool) -> Candle:
    """A ccxt OHLCV row [ms, open, high, low, close, volume] as a Candle."""
    d = decimal_or_zero
    return Candle(
        timeframe,
        int(row[0]) * 1_000_000,
        d(row[1]),
        d(row[2]),
        d(row[3]),
        d(row[4]),
        d(row[5]),
        Decimal(0),
        0,
        closed,
    )
