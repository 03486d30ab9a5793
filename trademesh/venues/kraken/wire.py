"""Kraken spot's public frames (WebSocket v2) taken from the wire (trademesh/venues/live/wire.py): `book`,
`ticker`, `trade` and `ohlc` become our events before ccxt's handler would parse them.

The frames carry ccxt's unified symbol ("BTC/CHF": v2 spells BTC and DOGE where the wsname,
the venue's native symbol, says XBT and XDG), and numbers as JSON numbers, which ccxt's client
parses to floats: their text is their shortest repr (`number_text`), as ccxt's path read them.

The book follows ccxt's handle_order_book: a `snapshot` frame starts the book (its depth the
subscription's `limit`, or the snapshot's own length if longer), an `update` frame changes
levels (a qty of 0 removes one), the book is trimmed to its depth, and the frame's CRC32 of
the 10 best asks then the 10 best bids (each price and qty written to the pair's decimals,
AssetPairs pair_decimals / lot_decimals, the point and leading zeros removed) is checked
against the book after every frame, before anything is published. A mismatch fails ccxt's
book watch exactly as its handler does (its subscription dropped, the watch rejected with
ChecksumError): StreamWatcher counts the mismatch and a resync and resubscribes, the venue
sends a new snapshot, and that snapshot goes out marked as a resync. Until then the symbol's
updates are dropped (ccxt's handler raised on each, its book gone). A snapshot on a live book
(Kraken sends one on every subscription) is published as the levels that changed, as the
normalizer diffed ccxt's book reset in place.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable, Mapping, Sequence
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import ccxt

from trademesh.core.domain.model import Channel, Side, StreamKey, Timeframe
from trademesh.venues.live.spec import Market
from trademesh.venues.live.wire import BookResync, WireBook, WireStreams, now_ns, number_plain, number_text
from trademesh.venues.runtime.feed import MarketFeed

__all__ = ["CHECKSUM_LEVELS", "BookSync", "Checksum", "KrakenWire", "checksum", "iso_ms", "wsname"]

# Levels a side contributes to the checksum.
CHECKSUM_LEVELS = 10
# The depth ccxt sizes a book to when its subscription names none (Kraken's default).
_DEFAULT_DEPTH = 10
# What StreamWatcher says when ccxt's book watch fails with ChecksumError (a resync's reason).
_RESYNC_REASON = "venue book out of sync (ChecksumError): rebuilt from a new snapshot"


def wsname(market: Market) -> str:
    """Kraken's wsname ("XBT/CHF"), the native symbol trademesh lists (trademesh/venues/kraken/spec.py),
    falling back to ccxt's id for markets without one."""
    info = market.get("info") or {}
    return str(info.get("wsname") or market["id"])


def iso_ms(text: str | None, cache: dict[str, int]) -> int | None:
    """ccxt's parse8601 of Kraken's "2023-10-06T17:35:55.440295Z" (ms, the fraction truncated);
    the whole seconds are parsed once (`cache`), other forms by ccxt."""
    if not text:
        return None
    if len(text) > 20 and text[19] == "." and text[-1] == "Z":
        seconds = cache.get(text[:19])
        if seconds is None:
            if len(cache) > 4096:
                cache.clear()
            parsed = ccxt.Exchange.parse8601(text[:19] + "Z")
            if parsed is None:
                return None
            seconds = cache[text[:19]] = parsed
        return seconds + int((text[20:-1] + "00")[:3])
    parsed = ccxt.Exchange.parse8601(text)
    return None if parsed is None else int(parsed)


def _ns(ms: int | None) -> int:
    return ms * 1_000_000 if ms is not None else now_ns()


@functools.lru_cache(maxsize=1 << 16)
def _digits(text: str, decimals: int | None) -> str:
    """A level's number as the checksum writes it: to the pair's decimals, no point, no leading
    zeros (as KrakenExchange.format_number and ccxt's format_number make it)."""
    if decimals is None:
        written = format(Decimal(repr(float(text))), "f")
    else:
        whole, _, fraction = text.partition(".")
        if len(fraction) <= decimals and whole.isdigit():
            written = whole + fraction.ljust(decimals, "0")
        else:
            quantum = Decimal(1).scaleb(-decimals)
            written = format(Decimal(text).quantize(quantum, ROUND_HALF_EVEN), "f")
    return written.replace(".", "").lstrip("0")


def checksum(book: WireBook, decimals: tuple[int, int] | None) -> int:
    """Kraken v2's CRC32 of the book's 10 best asks then 10 best bids, written afresh."""
    price_decimals, size_decimals = decimals if decimals is not None else (None, None)
    text = "".join(
        _digits(price, price_decimals) + _digits(size, size_decimals)
        for side in (book.asks, book.bids)
        for price, size in side.best(CHECKSUM_LEVELS)
    )
    return zlib.crc32(text.encode())


# Level digits a book keeps (cleared when past this): its levels near the top come and go.
_LEVELS_KEPT = 1 << 14


