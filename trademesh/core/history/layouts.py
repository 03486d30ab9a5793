"""Rows of an archive's CSV as COPY text of a recorder table, a block of lines at a time, with
no Python bytecode per row (a year of 1m bars for ten symbols is 5.3 M rows):

- a block is read as text (latin-1: a character a byte, so the ASCII patterns match as on the
  bytes) and checked by one regular expression of its lines (multiline `^LINE$`, `findall` in C,
  its count of matches against the block's newlines); when it fails, `diagnose` names the first
  bad row, column and value;
- the matches' groups are made columns (`map` of `itemgetter`), and each COPY line is the
  tab-`join` of its fields (`map` over `zip` of the columns and the constants: C all the way),
  the lines joined, commas inside a group made tabs, and encoded once.

Times become nanoseconds by appending zeros to their digits (a ms time gets six): exact.
Decimals go through as their text, which PostgreSQL's NUMERIC keeps exactly; never a float. A
bar's VWAP is the bar service's (trademesh.core.domain.bar.vwap_text: quote volume over volume, exact
within 38 digits, else half-even at 16 places; NULL without a quote volume), a column at a
time (`vwap_texts`), and a kline with no volume (an interval without trades) is left out: no
bar, as live (docs/bars.md).

Binance's klines (open_time, open, high, low, close, volume, close_time, quote_volume, count,
taker_buy_volume, taker_buy_quote_volume, ignore) go to `bars`; its aggTrades (agg_trade_id,
price, quantity, first_trade_id, last_trade_id, transact_time, is_buyer_maker[, is_best_match])
to `trades`; a generic CSV's mapped columns to `bars`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import MAX_PREC, ROUND_05UP, ROUND_HALF_EVEN, Context, Decimal
from itertools import compress, repeat
from operator import add, eq, itemgetter
from typing import Any, cast

from trademesh.core.domain.bar import VWAP_PLACES, vwap_text
from trademesh.core.domain.decimals import MAX_DIGITS, WIDE, format_decimal
from trademesh.core.platform.errors import InvalidArgument, shown

__all__ = [
    "GENERIC_FIELDS",
    "TIME_UNITS",
    "Column",
    "Converted",
    "Layout",
    "aggtrades_layout",
    "generic_layout",
    "kline_layout",
    "parse_columns",
    "unit_of_digits",
    "vwap_texts",
]

# Digits appended to a time in each unit to make it nanoseconds.
TIME_UNITS: Mapping[str, int] = {"s": 9, "ms": 6, "us": 3, "ns": 0}
# Digits a time of each unit has (ms: up to the year 5138; Binance's are 13 digits, or 16 in µs).
_TIME_DIGITS = {"s": r"\d{1,11}+", "ms": r"\d{1,14}+", "us": r"\d{15,17}+", "ns": r"\d{1,19}+"}
_DECIMAL = r"-?+\d++(?:\.\d++)?+"
_UNSIGNED = r"\d++(?:\.\d++)?+"
_INT = r"\d++"
_ANY = r"[^,\n]*+"
_SIDE = r"[Tt]rue|[Ff]alse|TRUE|FALSE"
# The buyer made the book: the seller took it.
_TAKER = {"True": "sell", "true": "sell", "TRUE": "sell", "False": "buy", "false": "buy", "FALSE": "buy"}
_NULL = "\\N"
# A generic CSV's fields: the pattern of each, and whether it must be mapped.
GENERIC_FIELDS: Mapping[str, tuple[str, bool]] = {
    "ts": (_INT, True),
    "open": (_DECIMAL, True),
    "high": (_DECIMAL, True),
    "low": (_DECIMAL, True),
    "close": (_DECIMAL, True),
    "volume": (_DECIMAL, True),
    "quote_volume": (_DECIMAL, False),
    "trades": (_INT, False),
}


@dataclass(frozen=True)
class Column:
    name: str  # as an error names it
    pattern: str  # what a valid value matches
    # The capture group holding it (consecutive columns may share one: a run of fields the COPY
    # line takes as they are, their commas made tabs); None: not taken.
    group: int | None = None


# A COPY line's field: a constant, a group's text, a group as a time (zeros appended), a group
# as a trade's side (is_buyer_maker as the taker's side), or the bar's VWAP (Layout.vwap).
Part = tuple[str, str | int]


@dataclass(frozen=True)
class Converted:
    text: bytes  # COPY text, a line per row kept
    rows: int  # read
    times: list[int]  # each row's time in the file's unit (not ns), kept or not
    kept: int  # rows in `text`: a kline with no volume is left out


@dataclass(frozen=True)
class Layout:
    kind: str  # "kline", "aggTrades", "generic CSV": as an error names a row
    columns: tuple[Column, ...]  # every line has exactly these
    parts: tuple[Part, ...]  # the COPY line, field by field
    unit: str  # the times' unit
    # Bars: the groups of the quote volume (None: the file has none) and of the volume, whose
    # quotient is the "vwap" part; a row whose volume is 0 is left out.
    vwap: tuple[int | None, int] | None = None

    @functools.cached_property
    def rows(self) -> re.Pattern[str]:
        """Every valid line of a block (multiline mode), its groups captured."""
        pieces, group = [], None
        for column in self.columns:
            if column.group != group and group is not None:
                pieces.append(")")
            piece = f"(?:{column.pattern})"
            if column.group is not None and column.group != group:
                piece = "(" + piece
            pieces.append(("," if pieces else "") + piece)
            group = column.group
        if group is not None:
            pieces.append(")")
        return re.compile("(?m)^" + "".join(pieces) + "$", re.ASCII)

    @functools.cached_property
    def line(self) -> re.Pattern[bytes]:
        return re.compile(",".join(f"(?:{column.pattern})" for column in self.columns).encode())

    @property
    def zeros(self) -> str:
        return "0" * TIME_UNITS[self.unit]

    def convert(self, block: bytes) -> Converted | None:
        """A block of lines (each ending in a newline) as COPY text; None when a line is not valid."""
        text = block.decode("latin-1")  # a byte a character: the patterns match as on bytes
        found = self.rows.findall(text)
        if len(found) != text.count("\n"):
            return None
        if not found:
            return Converted(b"", 0, [], 0)
        groups = _columns(found, self.rows.groups)
        vwaps = None if self.vwap is None else self._vwaps(groups, *self.vwap)
        fields: list[Iterable[str]] = []
        times: Sequence[str] = ()
        for kind, value in self._fields:
            if isinstance(value, str):
                fields.append(repeat(value))
            elif kind == "side":
                fields.append(map(_TAKER.__getitem__, groups[value]))
            elif kind == "vwap":
                assert vwaps is not None
                fields.append(cast("Sequence[str]", vwaps))  # its None rows left out below
            elif kind == "time":
                times = groups[value]
                fields.append(map(add, times, repeat(self.zeros)) if self.zeros else times)
            else:
                fields.append(groups[value])
        kept = len(found)
        if vwaps is not None and None in vwaps:
            keep = list(map(bool, vwaps))  # a VWAP's text is never empty
            fields = [compress(field, keep) for field in fields]
            kept = sum(keep)
        lines = map("\t".join, zip(*fields, strict=False))
        copy = ("\n".join(lines) + "\n").replace(",", "\t").encode() if kept else b""
        return Converted(copy, len(found), list(map(int, times)), kept)

    @functools.cached_property
    def _fields(self) -> tuple[tuple[str, str | int], ...]:
        """The COPY line's fields, tab-separated: consecutive constants made one (as text)."""
        fields: list[tuple[str, str | int]] = []
        for kind, value in self.parts:
            if kind != "const":
                assert isinstance(value, int)
                fields.append((kind, value))
                continue
            assert isinstance(value, str)
            if fields and isinstance(fields[-1][1], str):
                fields[-1] = ("const", f"{fields[-1][1]}\t{value}")
            else:
                fields.append(("const", value))
        return tuple(fields)

    @staticmethod
    def _vwaps(groups: list[list[str]], quote: int | None, volume: int) -> Sequence[str | None]:
        """Each row's VWAP as COPY text (NULL without a quote volume); None for no volume."""
        if quote is None:
            return [None if Decimal(v) == 0 else _NULL for v in groups[volume]]
        return vwap_texts(groups[quote], groups[volume])

    def diagnose(self, line: bytes) -> str:
        """Why one line is not valid: its field count, or its first bad value and column."""
        text = line.decode("utf-8", "replace")
        values = text.split(",")
        if len(values) != len(self.columns):
            count = len(self.columns)
            return f"{len(values)} fields where this file's {self.kind} rows have {count}: {shown(text)}"
        for column, value in zip(self.columns, values, strict=True):
            if re.fullmatch(column.pattern, value) is None:
                return f"{column.name} {shown(value)} is not {_what(column.pattern)}"
        return f"not a {self.kind} row: {shown(text)}"


