"""Rows of an archive's CSV as COPY text of a recorder table, a block of lines at a time, with
no Python bytecode per row but a bar's VWAP (a year of 1m bars for ten symbols is 5.3 M rows):

- a block is checked whole by one regular expression of its lines (`(?:LINE\\n)*+`, matched in C);
  when it fails, `diagnose` names the first bad row, column and value;
- its fields are split at once (commas and newlines alike), each column is a stride of them, and
  the COPY lines are joined back from the columns the table wants (`map` of `bytes.join` over
  `zip`: C all the way).

Times become nanoseconds by appending zeros to their digits (a ms time gets six): exact.
Decimals go through as their text, which PostgreSQL's NUMERIC keeps exactly; never a float. A
bar's VWAP is the bar service's (core.foundations.bar.vwap_text: quote volume over volume, exact
within 38 digits, else half-even at 16 places; NULL without a quote volume), one call a row, and
a kline with no volume (an interval without trades) is left out: no bar, as live (docs/bars.md).

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
from decimal import Decimal
from itertools import compress, repeat

from core.foundations.bar import vwap_text
from core.foundations.errors import InvalidArgument, shown

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
_TAKER = {
    b"True": b"sell",
    b"true": b"sell",
    b"TRUE": b"sell",
    b"False": b"buy",
    b"false": b"buy",
    b"FALSE": b"buy",
}
_NULL = b"\\N"
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
Part = tuple[str, bytes | int]


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
    def rows(self) -> re.Pattern[bytes]:
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
        return re.compile(("(?m)^" + "".join(pieces) + "$").encode())

    @functools.cached_property
    def line(self) -> re.Pattern[bytes]:
        return re.compile(",".join(f"(?:{column.pattern})" for column in self.columns).encode())

    @property
    def zeros(self) -> bytes:
        return b"0" * TIME_UNITS[self.unit]

    def convert(self, block: bytes) -> Converted | None:
        """A block of lines (each ending in a newline) as COPY text; None when a line is not valid."""
        found = self.rows.findall(block)
        if len(found) != block.count(b"\n"):
            return None
        if not found:
            return Converted(b"", 0, [], 0)
        groups = list(zip(*found, strict=True))
        vwaps = None if self.vwap is None else self._vwaps(groups, *self.vwap)
        pieces: list[Iterable[bytes]] = []
        times: Sequence[bytes] = ()
        for n, (kind, value) in enumerate(self.parts):
            tab = repeat(b"\t") if n else repeat(b"")
            if kind == "const":
                assert isinstance(value, bytes)
                pieces.append(repeat((b"\t" if n else b"") + value))
                continue
            assert isinstance(value, int)
            pieces.append(tab)
            if kind == "side":
                pieces.append(map(_TAKER.__getitem__, groups[value]))
                continue
            if kind == "vwap":
                assert vwaps is not None
                pieces.append([b"" if v is None else v for v in vwaps])
                continue
            pieces.append(groups[value])
            if kind == "time":
                times = groups[value]
                pieces.append(repeat(self.zeros))
        lines: Iterable[bytes] = map(b"".join, zip(*pieces, strict=False))
        kept = len(found)
        if vwaps is not None and None in vwaps:
            keep = [v is not None for v in vwaps]
            lines, kept = compress(lines, keep), sum(keep)
        text = b"\n".join(lines).replace(b",", b"\t") + b"\n" if kept else b""
        return Converted(text, len(found), list(map(int, times)), kept)

    @staticmethod
    def _vwaps(groups: list[tuple[bytes, ...]], quote: int | None, volume: int) -> list[bytes | None]:
        """Each row's VWAP as COPY text (NULL without a quote volume); None for no volume."""
        if quote is None:
            return [None if Decimal(v.decode()) == 0 else _NULL for v in groups[volume]]
        return list(map(_vwap, groups[quote], groups[volume]))

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


def _vwap(quote: bytes, volume: bytes) -> bytes | None:
    """A row's VWAP by the bars' rule; None when its volume is 0 (the row is left out)."""
    text = vwap_text(Decimal(quote.decode()), Decimal(volume.decode()))
    return text.encode() if text else None


def _plain(text: str, what: str) -> bytes:
    if not text or re.search(r"[\\\t\r\n,]", text):
        raise InvalidArgument.field(
            what, f"{shown(text)} is empty or holds a comma, tab, newline or backslash"
        )
    return text.encode()


def _const(*values: bytes) -> tuple[Part, ...]:
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
        *_const(b"t", str(publish_ns).encode()),
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
    trades: Part = ("group", groups["trades"]) if "trades" in groups else ("const", b"0")
    values = (("time", groups["ts"]), *prices, quote, trades)
    parts = (
        *_series(venue, symbol, timeframe),
        *values,
        ("vwap", 0),
        *_const(b"t", str(publish_ns).encode()),
    )
    return Layout(
        "generic CSV", tuple(columns), parts, unit, vwap=(groups.get("quote_volume"), groups["volume"])
    )