class Checksum:
    """One book's checksum (as `checksum`), kept for speed: each side's bytes while its 10 best
    levels are unchanged (the book counts their changes: WireBook.watch), and each level's
    digits while the level is in the book's recent past."""

    __slots__ = ("_of_level", "_sides", "price_decimals", "size_decimals")

    def __init__(self, decimals: tuple[int, int] | None) -> None:
        self.price_decimals: int | None = None if decimals is None else decimals[0]
        self.size_decimals: int | None = None if decimals is None else decimals[1]
        self._sides: list[tuple[Any, int, bytes] | None] = [None, None]  # (side, its changes, bytes)
        self._of_level: dict[tuple[str, str], str] = {}

    def __call__(self, book: WireBook) -> int:
        crc = 0
        for index, side in enumerate((book.asks, book.bids)):
            kept = self._sides[index]
            if kept is not None and kept[0] is side and kept[1] == side.changes:
                written = kept[2]
            else:
                of_level, new = self._of_level, self._new_level
                levels = side.best(CHECKSUM_LEVELS)
                written = "".join([of_level.get(level) or new(level) for level in levels]).encode()
                self._sides[index] = (side, side.changes, written)
            crc = zlib.crc32(written, crc)
        return crc

    def _new_level(self, level: tuple[str, str]) -> str:
        if len(self._of_level) >= _LEVELS_KEPT:
            self._of_level.clear()
        digits = _digits(level[0], self.price_decimals) + _digits(level[1], self.size_decimals)
        self._of_level[level] = digits
        return digits


def _levels(levels: Sequence[Mapping[str, Any]]) -> list[tuple[Any, Any]]:
    """A frame's levels as the JSON parser made their numbers (the book writes them: number_plain)."""
    return [(level["price"], level["qty"]) for level in levels]


class BookSync:
    """One symbol's book from Kraken's snapshots and updates, checked by its checksums."""

    def __init__(
        self, book: WireBook, decimals: tuple[int, int] | None, fail: Callable[[Any, str], None]
    ) -> None:
        self.book = book
        self.decimals = decimals  # (price, size) decimals of the pair; None: written as sent
        self._fail = fail  # (ccxt client, reason): fail ccxt's book watch on that connection
        self.live = False  # a snapshot was applied and every checksum since held
        self.published = False  # the book's snapshot went out since it was last (re)started
        self.muted = False  # the stream is closed: the book is followed, nothing is published
        self.reason = ""  # the next snapshot's resync reason
        self._times: dict[str, int] = {}
        self._checksum = Checksum(decimals)
        book.watch(CHECKSUM_LEVELS)

    def resync(self, reason: str) -> None:
        self.reason = reason
        self.live = self.published = False

    def restart(self) -> None:
        self.live = self.published = False

    def reopen(self) -> None:
        """The stream is open again: its next frame publishes the whole book as a snapshot."""
        self.muted, self.published = False, False

    def snapshot(self, data: Mapping[str, Any], depth: int, client: Any) -> bool:
        bids, asks = _levels(data.get("bids") or []), _levels(data.get("asks") or [])
        depth = max(depth, len(asks))
        if self.live and self.published:
            changes = self.book.replace(bids, asks, depth, number_plain)
        else:
            self.book.start(bids, asks, depth, number_plain)
            changes = None
        if not self._checked(data, client):
            return False
        self.live = True
        if self.muted:
            return False
        if changes is None:
            return self._publish_snapshot()
        return self.book.publish_delta(now_ns(), *changes)

    def update(self, data: Mapping[str, Any], client: Any) -> bool:
        if not self.live:
            return False  # waiting for a snapshot after a mismatch (ccxt's handler had no book)
        bids, asks = self.book.apply(
            _levels(data.get("bids") or ()), _levels(data.get("asks") or ()), number_plain
        )
        if not self._checked(data, client) or self.muted:
            return False
        if not self.published:
            return self._publish_snapshot()
        return self.book.publish_delta(_ns(iso_ms(data.get("timestamp"), self._times)), bids, asks)

    def _publish_snapshot(self) -> bool:
        self.book.publish_snapshot(now_ns(), self.reason)
        self.reason, self.published = "", True
        return True

    def _checked(self, data: Mapping[str, Any], client: Any) -> bool:
        expected = data.get("checksum")
        if expected is None:
            return True
        computed = self._checksum(self.book)
        if computed == int(expected):
            return True
        self.live = self.published = False
        self.reason = _RESYNC_REASON
        self._fail(client, f"checksum {computed} is not the venue's {expected}")
        return False


