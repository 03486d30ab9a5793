"""Market-data frames taken from the wire, before ccxt's handler sees them (issue 17).

ccxt.pro turns every public frame into its unified structures (an order book it keeps, a
ticker, a ring of trades, candle rows), resolves its watchers' futures with them, and the
normalizers (normalize.py) then read those caches back to find what changed. For a venue
whose spec names a wire tap (`LiveSpec.wire`), the hooked exchange offers each parsed frame
to the tap first (exchange.Hooks.on_frame): a frame of a stream the tap took is turned
straight into our events and never reaches ccxt's handler. ccxt still opens the
connections, subscribes (its watch calls stay pending: their futures are not resolved by
these frames, but a lost connection or a rate limit still rejects them, so StreamWatcher's
recovery is unchanged), fetches the REST book snapshots (the tap gets each one through
exchange.Hooks.on_rest_book) and does everything private and trading.

This module holds what is not the venue's: the streams a tap has taken (`WireStreams`, which
the venue's tap subclasses with its parsing), and the targets that emit events: a book kept
from a snapshot and the venue's changed levels (`WireBook`), trades with the same duplicate
rule as TradeNormalizer, tickers, candles (CandleNormalizer's rows, kept here).

Numbers: the venue's decimal strings go out as plain decimals (`plain_decimal`), the same
text the normalizers make from ccxt's floats. A venue that sends JSON numbers (Kraken v2) is
parsed by ccxt's client to floats; `number_text` gives their shortest repr, which
`plain_decimal` turns into the normalizers' text (decimal_text of the same float).
"""

from __future__ import annotations

import sys
import time
from bisect import bisect_left
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Protocol

from trademesh.core.domain.book import Level
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.model import Channel, Side, StreamKey, Timeframe
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.live.normalize import (
    RECENT_TRADE_IDS,
    BookRange,
    CandleNormalizer,
    RecentIds,
    decimal_text,
)
from trademesh.venues.runtime.feed import MarketFeed

__all__ = [
    "BookResync",
    "WireBook",
    "WireCandles",
    "WireStreams",
    "WireTap",
    "WireTicker",
    "WireTrades",
    "now_ns",
    "number_plain",
    "number_text",
    "plain_decimal",
]


def plain_decimal(text: str) -> str:
    """A venue's decimal string in plain form ("0.35130000" -> "0.3513", "10.0" -> "10").

    The same text as format_decimal(Decimal(text)); plain ASCII digits are trimmed as text,
    anything else (a sign, an exponent, leading zeros) goes through Decimal.
    """
    whole, dot, fraction = text.partition(".")
    if whole.isdigit() and whole.isascii() and (whole[0] != "0" or len(whole) == 1):
        if not dot:
            return whole
        if fraction.isdigit() and fraction.isascii():
            fraction = fraction.rstrip("0")
            return f"{whole}.{fraction}" if fraction else whole
    return format_decimal(Decimal(text)) if text else ""


def number_text(value: Any) -> str:
    """A JSON number as ccxt's client parsed it (float or int) as text: a float's shortest repr
    (the decimal the venue sent, as decimal_text reads it), "" when absent."""
    if value is None:
        return ""
    return repr(value) if isinstance(value, float) else str(value)


# Plain texts kept by float: a book's prices come back frame after frame (sizes less so).
_PLAIN_KEPT = 1 << 16
_plain_of: dict[float, str] = {}


def number_plain(value: Any) -> str:
    """plain_decimal(number_text(value)): a JSON number's plain decimal text.

    A float's text depends on its value alone (its shortest repr, read as a decimal), so it
    is kept by value; a repr in fixed notation is already plain but for a trailing ".0".
    """
    if value.__class__ is not float:
        return plain_decimal(number_text(value))
    text = _plain_of.get(value)
    if text is None:
        if len(_plain_of) >= _PLAIN_KEPT:
            _plain_of.clear()
        text = repr(value)
        if "e" in text or "n" in text or value == 0:  # an exponent, inf, nan, -0.0
            text = plain_decimal(text)
        elif text.endswith(".0"):
            text = text[:-2]
        _plain_of[value] = text
    return text