def _columns(found: list[Any], count: int) -> list[list[str]]:
    """findall's rows as columns, one per group (a single group's findall gives its values)."""
    if count == 1:
        return [found]
    return [list(map(itemgetter(n), found)) for n in range(count)]


def _what(pattern: str) -> str:
    if pattern in (_DECIMAL, _UNSIGNED):
        return "a plain decimal"
    if pattern == _SIDE:
        return "true or false"
    for unit, digits in _TIME_DIGITS.items():
        if pattern == digits:
            return f"a time in {unit} (the file's first row is in {unit})"
    return "a whole number"


def unit_of_digits(value: bytes) -> str:
    """A Binance time's unit from its digits: µs in Binance's spot archives since 2025, else ms."""
    return "us" if len(value.strip()) >= 15 else "ms"


# The quotient to MAX_DIGITS digits rounded toward zero unless its last digit would be 0 or 5
# (ROUND_05UP: an inexact one never ends in 0 or 5, so never falls on a half-way point of the
# VWAP's last place); a product never rounded.
_STICKY = Context(prec=MAX_DIGITS, rounding=ROUND_05UP, traps=[])
_PRODUCT = Context(prec=MAX_PREC, traps=[])
_QUANTUM = Decimal(1).scaleb(-VWAP_PLACES)
# Below 10**21 a quotient to MAX_DIGITS digits has VWAP_PLACES + 1 places or more.
_MOST_ADJUSTED = MAX_DIGITS - VWAP_PLACES - 2


