"""Turn ccxt's unified caches into exactly-once trademesh events.

ccxt keeps the latest state (a ring of recent trades, the whole order book, the
latest ticker, recent candles) and hands back the same objects again and again.
Each normalizer remembers what it has already emitted and emits only what is
new: trades after the last one sent (a cursor by object identity; if it fell
out of the ring, a gap notice), book changes as deltas against the last book
sent (a snapshot first and after every resync), tickers, candles and funding rates when
their object changed.

Integrity rules that hold for every venue:
- a trade whose id was among the last `RECENT_TRADE_IDS` of its symbol is not sent
  again (venues re-send their latest trade on a new subscription, e.g. OKX);
- a book built from a depth-limited REST snapshot (ccxt's way for diff streams such as
  Binance's) is only known down to the snapshot's last level: levels beyond that price
  are not published, and when ccxt trims the book to its depth the published range
  shrinks to its new last level (the levels that leave it go out with size 0);
- a best bid or ask with no price, or a price of 0 (Deribit's "no bid"), is no level:
  the ticker's price and size are both empty;
- a ticker states the venue's 24h volume where ccxt's ticker has it (`baseVolume`,
  `quoteVolume`); a venue whose ticker stream has none may name a second cache that has it
  (Binance USD-M: bookTicker for the best bid and ask, the 24hrTicker stream for the volume).

Numbers: ccxt parses JSON numbers to floats; a float's shortest repr reads back
as the decimal the venue sent (venues send at most 15 significant digits), so
prices and sizes go out as exact plain decimal strings.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from trademesh.core.domain.book import Level
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.domain.model import Candle, Channel, Side, Timeframe
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.venues.live.tracked_book import level_size, take_changes
from trademesh.venues.runtime.feed import MarketFeed

__all__ = [
    "RECENT_TRADE_IDS",
    "BookNormalizer",
    "BookRange",
    "CandleNormalizer",
    "FundingNormalizer",
    "RecentIds",
    "TickerNormalizer",
    "TradeNormalizer",
    "decimal_or_zero",
    "decimal_text",
    "funding_of",
    "ticker_of",
]

# Trade ids remembered per symbol to drop a trade the venue sends again.
RECENT_TRADE_IDS = 1_000


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


class RecentIds:
    """The last `size` ids seen, for membership tests (a ring plus a set)."""

    def __init__(self, size: int) -> None:
        self._order: collections.deque[str] = collections.deque()
        self._ids: set[str] = set()
        self._size = size

    def add(self, trade_id: str) -> bool:
        """False when the id is among the recent ones already."""
        if trade_id in self._ids:
            return False
        self._ids.add(trade_id)
        self._order.append(trade_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True


class TradeNormalizer:
    def __init__(self, feed: MarketFeed, symbol: str) -> None:
        self.feed = feed
        self.symbol = symbol
        self._last: object | None = None
        self._recent = RecentIds(RECENT_TRADE_IDS)
        self.emitted = 0

    def poll(self, exchange: Any) -> bool:
        ring = exchange.trades.get(self.symbol) if exchange.trades else None
        if not ring or ring[-1] is self._last:
            return False
        emitted = False
        for trade in self._new(ring):
            trade_id = str(trade.get("id") or "")
            if trade_id and not self._recent.add(trade_id):
                self.feed.stats(self.symbol, Channel.TRADES).duplicate_trades += 1
                continue
            self.feed.trade(
                self.symbol,
                _ns(trade.get("timestamp")),
                trade_id,
                decimal_text(trade["price"]),
                decimal_text(trade["amount"]),
                Side.SELL if trade.get("side") == "sell" else Side.BUY,
            )
            self.emitted += 1
            emitted = True
        self._last = ring[-1]
        return emitted

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


class BookRange:
    """The prices a book is known at: bids down to `bid_floor`, asks up to `ask_ceiling`.

    None is no bound. A book started from a REST snapshot cut at the depth asked is only
    known down to the snapshot's last level on that side: the venue's diff stream then
    keeps every level inside that range exact, but the levels beyond it were never sent.
    """

    __slots__ = ("ask_ceiling", "bid_floor")

    def __init__(self, bid_floor: float | None = None, ask_ceiling: float | None = None) -> None:
        self.bid_floor = bid_floor
        self.ask_ceiling = ask_ceiling

    @classmethod
    def of_snapshot(cls, book: Mapping[str, Any], depth: int | None) -> BookRange:
        bids, asks = book.get("bids") or [], book.get("asks") or []
        floor = bids[-1][0] if depth is not None and len(bids) >= depth else None
        ceiling = asks[-1][0] if depth is not None and len(asks) >= depth else None
        return cls(floor, ceiling)

    def copy(self) -> BookRange:
        return BookRange(self.bid_floor, self.ask_ceiling)

    def tighten(self, bids: Any, asks: Any) -> None:
        """A side at ccxt's depth may have lost its worst levels to trimming: it ends at its last level."""
        if _at_depth(bids):
            last = bids[-1][0]
            self.bid_floor = last if self.bid_floor is None else max(self.bid_floor, last)
        if _at_depth(asks):
            last = asks[-1][0]
            self.ask_ceiling = last if self.ask_ceiling is None else min(self.ask_ceiling, last)

    def bids(self, side: Any) -> dict[float, Any]:
        floor = self.bid_floor
        return {p: a for p, a, *_ in side if floor is None or p >= floor}

    def asks(self, side: Any) -> dict[float, Any]:
        ceiling = self.ask_ceiling
        return {p: a for p, a, *_ in side if ceiling is None or p <= ceiling}