class WireTap(Protocol):
    """A venue's handler of its public frames, before ccxt's (see the module's docstring)."""

    def open(self, key: StreamKey) -> tuple[bool, BookResync | None]:
        """Take a stream: (False, None) when the tap does not handle it (ccxt's normalizers do);
        for a book, the object the stream's watcher tells of resyncs and reconnects."""
        ...

    def close(self, key: StreamKey) -> None: ...

    def handle(self, client: Any, message: Any) -> bool | None:
        """None: not the tap's frame (ccxt handles it); else the tap took it (ccxt does not see
        it), and True when it emitted events."""
        ...

    def rest_book(self, symbol: str, book: Any, depth: int | None) -> None:
        """ccxt fetched a book's REST snapshot (for a stream the tap took, its book starts there)."""
        ...


class BookResync(Protocol):
    """What StreamWatcher tells a book: rebuilt after a sequence break, or after a reconnect."""

    def resync(self, reason: str) -> None: ...

    def restart(self) -> None: ...


# A side's change count watches all its levels unless told fewer.
ALL_LEVELS = sys.maxsize


class _Side:
    """One side of a book: price -> (price text, size text), and the prices in order, best first."""

    __slots__ = ("changes", "keys", "levels", "sign", "watched")

    def __init__(self, descending: bool, watched: int = ALL_LEVELS) -> None:
        self.levels: dict[float, tuple[str, str]] = {}
        self.keys: list[float] = []  # sign * price, ascending: best first
        self.sign = -1.0 if descending else 1.0
        # Counts the changes of the side's `watched` best levels: what is kept of them (Kraken's
        # checksum digits of its 10 best) holds while this does not move.
        self.changes = 0
        self.watched = watched

    def set(self, price: float, text: str, size: str) -> None:
        levels = self.levels
        if price in levels:
            self.touch(price)
        else:
            keys = self.keys
            index = bisect_left(keys, self.sign * price)
            keys.insert(index, self.sign * price)
            if index < self.watched:
                self.changes += 1
        levels[price] = (text, size)

    def touch(self, price: float) -> None:
        """The level at `price` (kept) changed: counted when it is among the watched."""
        keys, watched = self.keys, self.watched
        if len(keys) <= watched or self.sign * price <= keys[watched - 1]:
            self.changes += 1

    def remove(self, price: float) -> None:
        if self.levels.pop(price, None) is not None:
            keys = self.keys
            index = bisect_left(keys, self.sign * price)
            del keys[index]
            if index < self.watched:
                self.changes += 1

    def worst(self) -> float:
        return self.sign * self.keys[-1]

    def best(self, count: int) -> list[tuple[str, str]]:
        """The `count` best levels (price text, size text), best first."""
        sign, levels = self.sign, self.levels
        return [levels[sign * key] for key in self.keys[:count]]

    def in_order(self) -> list[tuple[str, str]]:
        sign, levels = self.sign, self.levels
        return [levels[sign * key] for key in self.keys]