class KrakenWire(WireStreams):
    """Kraken spot's v2 public frames for the streams the venue opened (keyed by ccxt's symbol)."""

    def __init__(
        self,
        feed: MarketFeed,
        exchange: Any,
        native_symbols: Mapping[str, str],
        timeframes: Sequence[Timeframe],
    ) -> None:
        markets = dict(exchange.markets or {})
        by_frame = {
            market["symbol"]: native_symbols[wsname(market)]
            for market in markets.values()
            if wsname(market) in native_symbols
        }
        super().__init__(feed, exchange, by_frame, timeframes)
        self._decimals = {symbol: _decimals(markets[symbol]) for symbol in by_frame}
        self._times: dict[str, int] = {}

    def open(self, key: StreamKey) -> tuple[bool, BookResync | None]:
        native = self._native.get(key.symbol)
        sync = self.books.get(native or "") if key.channel is Channel.BOOK else None
        if sync is not None:  # closed before: its book was followed since
            sync.reopen()
            return True, sync
        return super().open(key)

    def close(self, key: StreamKey) -> None:
        """A closed book stream's book is followed on (ccxt keeps the subscription, the venue
        its frames), publishing nothing: the stream opened again starts from it."""
        sync = self.books.get(self._native.get(key.symbol) or "") if key.channel is Channel.BOOK else None
        if sync is not None:
            sync.muted = True
            return
        super().close(key)

    def book_sync(self, book: WireBook) -> BookSync:
        native = self._native[book.symbol]
        return BookSync(
            book, self._decimals.get(native), lambda client, reason: self._fail_book(client, native, reason)
        )

    def handle(self, client: Any, message: Any) -> bool | None:
        if not isinstance(message, dict):
            return None
        channel = message.get("channel")
        if channel not in _CHANNELS:
            return None
        data = message.get("data")
        if not isinstance(data, list) or not data or not isinstance(data[0], dict):
            return None
        native: str = data[0].get("symbol") or ""
        if channel == "book":
            return self._book(client, native, message.get("type"), data[0])
        if channel == "ticker":
            ticker = self.tickers.get(native)
            if ticker is None:
                return None
            first = data[0]
            return ticker.ticker(
                now_ns(),
                number_text(first.get("bid")),
                number_text(first.get("bid_qty")),
                number_text(first.get("ask")),
                number_text(first.get("ask_qty")),
                number_text(first.get("last")),
                _volumes(first),
                _open_24h(first),
            )
        if channel == "trade":
            return self._trades(native, data)
        return self._candles(native, data)

    def _book(self, client: Any, native: str, kind: Any, data: Mapping[str, Any]) -> bool | None:
        sync: BookSync | None = self.books.get(native)
        if sync is None:
            return None
        if kind == "snapshot":
            subscription = client.subscriptions.get("orderbook@" + native) or {}
            limit = subscription.get("limit") if isinstance(subscription, dict) else None
            return sync.snapshot(data, int(limit or _DEFAULT_DEPTH), client)
        return sync.update(data, client)

    def _trades(self, native: str, data: list[Any]) -> bool | None:
        trades = self.trades.get(native)
        if trades is None:
            return None
        emitted = False
        for item in data:
            trade_id = item.get("trade_id")
            emitted |= trades.trade(
                _ns(iso_ms(item.get("timestamp"), self._times)),
                "" if trade_id is None else str(trade_id),
                number_text(item.get("price")),
                number_text(item.get("qty")),
                Side.SELL if item.get("side") == "sell" else Side.BUY,
            )
        return emitted

    def _candles(self, native: str, data: list[Any]) -> bool | None:
        timeframe = self.exchange.find_timeframe(data[0].get("interval"))
        candles = self.candles.get((native, timeframe))
        if candles is None:
            return None
        rows = []
        for item in data:
            open_ms = iso_ms(item.get("interval_begin"), self._times)
            if open_ms is not None:
                values = (item.get(name) for name in ("open", "high", "low", "close", "volume"))
                rows.append((open_ms, *map(number_text, values)))
        return candles.update_rows(rows)  # type: ignore[arg-type]

    def _fail_book(self, client: Any, symbol: str, reason: str) -> None:
        """As ccxt's handle_order_book on a checksum mismatch: its book and subscription dropped,
        the watch failed with ChecksumError (the watch subscribes again: a new snapshot)."""
        message_hash = "orderbook@" + symbol
        books = self.exchange.orderbooks
        if books is not None and symbol in books:
            del books[symbol]
        client.subscriptions.pop(message_hash, None)
        message = self.exchange.orderbook_checksum_message(symbol)
        client.reject(ccxt.ChecksumError(f"{self.exchange.id} {message} ({reason})"), message_hash)


_CHANNELS = frozenset({"book", "ticker", "trade", "ohlc"})


def _volumes(ticker: Mapping[str, Any]) -> tuple[str, str]:
    """The ticker's 24h base volume and its quote volume, volume x vwap (exactly, as ccxt's
    parser makes it: Kraken states the volume-weighted price, not the quote volume)."""
    volume, vwap = number_text(ticker.get("volume")), number_text(ticker.get("vwap"))
    if not volume or not vwap:
        return volume, ""
    return volume, str(Decimal(volume) * Decimal(vwap))


def _open_24h(ticker: Mapping[str, Any]) -> str:
    """The price 24 hours ago: the last price less Kraken's 24h `change` (exact; "" without
    both, or when it comes out no price)."""
    last, change = number_text(ticker.get("last")), number_text(ticker.get("change"))
    if not last or not change:
        return ""
    opened = Decimal(last) - Decimal(change)
    return str(opened) if opened > 0 else ""


def _decimals(market: Mapping[str, Any]) -> tuple[int, int] | None:
    info = market.get("info") or {}
    if "pair_decimals" in info and "lot_decimals" in info:
        return int(info["pair_decimals"]), int(info["lot_decimals"])
    return None