def vwap_texts(quotes: Sequence[str], volumes: Sequence[str]) -> Sequence[str | None]:
    """Each row's VWAP by the bars' rule (trademesh.core.domain.bar.vwap_text, the same text), a
    column at a time: each decimal operation mapped over the block in C; None for no volume."""
    quote = list(map(Decimal, quotes))
    volume = list(map(Decimal, volumes))
    if all(volume):
        return _quotients(quote, volume)
    keep = list(map(bool, volume))
    texts = iter(_quotients(list(compress(quote, keep)), list(compress(volume, keep))))
    return [next(texts) if held else None for held in keep]


def _quotients(quote: list[Decimal], volume: list[Decimal]) -> list[str]:
    """vwap_text of each pair (no volume 0). A quotient to MAX_DIGITS rounded with ROUND_05UP,
    then rounded half-even to VWAP_PLACES, is the exact quotient rounded once: the first rounding
    never makes a half-way point that was not one, provided it keeps a place beyond VWAP_PLACES."""
    quotients = list(map(_STICKY.divide, quote, volume))
    if max(map(Decimal.adjusted, quotients), default=0) > _MOST_ADJUSTED:
        return list(map(vwap_text, quote, volume))
    exact = list(map(eq, map(_PRODUCT.multiply, quotients, volume), quote))
    rounded = list(map(Decimal.quantize, quotients, repeat(_QUANTUM), repeat(ROUND_HALF_EVEN), repeat(WIDE)))
    if min(map(Decimal.adjusted, rounded), default=0) >= -6:  # str() gives plain notation
        texts = list(map(str.rstrip, map(str.rstrip, map(str, rounded), repeat("0")), repeat(".")))
    else:
        texts = list(map(format_decimal, rounded))
    if any(exact):
        return [
            format_decimal(q) if held else text for q, held, text in zip(quotients, exact, texts, strict=True)
        ]
    return texts


def _plain(text: str, what: str) -> str:
    if not text or re.search(r"[\\\t\r\n,]", text):
        raise InvalidArgument.field(
            what, f"{shown(text)} is empty or holds a comma, tab, newline or backslash"
        )
    return text


def _const(*values: str) -> tuple[Part, ...]:
    return tuple(("const", value) for value in values)


def _series(venue: str, symbol: str, timeframe: str | None = None) -> tuple[Part, ...]:
    names = (_plain(venue, "venue"), _plain(symbol, "symbol"))
    return _const(*names, *(() if timeframe is None else (_plain(timeframe, "timeframe"),)))