def _at_depth(side: Any) -> bool:
    depth = getattr(side, "_depth", None)  # ccxt's OrderBookSide: the depth it trims to
    return bool(side) and depth is not None and len(side) >= depth


class BookNormalizer:
    """Emits the venue book as a snapshot, then as deltas against what was last emitted.

    The book is diffed when ccxt says it changed (it resolved the book for its watchers) or
    when its fingerprint (nonce, timestamp, depth, best levels) moved. An empty book goes
    out only once ccxt has resolved it (a real empty book, not one waiting for its snapshot).
    A book started from a REST snapshot (`ranges`, filled by exchange.Hooks.on_rest_book)
    is published inside its known range only (see BookRange).

    A delta re-reads only the levels ccxt touched since the last poll when its book sides
    keep a change log (tracked_book); otherwise (an untracked book, a reset from a snapshot,
    a new book object or range source) both sides are rebuilt and diffed whole.
    """

    def __init__(
        self,
        feed: MarketFeed,
        symbol: str,
        resolved: set[int] | None = None,
        ranges: Mapping[str, BookRange] | None = None,
    ) -> None:
        self.feed = feed
        self.symbol = symbol
        # ids of the structures ccxt handed its watchers since the last poll round (see exchange.Hooks)
        self._resolved = resolved if resolved is not None else set()
        self._ranges = ranges if ranges is not None else {}
        self._range_source: BookRange | None = None  # the REST snapshot's range last adopted
        self._range: BookRange | None = None  # that range as trimming has narrowed it since
        self._bids: dict[float, Any] = {}
        self._asks: dict[float, Any] = {}
        self._sides: tuple[Any, Any] | None = None  # ccxt's book sides `_bids/_asks` were last brought to
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
        resolved = id(book) in self._resolved
        if not resolved and (
            (not bids and not asks) or (self._need_snapshot and self.symbol in self._ranges)
        ):
            # Nothing ccxt vouches for yet: an empty book waiting for its snapshot, or a REST-started
            # book after a reconnect, whose old levels stay until the new REST snapshot resets them.
            return False
        fingerprint = (
            book.get("nonce"),
            book.get("timestamp"),
            len(bids),
            len(asks),
            tuple(bids[0]) if bids else None,  # copies: ccxt mutates its level lists
            tuple(asks[0]) if asks else None,
        )
        if fingerprint == self._stale or (fingerprint == self._fingerprint and not resolved):
            return False
        self._fingerprint, self._stale = fingerprint, None
        bid_log, ask_log = take_changes(bids, self), take_changes(asks, self)
        ts = _ns(book.get("timestamp"))
        if self._need_snapshot:
            self._bids, self._asks = self._known(bids, asks)
            self.feed.book_snapshot(
                self.symbol, ts, _levels(self._bids), _levels(self._asks), self._resync_reason
            )
            self._need_snapshot, self._resync_reason = False, ""
            self._sides = (bids, asks)
            return True
        if bid_log is not None and ask_log is not None and self._same_book(bids, asks):
            bid_changes, ask_changes = self._logged(bids, asks, bid_log, ask_log)
        else:
            new_bids, new_asks = self._known(bids, asks)
            bid_changes, ask_changes = _diff(self._bids, new_bids), _diff(self._asks, new_asks)
            self._bids, self._asks = new_bids, new_asks
            self._sides = (bids, asks)
        if not bid_changes and not ask_changes:
            return False
        self.feed.book_delta(self.symbol, ts, bid_changes, ask_changes)
        return True

    def _same_book(self, bids: Any, asks: Any) -> bool:
        """The sides and range source of the last book sent: their change logs cover what changed since."""
        sides = self._sides
        return (
            sides is not None
            and sides[0] is bids
            and sides[1] is asks
            and self._ranges.get(self.symbol) is self._range_source
        )

    def _logged(
        self, bids: Any, asks: Any, bid_log: set[Any], ask_log: set[Any]
    ) -> tuple[list[Level], list[Level]]:
        """The changes at the logged prices only (what a full diff would find, see tracked_book).

        A level outside the known range counts as gone; the range only narrows to the side's
        last level, so a sent level that leaves it has left the side too, and is logged.
        """
        floor = ceiling = None
        if self._range is not None:
            self._range.tighten(bids, asks)
            floor, ceiling = self._range.bid_floor, self._range.ask_ceiling
        return (
            _logged_changes(self._bids, bids, sorted(bid_log, reverse=True), floor, None),
            _logged_changes(self._asks, asks, sorted(ask_log), None, ceiling),
        )

    def _known(self, bids: Any, asks: Any) -> tuple[dict[float, Any], dict[float, Any]]:
        """The levels to publish: all of them, or those inside the range of a REST-started book."""
        source = self._ranges.get(self.symbol)
        if source is not self._range_source:  # a new REST snapshot: its range starts afresh
            self._range_source, self._range = source, None if source is None else source.copy()
        if self._range is None:
            return {p: a for p, a, *_ in bids}, {p: a for p, a, *_ in asks}
        self._range.tighten(bids, asks)
        return self._range.bids(bids), self._range.asks(asks)


