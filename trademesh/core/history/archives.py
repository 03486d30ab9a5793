"""The archive files users have, opened as a stream of COPY-text chunks of a recorder table.

- Binance's public klines, BTCUSDT-1m-2024-01.zip (monthly) or BTCUSDT-1m-2024-01-15.zip (daily),
  spot or futures, with or without a header row, times in ms or (spot since 2025) in µs, to `bars`;
- Binance's aggTrades, BTCUSDT-aggTrades-2024-01.zip, to `trades`;
- either unzipped (.csv of the same name), and a generic CSV (`columns` maps its fields,
  `time_unit` says its times' unit) to `bars`.

A zip with a <name>.CHECKSUM file beside it (Binance ships one: "<sha256>  <name>") is checked
against it before a row is read. Anything wrong (a corrupt zip, a checksum mismatch, a
malformed row, a bar off its timeframe's grid) is trademesh.core.platform.errors.Corrupt naming the
file, row and value. Rows are numbered as the file's lines are, a header row included.
"""

from __future__ import annotations

import hashlib
import operator
import re
import zipfile
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

from trademesh.core.domain.model import Timeframe
from trademesh.core.history.layouts import (
    TIME_UNITS,
    Layout,
    aggtrades_layout,
    generic_layout,
    kline_layout,
    unit_of_digits,
)
from trademesh.core.history.symbols import binance_symbol, check_symbol, check_venue
from trademesh.core.platform.errors import Corrupt, InvalidArgument, shown
from trademesh.core.recorder.schema import BARS, TRADES, Table

__all__ = ["Archive", "Chunk", "ImportOptions", "open_archive"]

BLOCK_BYTES = 1 << 20
_DAY_NS = 86_400 * 10**9
_KLINES = re.compile(
    r"(?P<native>[A-Z0-9_]+)-(?P<interval>\w+)-(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv)"
)
_AGG_TRADES = re.compile(r"(?P<native>[A-Z0-9_]+)-aggTrades-(?P<date>\d{4}-\d{2}(?:-\d{2})?)\.(?:zip|csv)")
_BINANCE_DEFAULT = "binance"


@dataclass(frozen=True)
class ImportOptions:
    venue: str | None = None  # Binance's archives: binance (spot) unless named
    symbol: str | None = None  # default: the archive's own, made canonical
    timeframe: str | None = None  # a generic CSV's (required there)
    columns: Mapping[str, int] | None = None  # a generic CSV's field -> column
    time_unit: str = "ms"  # a generic CSV's
    publish_ns: int = 0  # the bars' ts_publish_ns: when they were imported


@dataclass(frozen=True)
class Chunk:
    text: bytes  # COPY text (trademesh.core.recorder.schema's columns of the table)
    rows: int  # read
    first_row: int  # the file's line number of its first row
    first_ns: int  # its earliest and latest partition times
    last_ns: int
    kept: int  # rows in `text` (a kline with no volume is left out)

    @property
    def days_ns(self) -> list[int]:
        """A time in each UTC day from its first to its last (the partitions it may need)."""
        return [*range(self.first_ns, self.last_ns, _DAY_NS), self.last_ns]