def kline_layout(venue: str, symbol: str, timeframe: str, unit: str, publish_ns: int) -> Layout:
    columns = (
        Column("open_time", _TIME_DIGITS[unit], 0),
        *(Column(name, _UNSIGNED, 1) for name in ("open", "high", "low", "close")),
        Column("volume", _UNSIGNED, 2),
        Column("close_time", _INT),
        Column("quote_volume", _UNSIGNED, 3),
        Column("count", _INT, 4),
        Column("taker_buy_volume", _ANY),
        Column("taker_buy_quote_volume", _ANY),
        Column("ignore", _ANY),
    )
    values: tuple[Part, ...] = (("time", 0), ("group", 1), ("group", 2), ("group", 3), ("group", 4))
    parts = (
        *_series(venue, symbol, timeframe),
        *values,
        ("vwap", 0),
        *_const("t", str(publish_ns)),
    )
    return Layout("kline", columns, parts, unit, vwap=(3, 2))


def aggtrades_layout(venue: str, symbol: str, unit: str, width: int) -> Layout:
    """`width`: 8 (spot: is_best_match last) or 7 (futures)."""
    columns = (
        Column("agg_trade_id", _INT, 0),
        Column("price", _UNSIGNED, 0),
        Column("quantity", _UNSIGNED, 0),
        Column("first_trade_id", _INT),
        Column("last_trade_id", _INT),
        Column("transact_time", _TIME_DIGITS[unit], 1),
        Column("is_buyer_maker", _SIDE, 2),
        *((Column("is_best_match", _SIDE),) if width >= 8 else ()),
    )
    values: tuple[Part, ...] = (("time", 1), ("time", 1), ("group", 0), ("side", 2))
    return Layout("aggTrades", columns, (*_series(venue, symbol), *values), unit)


def parse_columns(text: str) -> dict[str, int]:
    """`ts=0,open=1,...` as field -> column index; InvalidArgument (`columns`) naming what is wrong."""
    mapping: dict[str, int] = {}
    for part in text.split(","):
        name, _, index = part.strip().partition("=")
        if name not in GENERIC_FIELDS:
            raise InvalidArgument.field(
                "columns", f"{shown(name)} is not a field; known: {', '.join(GENERIC_FIELDS)}"
            )
        if not index.isdigit() or name in mapping:
            raise InvalidArgument.field("columns", f"{shown(part)} is not FIELD=INDEX (each field once)")
        mapping[name] = int(index)
    missing = [name for name, (_, needed) in GENERIC_FIELDS.items() if needed and name not in mapping]
    if missing:
        raise InvalidArgument.field("columns", f"no column for {', '.join(missing)}")
    if len(set(mapping.values())) != len(mapping):
        raise InvalidArgument.field("columns", "two fields read the same column")
    return mapping


def generic_layout(
    venue: str,
    symbol: str,
    timeframe: str,
    mapping: Mapping[str, int],
    unit: str,
    publish_ns: int,
    width: int,
) -> Layout:
    """`width`: the file's number of columns (its first row's; at least those mapped)."""
    by_index = {index: name for name, index in mapping.items()}
    columns: list[Column] = []
    groups: dict[str, int] = {}
    for index in range(max(width, max(mapping.values()) + 1)):
        name = by_index.get(index)
        if name is None:
            columns.append(Column(f"column {index}", _ANY))
            continue
        groups[name] = len(groups)
        pattern = _TIME_DIGITS[unit] if name == "ts" else GENERIC_FIELDS[name][0]
        columns.append(Column(name, pattern, groups[name]))
    prices: tuple[Part, ...] = tuple(("group", groups[n]) for n in ("open", "high", "low", "close", "volume"))
    quote: Part = ("group", groups["quote_volume"]) if "quote_volume" in groups else ("const", _NULL)
    trades: Part = ("group", groups["trades"]) if "trades" in groups else ("const", "0")
    values = (("time", groups["ts"]), *prices, quote, trades)
    parts = (
        *_series(venue, symbol, timeframe),
        *values,
        ("vwap", 0),
        *_const("t", str(publish_ns)),
    )
    return Layout(
        "generic CSV", tuple(columns), parts, unit, vwap=(groups.get("quote_volume"), groups["volume"])
    )