class WireBook:
    """A venue book kept from a REST snapshot and the changed levels of the venue's updates.

    The same rules as BookNormalizer over ccxt's book: each side holds at most `depth` levels
    (the worst leave first), and a book started from a REST snapshot cut at the depth (`reset`)
    is published inside its known range only (BookRange): a level outside it counts as absent.
    A book started from the venue's own WebSocket snapshot (`start`, Kraken) has no range: the
    venue keeps it whole down to the depth. A delta lists the published levels an update
    changed (size, or "0" for a level gone), bids best first then asks best first, and nothing
    when the update left the published book as it was.
    """

    def __init__(self, feed: MarketFeed, symbol: str) -> None:
        self.feed = feed
        self.symbol = symbol
        self.bids = _Side(descending=True)
        self.asks = _Side(descending=False)
        self.depth: int | None = None
        self.range = BookRange()
        self.ranged = True  # a REST-started book: trimming narrows its known range
        self.watched = ALL_LEVELS  # each side's best levels whose changes it counts (_Side.changes)

    def start(
        self,
        bids: Sequence[Sequence[Any]],
        asks: Sequence[Sequence[Any]],
        depth: int | None,
        plain: Callable[[Any], str] = plain_decimal,
    ) -> None:
        """Start again from the venue's own snapshot (no range): price and size strings, or
        numbers with `plain=number_plain` (a JSON parser's, as Kraken v2's)."""
        self.bids, self.asks = self._sides()
        self.depth, self.range, self.ranged = depth, BookRange(), False
        for side, source in ((self.bids, bids), (self.asks, asks)):
            levels = side.levels
            for price_text, size_text in source:
                size = plain(size_text)
                if size != "0":
                    levels[float(price_text)] = (plain(price_text), size)
            sign = side.sign
            side.keys = sorted([sign * price for price in levels])  # once, not level by level
            self._trim(side, {})

    def replace(
        self,
        bids: Sequence[Sequence[Any]],
        asks: Sequence[Sequence[Any]],
        depth: int | None,
        plain: Callable[[Any], str] = plain_decimal,
    ) -> tuple[list[Level], list[Level]]:
        """A snapshot on a live book: start from it; the published levels that differ from the
        book published before (as BookNormalizer diffed ccxt's book reset in place): the new
        book's changed levels best first, then the levels gone ("0") best first."""
        changes: tuple[list[Level], list[Level]] = ([], [])
        if self.ranged:  # published: the levels inside the range
            before = (self._published_levels(self.bids), self._published_levels(self.asks))
            self.start(bids, asks, depth, plain)
            after = (self._published_levels(self.bids), self._published_levels(self.asks))
            for old, new, out in zip(before, after, changes, strict=True):
                out.extend(level for price, level in new.items() if old.get(price) != level)
                out.extend((level[0], "0") for price, level in old.items() if price not in new)
            return changes
        sides = (self.bids, self.asks)  # unranged, as the new book: every level is published
        self.start(bids, asks, depth, plain)
        for old_side, new_side, out in zip(sides, (self.bids, self.asks), changes, strict=True):
            old, new, sign = old_side.levels, new_side.levels, new_side.sign
            for key in new_side.keys:
                level = new[sign * key]
                if old.get(sign * key) != level:
                    out.append(level)
            out.extend((old[sign * key][0], "0") for key in old_side.keys if sign * key not in new)
        return changes

    def watch(self, levels: int) -> None:
        """Count each side's changes (_Side.changes) among its `levels` best only."""
        self.watched = self.bids.watched = self.asks.watched = levels

    def _sides(self) -> tuple[_Side, _Side]:
        return _Side(descending=True, watched=self.watched), _Side(descending=False, watched=self.watched)

    def _published_levels(self, side: _Side) -> dict[float, tuple[str, str]]:
        """The side's published levels by price, best first."""
        sign, levels = side.sign, side.levels
        prices = [sign * key for key in side.keys]
        if not self.ranged:
            return {price: levels[price] for price in prices}
        return {price: levels[price] for price in prices if self._published(side, price) is not None}

    def reset(self, snapshot: Mapping[str, Any], depth: int | None) -> None:
        """Start again from a REST snapshot as ccxt parsed it ([price, size] numbers per level)."""
        self.bids, self.asks = self._sides()
        self.depth, self.ranged = depth, True
        self.range = BookRange.of_snapshot(snapshot, depth)
        for side, levels in (
            (self.bids, snapshot.get("bids") or []),
            (self.asks, snapshot.get("asks") or []),
        ):
            for price, size, *_ in levels:
                if size:
                    side.set(float(price), decimal_text(price), decimal_text(size))
            self._trim(side, {})

    def apply(
        self,
        bids: Sequence[Sequence[Any]],
        asks: Sequence[Sequence[Any]],
        plain: Callable[[Any], str] = plain_decimal,
    ) -> tuple[list[Level], list[Level]]:
        """Apply an update's levels (price and size strings, size "0": gone; or numbers with
        `plain=number_plain`); the published changes."""
        return self._apply(self.bids, bids, plain), self._apply(self.asks, asks, plain)

    def publish_snapshot(self, ts_ns: int, reason: str = "") -> None:
        floor, ceiling = self.range.bid_floor, self.range.ask_ceiling
        bids = [lv for lv in self.bids.in_order() if floor is None or float(lv[0]) >= floor]
        asks = [lv for lv in self.asks.in_order() if ceiling is None or float(lv[0]) <= ceiling]
        self.feed.book_snapshot(self.symbol, ts_ns, bids, asks, reason)

    def publish_delta(self, ts_ns: int, bids: list[Level], asks: list[Level]) -> bool:
        if not bids and not asks:
            return False
        self.feed.book_delta(self.symbol, ts_ns, bids, asks)
        return True

    def _apply(
        self, side: _Side, levels: Sequence[Sequence[Any]], plain: Callable[[Any], str]
    ) -> list[Level]:
        if not levels:  # an update mostly changes one side (and the other is trimmed already)
            return []
        ranged = self.ranged  # else every level kept is published (no range to be outside of)
        before: dict[float, tuple[str, str] | None] = {}
        kept = side.levels
        for price_text, size_text in levels:
            price = float(price_text)
            if price not in before:
                before[price] = self._published(side, price) if ranged else kept.get(price)
            size = plain(size_text)
            if size == "0":
                side.remove(price)
                continue
            level = kept.get(price)
            if level is None:  # a new level: its price's text, once
                side.set(price, plain(price_text), size)
            elif level[1] != size:  # a level kept: its text stays, only its size changes
                kept[price] = (level[0], size)
                side.touch(price)
        if ranged or (self.depth is not None and len(side.keys) > self.depth):
            self._trim(side, before)
        changes: list[Level] = []
        for price in sorted(before, reverse=side.sign < 0) if len(before) > 1 else before:
            old = before[price]
            new = self._published(side, price) if ranged else kept.get(price)
            if new is None:
                if old is not None:
                    changes.append((old[0], "0"))
            elif old is None or old[1] != new[1]:
                changes.append(new)
        return changes

    def _trim(self, side: _Side, before: dict[float, tuple[str, str] | None]) -> None:
        """Keep `depth` levels; a side at its depth narrows the known range to its last level."""
        depth = self.depth
        if depth is None:
            return
        while len(side.keys) > depth:
            worst = side.worst()
            if worst not in before:
                before[worst] = self._published(side, worst)
            side.remove(worst)
        if self.ranged and side.keys and len(side.keys) >= depth:
            last, bounds = side.worst(), self.range
            if side.sign < 0:
                bounds.bid_floor = last if bounds.bid_floor is None else max(bounds.bid_floor, last)
            else:
                bounds.ask_ceiling = last if bounds.ask_ceiling is None else min(bounds.ask_ceiling, last)

    def _published(self, side: _Side, price: float) -> tuple[str, str] | None:
        level = side.levels.get(price)
        if level is None:
            return None
        if side.sign < 0:
            floor = self.range.bid_floor
            return level if floor is None or price >= floor else None
        ceiling = self.range.ask_ceiling
        return level if ceiling is None or price <= ceiling else None