@dataclass(frozen=True)
class Archive:
    path: Path
    kind: str  # "kline", "aggTrades", "generic CSV"
    table: Table = field(repr=False)
    venue: str
    symbol: str
    timeframe: str | None  # bars'
    options: ImportOptions = field(repr=False)

    @property
    def grid(self) -> Timeframe | None:
        """The bars' timeframe, on whose open times (Timeframe.open_time_ns) their rows must be."""
        return None if self.timeframe is None else Timeframe.from_label(self.timeframe)

    def chunks(self) -> Iterator[Chunk]:
        """The file's rows, a block at a time; Corrupt at the first bad one."""
        for layout, block, row in self.blocks():
            yield self.convert(layout, block, row)

    def blocks(self) -> Iterator[tuple[Layout, bytes, int]]:
        """The file's blocks of lines unconverted (a header row dropped), each with the layout
        that converts it and its first row's number: `convert` may then run elsewhere."""
        self._verify_checksum()
        row, layout = 1, None
        for block in _blocks(self.path):
            if layout is None:
                block, row = self._skip_header(block, row)
                if not block:
                    continue
                layout = self._layout(block.split(b"\n", 1)[0].rstrip(b"\r"))
            yield layout, block, row
            row += block.count(b"\n")

    def _skip_header(self, block: bytes, row: int) -> tuple[bytes, int]:
        """A first line whose time field is no number (open_time, ts, ...) is a header."""
        first, _, rest = block.partition(b"\n")
        fields = first.rstrip(b"\r").split(b",")
        column = self._time_column()
        if len(fields) < 2 or len(fields) <= column or fields[column].strip().isdigit():
            return block, row
        return rest, row + 1

    def _time_column(self) -> int:
        if self.kind == "aggTrades":
            return 5
        return 0 if self.options.columns is None else self.options.columns["ts"]

    def _layout(self, first_line: bytes) -> Layout:
        options, publish = self.options, self.options.publish_ns
        fields = first_line.split(b",")
        if self.kind == "generic CSV":
            assert options.columns is not None and self.timeframe is not None
            return generic_layout(
                self.venue,
                self.symbol,
                self.timeframe,
                options.columns,
                options.time_unit,
                publish,
                len(fields),
            )
        time = fields[self._time_column()] if len(fields) > self._time_column() else first_line
        unit = unit_of_digits(time)
        if self.kind == "aggTrades":
            return aggtrades_layout(self.venue, self.symbol, unit, len(fields))
        assert self.timeframe is not None
        return kline_layout(self.venue, self.symbol, self.timeframe, unit, publish)

    def convert(self, layout: Layout, block: bytes, first_row: int) -> Chunk:
        """A block's rows as COPY text; Corrupt naming the first bad row."""
        if b"\r" in block:
            block = block.replace(b"\r", b"")
        converted = layout.convert(block)
        if converted is None:
            for offset, line in enumerate(block.split(b"\n")):
                if layout.line.fullmatch(line) is None:
                    raise self._bad_row(first_row + offset, layout.diagnose(line))
            raise self._bad_row(first_row, f"a {layout.kind} row is not valid")  # not reached
        times, scale = converted.times, 10 ** TIME_UNITS[layout.unit]
        grid = self.grid
        # In the file's unit: (t - offset) % length is 0 on the grid (a week's opens on Mondays).
        step, start = (0, 0) if grid is None else (grid.ns // scale, grid.offset_ns // scale)
        if step and any(map(operator.mod, map(operator.sub, times, repeat(start)), repeat(step))):
            offset = next(n for n, ts in enumerate(times) if (ts - start) % step)
            raise self._bad_row(
                first_row + offset,
                f"time {times[offset]} ({layout.unit}) is not on the {self.timeframe} grid",
            )
        if not times:
            return Chunk(b"", 0, first_row, 0, 0, 0)
        first_ns, last_ns = min(times) * scale, max(times) * scale
        return Chunk(converted.text, converted.rows, first_row, first_ns, last_ns, converted.kept)

    def _bad_row(self, row: int, why: str) -> Corrupt:
        return Corrupt(f"{self.path}: row {row}: {why}")

    def _verify_checksum(self) -> None:
        listed = self.path.with_name(self.path.name + ".CHECKSUM")
        if self.path.suffix != ".zip" or not listed.is_file():
            return
        words = listed.read_text(errors="replace").split()
        expected = words[0].lower() if words else ""
        digest = hashlib.sha256()
        with self.path.open("rb") as file:
            while block := file.read(BLOCK_BYTES):
                digest.update(block)
        if digest.hexdigest() != expected:
            raise Corrupt(
                f"{self.path}: sha256 {digest.hexdigest()} does not match {listed.name}'s {shown(expected)}"
            )


def open_archive(path: Path, options: ImportOptions) -> Archive:
    """The archive at `path` as `options` read it; InvalidArgument naming a bad option or name."""
    if not path.is_file():
        raise InvalidArgument.field("path", f"{path}: no such file")
    if options.columns is not None:
        return _generic(path, options)
    klines, trades = _KLINES.fullmatch(path.name), _AGG_TRADES.fullmatch(path.name)
    if trades is not None:
        venue = check_venue(options.venue or _BINANCE_DEFAULT)
        return Archive(
            path, "aggTrades", TRADES, venue, _symbol(trades["native"], venue, options), None, options
        )
    if klines is not None:
        venue = check_venue(options.venue or _BINANCE_DEFAULT)
        try:
            timeframe = Timeframe.from_label(klines["interval"]).label
        except InvalidArgument as exc:
            raise InvalidArgument.field(
                "timeframe", f"{path.name}: {exc.violations[0].description}"
            ) from None
        symbol = _symbol(klines["native"], venue, options)
        return Archive(path, "kline", BARS, venue, symbol, timeframe, options)
    raise InvalidArgument.field(
        "path",
        f"{path.name} is not a Binance archive's name (SYMBOL-1m-2024-01.zip, SYMBOL-aggTrades-2024-01.zip); "
        "a generic CSV needs --columns",
    )


def _generic(path: Path, options: ImportOptions) -> Archive:
    if options.venue is None or options.symbol is None or options.timeframe is None:
        raise InvalidArgument.field("columns", "a generic CSV needs --venue, --symbol and --timeframe")
    if options.time_unit not in TIME_UNITS:
        raise InvalidArgument.field(
            "time-unit", f"{shown(options.time_unit)} is not one of {', '.join(TIME_UNITS)}"
        )
    timeframe = Timeframe.from_label(options.timeframe).label
    venue, symbol = check_venue(options.venue), check_symbol(options.symbol)
    return Archive(path, "generic CSV", BARS, venue, symbol, timeframe, options)


def _symbol(native: str, venue: str, options: ImportOptions) -> str:
    if options.symbol is not None:
        return check_symbol(options.symbol)
    return binance_symbol(native, venue)


def _blocks(path: Path) -> Iterator[bytes]:
    """The file's bytes in blocks of whole lines, each ending in a newline (a zip's one CSV
    member unpacked); trailing blank lines dropped. Corrupt when the zip cannot be read."""
    try:
        if path.suffix == ".zip":
            yield from _zip_blocks(path)
        else:
            with path.open("rb") as file:
                yield from _lines(file.read)
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise Corrupt(f"{path}: not a readable zip archive: {exc}") from None


def _zip_blocks(path: Path) -> Iterator[bytes]:
    with zipfile.ZipFile(path) as archive:
        members = [info for info in archive.infolist() if not info.is_dir()]
        if len(members) != 1:
            names = ", ".join(info.filename for info in members) or "nothing"
            raise Corrupt(f"{path}: a zip archive of one CSV file was expected; it holds {names}")
        with archive.open(members[0]) as member:
            yield from _lines(member.read)


def _lines(read: Callable[[int], bytes]) -> Iterator[bytes]:
    carry, held = b"", None
    while block := read(BLOCK_BYTES):
        block = carry + block
        cut = block.rfind(b"\n") + 1
        carry = block[cut:]
        if cut:
            if held is not None:
                yield held
            held = block[:cut]
    last = (held or b"") + carry
    last = last.rstrip(b"\r\n")
    if last:
        yield last + b"\n"
