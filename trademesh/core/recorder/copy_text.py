"""The market tables' rows as PostgreSQL's COPY text, for a COPY straight into the table.

The writer's general path stages rows and moves them with INSERT ... SELECT ... ON CONFLICT
(trademesh.core.recorder.schema): two passes over every row in PostgreSQL. Trades, book events and
tickers, nearly all of the recorder's rows, can instead be COPied straight into their table,
which costs PostgreSQL about half (docs/benchmarks-history.md section 4). That is only right when it
stores exactly what the staged path would, so a chunk is encoded here only when every value is
one the two paths read alike:

- text (venue, symbol, trade id) without a backslash, tab, newline or carriage return (COPY's
  escapes);
- a trade's or a ticker's decimal plain (`tm_decimal`'s test: digits, '-' and '.');
- a book side's values of the characters a number may have (the staged path's plain cast lets
  "NaN", "Infinity" and exponents through, and so does an array literal), so no value can
  close the literal, quote, or spell NULL.

Anything else, a value PostgreSQL would refuse included, returns None and the chunk takes the
staged path, which refuses it with the errors it always gave. A row already recorded makes the
COPY fail on the table's key; the writer then stages that chunk too (trademesh.core.recorder.writer).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from trademesh.core.recorder.rows import Row
from trademesh.core.recorder.schema import BOOK, TICKERS, TRADES, Table

__all__ = ["COPY_COLUMNS", "ESCAPED", "FRAMING", "NUMBERS", "copy_text"]

_NULL = "\\N"
ESCAPED = re.compile(r"[\\\t\n\r]").search
_PLAIN = re.compile(r"[-0-9.]+").fullmatch
# The characters of a book side's values (space-joined: a space parts two values).
NUMBERS = re.compile(r"[-+0-9.eEaNIinfty ]*").fullmatch
FRAMING = str.maketrans("", "", "{}\t")

# The table's columns a COPY names, in row-tuple order (the staging columns).
COPY_COLUMNS: dict[str, list[str]] = {
    table.name: [name for name, _ in table.columns] for table in (TRADES, BOOK, TICKERS)
}


def copy_text(table: Table, rows: list[Row]) -> bytes | None:
    """The rows as COPY text for `table`, or None when the table or a value needs the staged path."""
    encode = _ENCODERS.get(table.name)
    if encode is None or not _texts_plain(rows):
        return None
    return encode(rows)


def _texts_plain(rows: list[Row]) -> bool:
    """Venue and symbol (the same few strings over a chunk) need no COPY escape."""
    names = {row[0] for row in rows} | {row[1] for row in rows}
    return not any(ESCAPED(name) for name in names)


def _trades(rows: list[Row]) -> bytes | None:
    lines = []
    for venue, symbol, ts_event, ts_recv, trade_id, price, size, side in rows:
        if not (_PLAIN(price) and _PLAIN(size)) or ESCAPED(trade_id):
            return None
        line = f"{venue}\t{symbol}\t{ts_event}\t{ts_recv}\t{trade_id}\t{price}\t{size}\t{side or _NULL}\n"
        lines.append(line)
    return "".join(lines).encode()


def _book(rows: list[Row]) -> bytes | None:
    lines, values = [], []
    for venue, symbol, ts_event, ts_recv, sequence, snapshot, bid_p, bid_s, ask_p, ask_s in rows:
        levels = f"{{{bid_p}}}\t{{{bid_s}}}\t{{{ask_p}}}\t{{{ask_s}}}"
        values.append(levels)
        # A level value holds no space (trademesh.core.recorder.rows): every space parts two values.
        head = f"{venue}\t{symbol}\t{ts_event}\t{ts_recv}\t{sequence}\t{'t' if snapshot else 'f'}"
        lines.append(f"{head}\t{levels.replace(' ', ',')}\n")
    if not _numbers_only("".join(values), len(rows)):
        return None
    return "".join(lines).encode()


def _numbers_only(levels: str, rows: int) -> bool:
    """Every side of a chunk's rows checked at once: `levels` joins each row's four
    "{side}" put between tabs; only the braces and tabs the rows were framed with may be there
    (counted), and what is left must be made of a number's characters."""
    framed = levels.count("{") == levels.count("}") == 4 * rows and levels.count("\t") == 3 * rows
    return framed and NUMBERS(levels.translate(FRAMING)) is not None


def _tickers(rows: list[Row]) -> bytes | None:
    lines = []
    for row in rows:
        values = row[4:]
        if not all(value == "" or _PLAIN(value) for value in values):
            return None
        fields = "\t".join([value or _NULL for value in values])
        lines.append(f"{row[0]}\t{row[1]}\t{row[2]}\t{row[3]}\t{fields}\n")
    return "".join(lines).encode()


_ENCODERS: dict[str, Callable[[list[Row]], bytes | None]] = {
    TRADES.name: _trades,
    BOOK.name: _book,
    TICKERS.name: _tickers,
}