class WireTrades:
    """A symbol's trades; a trade id among the last RECENT_TRADE_IDS is not sent again."""

    def __init__(self, feed: MarketFeed, symbol: str) -> None:
        self.feed = feed
        self.symbol = symbol
        self._recent = RecentIds(RECENT_TRADE_IDS)

    def trade(self, ts_ns: int, trade_id: str, price: str, size: str, side: Side) -> bool:
        if trade_id and not self._recent.add(trade_id):
            self.feed.stats(self.symbol, Channel.TRADES).duplicate_trades += 1
            return False
        self.feed.trade(self.symbol, ts_ns, trade_id, plain_decimal(price), plain_decimal(size), side)
        return True


class WireTicker:
    def __init__(self, feed: MarketFeed, symbol: str) -> None:
        self.feed = feed
        self.symbol = symbol

    def ticker(
        self,
        ts_ns: int,
        bid: str,
        bid_size: str,
        ask: str,
        ask_size: str,
        last: str = "",
        volumes: tuple[str, str] = ("", ""),
        open_24h: str = "",
    ) -> bool:
        """`volumes`: the venue's 24h base and quote volume ("" where it states none); `open_24h`
        its price 24 hours ago ("" where it states none)."""
        bid, bid_size = _best(bid, bid_size)
        ask, ask_size = _best(ask, ask_size)
        last = plain_decimal(last)
        ticker = md.Ticker(
            best_bid=bid,
            best_bid_size=bid_size,
            best_ask=ask,
            best_ask_size=ask_size,
            last_price=last,
            base_volume_24h=plain_decimal(volumes[0]),
            quote_volume_24h=plain_decimal(volumes[1]),
            open_24h=plain_decimal(open_24h),
        )
        self.feed.ticker(self.symbol, ts_ns, ticker)
        return True


def _best(price: str, size: str) -> tuple[str, str]:
    """As normalize._best: no price, or a price of 0, is no level."""
    text = plain_decimal(price)
    if not text or text == "0":
        return "", ""
    return text, plain_decimal(size)


