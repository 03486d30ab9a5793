"""A chunk of market entries straight to COPY text, in one pass over the events (the hot path).

trademesh.core.recorder.rows makes each event a row tuple and trademesh.core.recorder.copy_text then makes the
tuples COPY text: two passes and a tuple per event, about a third of the recorder's CPU an
event. Here trades, book events and tickers, nearly all of the bus, become their tables' COPY
text as they are read, under copy_text's rules exactly (its module says which values they
are). Anything those rules or rows.py would not take as it is (another payload, a value that
needs the staged path, a level value holding a space: Corrupt there) returns None: the writer
then takes the chunk the general way, which refuses or stages it with the errors it always
gave.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.consumer import Entry
from trademesh.core.recorder.copy_text import ESCAPED, FRAMING, NUMBERS
from trademesh.core.recorder.schema import BOOK, TICKERS, TRADES, Table
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["Copied", "market_text"]

_NULL = "\\N"
_SIDES = {common.SIDE_BUY: "buy", common.SIDE_SELL: "sell"}
# Plain decimals (copy_text's test: digits, '-' and '.'), space-parted.
_PLAIN_VALUES = re.compile(r"[-0-9.]+(?: [-0-9.]+)*").fullmatch


class Copied(NamedTuple):
    """One table's part of a chunk: its COPY text, the rows it holds, their event times."""

    table: Table
    text: bytes
    rows: int
    times: list[int]


def market_text(entries: Iterable[Entry]) -> list[Copied] | None:
    """The entries' trades, book events and tickers as COPY text per table; None when an entry
    is not market data, or an event or a value is not one copy_text takes as it is."""
    text = _Text()
    for _, envelope in entries:
        if envelope.WhichOneof("body") != "market" or not text.add(envelope.market.events):
            return None
    return text.copied()


class _Text:
    def __init__(self) -> None:
        self.trades: list[str] = []
        self.trade_times: list[int] = []
        self.trade_values: list[str] = []  # prices and sizes: each must be plain
        self.trade_ids: list[str] = []
        self.book: list[str] = []
        self.book_times: list[int] = []
        self.levels: list[str] = []  # each row's four "{side}", as copy_text checks them
        self.spaces = 0  # the spaces that part two values in `levels`
        self.tickers: list[str] = []
        self.ticker_times: list[int] = []
        self.ticker_values: list[str] = []
        self.names: set[str] = set()

    def add(self, events: Iterable[md.MarketEvent]) -> bool:
        trades, trade_times, trade_values, trade_ids = (
            self.trades.append,
            self.trade_times.append,
            self.trade_values.extend,
            self.trade_ids.append,
        )
        book, book_times, levels = self.book.append, self.book_times.append, self.levels.append
        names = self.names.add
        for event in events:
            kind = event.WhichOneof("payload")
            venue, symbol = event.venue, event.symbol
            ts_event, ts_recv = event.ts_event_ns, event.ts_recv_ns
            names(venue)
            names(symbol)
            side: md.BookDelta | md.BookSnapshot
            if kind == "book_delta":
                snapshot, side = "f", event.book_delta
            elif kind == "trade":
                trade = event.trade
                trade_id, price, size = trade.trade_id, trade.price, trade.size
                taker = _SIDES.get(trade.taker_side) or _NULL
                trades(f"{venue}\t{symbol}\t{ts_event}\t{ts_recv}\t{trade_id}\t{price}\t{size}\t{taker}\n")
                trade_times(ts_event)
                trade_values((price, size))
                trade_ids(trade_id)
                continue
            elif kind == "book_snapshot":
                snapshot, side = "t", event.book_snapshot
            elif kind == "ticker":
                self._ticker(event, venue, symbol, ts_event, ts_recv)
                continue
            else:
                return False
            bid_p, bid_s, bids = self._side(side.bids)
            ask_p, ask_s, asks = self._side(side.asks)
            if bid_p is None or ask_p is None:
                return False
            row_levels = f"{{{bid_p}}}\t{{{bid_s}}}\t{{{ask_p}}}\t{{{ask_s}}}"
            levels(row_levels)
            if bids > 1 or asks > 1:  # space-joined values: commas in the array literal
                self.spaces += 2 * max(0, bids - 1) + 2 * max(0, asks - 1)
                row_levels = row_levels.replace(" ", ",")
            head = f"{venue}\t{symbol}\t{ts_event}\t{ts_recv}\t{side.sequence}\t{snapshot}"
            book(f"{head}\t{row_levels}\n")
            book_times(ts_event)
        return True

    @staticmethod
    def _side(levels: Sequence[md.BookLevel]) -> tuple[str | None, str, int]:
        """Prices and sizes space-joined, as trademesh.core.recorder.rows' _side (None: a value holds a
        space, which rows.py refuses)."""
        count = len(levels)
        if count == 1:
            level = levels[0]
            return level.price, level.size, 1
        if count == 0:
            return "", "", 0
        pairs = [(level.price, level.size) for level in levels]
        prices, sizes = " ".join([p for p, _ in pairs]), " ".join([s for _, s in pairs])
        if prices.count(" ") != count - 1 or sizes.count(" ") != count - 1:
            return None, "", count
        return prices, sizes, count

    def _ticker(self, event: md.MarketEvent, venue: str, symbol: str, ts_event: int, ts_recv: int) -> None:
        t = event.ticker
        values = (t.best_bid, t.best_bid_size, t.best_ask, t.best_ask_size, t.last_price,
                  t.base_volume_24h, t.quote_volume_24h, t.open_24h)  # fmt: skip
        self.ticker_values.extend([value for value in values if value])
        fields = "\t".join([value or _NULL for value in values])
        self.tickers.append(f"{venue}\t{symbol}\t{ts_event}\t{ts_recv}\t{fields}\n")
        self.ticker_times.append(ts_event)

    def copied(self) -> list[Copied] | None:
        if any(ESCAPED(name) for name in self.names):
            return None
        out = []
        if self.trades:
            if not _plain(self.trade_values) or ESCAPED("".join(self.trade_ids)):
                return None
            out.append(Copied(TRADES, "".join(self.trades).encode(), len(self.trades), self.trade_times))
        if self.book:
            if not self._levels_plain():
                return None
            out.append(Copied(BOOK, "".join(self.book).encode(), len(self.book), self.book_times))
        if self.tickers:
            if self.ticker_values and not _plain(self.ticker_values):
                return None
            out.append(Copied(TICKERS, "".join(self.tickers).encode(), len(self.tickers), self.ticker_times))
        return out

    def _levels_plain(self) -> bool:
        """copy_text's check of the book sides, and rows.py's (no value holds a space)."""
        levels, rows = "".join(self.levels), len(self.levels)
        framed = levels.count("{") == levels.count("}") == 4 * rows and levels.count("\t") == 3 * rows
        bare = levels.translate(FRAMING)
        return framed and bare.count(" ") == self.spaces and NUMBERS(bare) is not None


def _plain(values: list[str]) -> bool:
    """Every value a plain decimal (copy_text's test, one value at a time): digits, '-', '.'
    (a value holding a space would part in two: the spaces are counted)."""
    joined = " ".join(values)
    return joined.count(" ") == len(values) - 1 and _PLAIN_VALUES(joined) is not None