def _levels(side: Mapping[float, Any]) -> list[Level]:
    return [(decimal_text(price), decimal_text(size)) for price, size in side.items()]


def _logged_changes(
    sent: dict[float, Any], side: Any, prices: list[Any], low: float | None, high: float | None
) -> list[Level]:
    """Bring `sent` to `side` at `prices` (levels outside [low, high] count as gone); the changes."""
    changes: list[Level] = []
    for price in prices:
        size = level_size(side, price)
        if size is not None and not _inside(price, low, high):
            size = None
        if size is None:
            if price in sent:
                del sent[price]
                changes.append((decimal_text(price), "0"))
        elif sent.get(price) != size:
            sent[price] = size
            changes.append((decimal_text(price), decimal_text(size)))
    return changes


def _inside(price: Any, low: float | None, high: float | None) -> bool:
    return (low is None or price >= low) and (high is None or price <= high)


def _diff(old: Mapping[float, Any], new: Mapping[float, Any]) -> list[Level]:
    changes = [(decimal_text(p), decimal_text(s)) for p, s in new.items() if old.get(p) != s]
    changes.extend((decimal_text(p), "0") for p in old if p not in new)
    return changes


def _cached(exchange: Any, cache: str | None, symbol: str) -> Any:
    entries = getattr(exchange, cache, None) if cache else None
    return entries.get(symbol) if entries else None


class TickerNormalizer:
    """Emits a ticker whenever ccxt's ticker of the symbol (in `cache`) or its 24h statistics
    (in `stats_cache`, when the ticker stream states none) is a new object."""

    def __init__(
        self,
        feed: MarketFeed,
        symbol: str,
        cache: str,
        stats_cache: str | None = None,
        open_24h: bool = False,
    ) -> None:
        self.feed = feed
        self.symbol = symbol
        self.cache = cache  # "tickers" or "bidsasks"
        self.stats_cache = stats_cache  # "tickers" beside "bidsasks" (Binance USD-M), or None
        self.open_24h = open_24h  # ccxt's `open` is the venue's price 24 h ago (LiveSpec.ticker_open)
        self._last: object | None = None
        self._last_stats: object | None = None

    def poll(self, exchange: Any) -> bool:
        ticker = _cached(exchange, self.cache, self.symbol)
        stats = _cached(exchange, self.stats_cache, self.symbol)
        if ticker is self._last and stats is self._last_stats:
            return False
        # Stamped with the time of what changed (the later, when both did): a ticker made on a
        # 24hrTicker is that frame's, one made on a bookTicker that frame's.
        changed = [new for new, old in ((ticker, self._last), (stats, self._last_stats)) if new is not old]
        self._last, self._last_stats = ticker, stats
        quote: Mapping[str, Any] = ticker or {}
        volume: Mapping[str, Any] = (stats if self.stats_cache else ticker) or {}
        bid, bid_size = _best(quote.get("bid"), quote.get("bidVolume"))
        ask, ask_size = _best(quote.get("ask"), quote.get("askVolume"))
        times = [t for t in (new.get("timestamp") for new in changed if new) if t is not None]
        self.feed.ticker(
            self.symbol,
            _ns(max(times) if times else None),
            md.Ticker(
                best_bid=bid,
                best_bid_size=bid_size,
                best_ask=ask,
                best_ask_size=ask_size,
                last_price=decimal_text(_first(quote.get("last"), volume.get("last"))),
                base_volume_24h=_volume(volume.get("baseVolume")),
                quote_volume_24h=_volume(volume.get("quoteVolume")),
                open_24h=_price(volume.get("open")) if self.open_24h else "",
            ),
        )
        return True