class WireCandles:
    """A symbol's candles of one timeframe: rows by open time (a row's update replaces it, as in
    ccxt's cache by timestamp), emitted by CandleNormalizer's rule."""

    _ROWS = 2 * CandleNormalizer._WATCHED_ROWS

    def __init__(self, feed: MarketFeed, symbol: str, timeframe: Timeframe) -> None:
        self._emitter = CandleNormalizer(feed, symbol, timeframe, timeframe.label)
        self._rows: list[list[Any]] = []

    def update(self, open_ms: int, o: str, h: str, low: str, c: str, v: str) -> bool:
        return self.update_rows([(open_ms, o, h, low, c, v)])

    def update_rows(self, updates: Sequence[tuple[int, str, str, str, str, str]]) -> bool:
        """Rows of one frame (open ms, o, h, l, c, v strings), applied in order, then emitted once
        (as the normalizer read ccxt's cache once the frame was handled)."""
        rows = self._rows
        for open_ms, *values in updates:
            row = [open_ms, *map(plain_decimal, values)]
            for index, existing in enumerate(rows):
                if existing[0] == open_ms:
                    rows[index] = row
                    break
            else:
                rows.append(row)
                if len(rows) > self._ROWS:
                    del rows[0]
        return self._emitter.emit_rows(rows) if rows else False


class WireStreams:
    """The streams a venue's tap has taken, by the venue's symbol: what its frames are turned into.

    A venue's tap subclasses this with its parsing (and its book's sync rules: `book_sync`).
    """

    def __init__(
        self,
        feed: MarketFeed,
        exchange: Any,
        native_symbols: Mapping[str, str],
        timeframes: Sequence[Timeframe],
    ) -> None:
        self.feed = feed
        self.exchange = exchange
        self.timeframes = tuple(timeframes)
        self.symbols = dict(native_symbols)  # the venue's symbol -> ours
        self.trades: dict[str, WireTrades] = {}
        self.tickers: dict[str, WireTicker] = {}
        self.candles: dict[tuple[str, str], WireCandles] = {}  # (native, timeframe label)
        self.books: dict[str, Any] = {}  # native -> the venue's book sync
        self._native = {symbol: native for native, symbol in self.symbols.items()}

    def open(self, key: StreamKey) -> tuple[bool, BookResync | None]:
        native = self._native.get(key.symbol)
        if native is None or key.channel is Channel.FUNDING:  # funding: ccxt's, whatever the tap takes
            return False, None
        feed, symbol = self.feed, key.symbol
        if key.channel is Channel.TRADES:
            self.trades[native] = WireTrades(feed, symbol)
        elif key.channel is Channel.TICKERS:
            self.tickers[native] = WireTicker(feed, symbol)
        elif key.channel is Channel.CANDLES:
            for tf in self.timeframes:
                self.candles[(native, tf.label)] = WireCandles(feed, symbol, tf)
        else:
            book = self.books[native] = self.book_sync(WireBook(feed, symbol))
            return True, book
        return True, None

    def close(self, key: StreamKey) -> None:
        native = self._native.get(key.symbol)
        if key.channel is Channel.TRADES:
            self.trades.pop(native or "", None)
        elif key.channel is Channel.TICKERS:
            self.tickers.pop(native or "", None)
        elif key.channel is Channel.CANDLES:
            for index in [k for k in self.candles if k[0] == native]:
                del self.candles[index]
        elif key.channel is Channel.BOOK and self.books.pop(native or "", None) is not None:
            self.book_closed(key.symbol)

    def book_closed(self, symbol: str) -> None:
        """A book stream was closed: a later one must start from a new snapshot (the venue's
        tap makes ccxt subscribe afresh, which fetches one)."""

    def book_sync(self, book: WireBook) -> Any:
        """The venue's sync of a book from its snapshot and updates (a BookResync with a
        `snapshot(book, depth)` for the REST snapshots ccxt fetches)."""
        raise NotImplementedError

    def handle(self, client: Any, message: Any) -> bool | None:
        raise NotImplementedError

    def rest_book(self, symbol: str, book: Any, depth: int | None) -> None:
        sync = self.books.get(self._native.get(symbol, ""))
        if sync is not None:
            sync.snapshot(book, depth)


def now_ns() -> int:
    return time.time_ns()