def ticker_of(raw: Mapping[str, Any], open_24h: bool = False) -> md.Ticker:
    """A ccxt ticker structure (fetch_tickers') as our Ticker, as TickerNormalizer makes one; a
    best bid or ask the venue states without its size is left out (a Ticker's best price comes
    with its size: Deribit's book summaries have none), its last price kept. `open_24h`: ccxt's
    `open` is the venue's price 24 hours ago (LiveSpec.ticker_open), else the 24h open is left
    empty."""
    bid, bid_size = _best(raw.get("bid"), raw.get("bidVolume"))
    ask, ask_size = _best(raw.get("ask"), raw.get("askVolume"))
    if not bid_size:
        bid = ""
    if not ask_size:
        ask = ""
    return md.Ticker(
        best_bid=bid,
        best_bid_size=bid_size,
        best_ask=ask,
        best_ask_size=ask_size,
        last_price=decimal_text(raw.get("last")),
        base_volume_24h=_volume(raw.get("baseVolume")),
        quote_volume_24h=_volume(raw.get("quoteVolume")),
        open_24h=_price(raw.get("open")) if open_24h else "",
    )


def _first(value: Any, otherwise: Any) -> Any:
    return otherwise if value is None else value


def _volume(value: Any) -> str:
    """A 24h volume as ccxt parsed it; "" when absent or not a volume (negative, not finite)."""
    try:
        text = decimal_text(value)
    except (ArithmeticError, ValueError):
        return ""
    return text if text and Decimal(text).is_finite() and Decimal(text) >= 0 else ""


def _price(value: Any) -> str:
    """A price as ccxt parsed it; "" when absent or not a price (zero, negative, not finite)."""
    text = _volume(value)
    return text if text and Decimal(text) > 0 else ""


def funding_of(funding: Mapping[str, Any]) -> tuple[int, md.FundingRate] | None:
    """ccxt's funding rate structure as (event time in ns, our FundingRate); None without a rate.

    `fundingTimestamp` is the funding time the rate is paid at (Binance's premiumIndex
    `nextFundingTime`, OKX's `fundingTime`); a venue whose funding is continuous (Deribit) has none.
    """
    rate = decimal_text(funding.get("fundingRate"))
    if not rate:
        return None
    next_ms = funding.get("fundingTimestamp")
    return _ns(funding.get("timestamp")), md.FundingRate(
        rate=rate,
        next_funding_ns=int(next_ms) * 1_000_000 if next_ms is not None else 0,
        mark_price=decimal_text(funding.get("markPrice")),
        index_price=decimal_text(funding.get("indexPrice")),
    )


class FundingNormalizer:
    """Emits a perpetual's funding whenever ccxt's funding rate structure of it is a new object
    (ccxt's `fundingRates`: what watch_funding_rate keeps, or the connector's poll puts there)."""

    def __init__(self, feed: MarketFeed, symbol: str) -> None:
        self.feed = feed
        self.symbol = symbol
        self._last: object | None = None

    def poll(self, exchange: Any) -> bool:
        funding = _cached(exchange, "fundingRates", self.symbol)
        if funding is None or funding is self._last:
            return False
        self._last = funding
        found = funding_of(funding)
        if found is None:
            return False
        self.feed.funding_rate(self.symbol, *found)
        return True


def _best(price: Any, size: Any) -> tuple[str, str]:
    """A best bid or ask as (price, size); ("", "") when there is none (no price, or a price of 0)."""
    text = decimal_text(price)
    if not text or Decimal(text) == 0:
        return "", ""
    return text, decimal_text(size)


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
        return self.emit_rows(rows) if rows else False

    def emit_rows(self, rows: Any) -> bool:
        """Emit the rows (oldest first, the newest last) that changed since they were last emitted."""
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
    """A ccxt OHLCV row [ms, open, high, low, close, volume] as a Candle: no quote volume (None:
    not known, not 0, so a bar rebuilt from it has no VWAP rather than a VWAP of 0) and no trade
    count (0: the contract has no "not known" for it). A Binance kline row (LiveSpec.klines_method:
    [ms, open, high, low, close, volume, close ms, quote volume, trades, ...]) states both."""
    kline = len(row) >= 9
    d = decimal_or_zero
    return Candle(
        timeframe,
        int(row[0]) * 1_000_000,
        d(row[1]),
        d(row[2]),
        d(row[3]),
        d(row[4]),
        d(row[5]),
        d(row[7]) if kline else None,
        int(row[8]) if kline else 0,
        closed,
    )
