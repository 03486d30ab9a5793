"""The recorder's history of one venue as a time-ordered stream of live wire messages.

RecordedSource reads trades, book events, mark prices and bars of some symbols in [start_ns,
end_ns) and yields them as the live services saw them: trades, book events and marks as the
MarketEvent the venue streamed, bars as the bus.Bar the aggregator published. A backtest hands them to the
same converters and engine cores the live services run.

Times. A trade or book event is at its ts_event_ns; a bar at its close, open_time_ns plus its
timeframe (when the bar can first be known: replaying it at its open would look ahead; the
time the aggregator published it, ts_publish_ns, is not replayed). The range holds what
happened at start_ns and not what happened at end_ns.

The book. Each symbol's book opens the range as it stood at start_ns: one snapshot at start_ns
(trademesh.core.backtest.book_seed: the last recorded snapshot before it with the deltas since), so a
range that starts after the recorder's snapshot still has a book.

The marks (kind "mark", the recorder's mark_prices: a perpetual's mark as the venue stated it).
Each symbol's range opens with its last mark recorded in the STATED_MARK_FRESH_NS before
start_ns, at start_ns, as the engine would still take it then (SimExchange.replay_mark).

Order, stable and the same on every run over the same rows: by time; at equal times book
events, then trades, then marks, then bars; then by symbol; then by the table's key: a book event by
sequence (a delta before the snapshot of the same sequence), a trade by trade_id (in the
database's order of text, its primary key's), a bar by timeframe, shortest first.

Memory stays bounded: each (kind, symbol, timeframe) is one keyset-paginated query that reads
`chunk` rows at a time in its primary key's order (`WHERE (ts, key...) > (last...) ORDER BY
ts, key... LIMIT chunk`, an index range scan per page), and the queries are merged with a
heap holding one row of each. At most one page per query is held, never the range.

All pages are read on one connection in one read-only REPEATABLE READ transaction: the
iteration sees one snapshot of the tables, so rows the recorder commits meanwhile change
nothing. Break out of an iteration early with contextlib.aclosing() to give the connection
back at once.
"""

from __future__ import annotations

import contextlib
import heapq
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import asyncpg

from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.backtest.book_seed import book_at
from trademesh.core.backtest.source_rows import (
    BAR_COLUMNS,
    BOOK_COLUMNS,
    MARK_COLUMNS,
    TRADE_COLUMNS,
    bar_of,
    book_event_of,
    mark_of,
    trade_of,
)
from trademesh.core.domain.matching.exchange import STATED_MARK_FRESH_NS
from trademesh.core.domain.model import TIMEFRAME_LABELS, Timeframe
from trademesh.core.platform.errors import (
    FailedPrecondition,
    InvalidArgument,
    TrademeshError,
    Unavailable,
    shown,
)
from trademesh.core.platform.logs.redact import redact_url
from trademesh.marketdata.v1 import marketdata_pb2 as md

__all__ = ["CHUNK", "KINDS", "Recorded", "RecordedSource"]

# The kinds, in their order at equal times.
KINDS = ("book", "trade", "mark", "bar")
CHUNK = 5000
_CONNECT_TIMEOUT_S = 10.0
_QUERY_TIMEOUT_S = 120.0
_DATABASE_ERRORS = (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Recorded(NamedTuple):
    """One recorded event: its time (ns; a bar's close), its kind and its wire message."""

    ts_ns: int
    kind: str
    message: md.MarketEvent | bus.Bar


@dataclass(frozen=True)
class _Stream:
    """One keyset-paginated query: the rows of one kind, symbol (and timeframe) in range."""

    kind: str
    table: str
    columns: tuple[tuple[str, ...], tuple[str, ...]]  # key columns, then the others
    match: tuple[Any, ...]  # venue, symbol[, timeframe label]: $1.. of every statement
    low: int  # the time column's range [low, high)
    high: int
    offset: int  # the time column plus offset is the event's time
    convert: Callable[[Sequence[Any]], md.MarketEvent | bus.Bar]

    @property
    def _where(self) -> str:
        names = ("venue", "symbol", "timeframe")[: len(self.match)]
        return " AND ".join(f"{name} = ${n}" for n, name in enumerate(names, 1))

    @property
    def time_column(self) -> str:
        return self.columns[0][0]

    def first_sql(self) -> str:
        """Parameters: match, low, high, limit."""
        m, time = len(self.match), self.time_column
        return self._select(f"{time} >= ${m + 1} AND {time} < ${m + 2}", f"${m + 3}")

    def next_sql(self) -> str:
        """Parameters: match, high, limit, the last row's key."""
        m, keys = len(self.match), self.columns[0]
        after = ", ".join(f"${m + 3 + i}" for i in range(len(keys)))
        time = self.time_column  # its own bound too: partitions before the last row's are pruned
        return self._select(
            f"{time} >= ${m + 3} AND ({', '.join(keys)}) > ({after}) AND {time} < ${m + 1}", f"${m + 2}"
        )

    def _select(self, condition: str, limit: str) -> str:
        keys, others = self.columns
        return (
            f"SELECT {', '.join((*keys, *others))} FROM {self.table} "
            f"WHERE {self._where} AND {condition} ORDER BY {', '.join(keys)} LIMIT {limit}"
        )

    def summary_sql(self, what: str) -> str:
        """`what` ("count(*)", "min(ts), max(ts)") of the rows in range. Parameters: match, low, high.
        (min and max alone are two index lookups; with count(*) the range would be scanned.)"""
        m, time = len(self.match), self.time_column
        return (
            f"SELECT {what} FROM {self.table} "
            f"WHERE {self._where} AND {time} >= ${m + 1} AND {time} < ${m + 2}"
        )


class RecordedSource:
    """Async iterable of Recorded events (module docstring: times, order, memory).

    database: an asyncpg pool (a connection is taken from it per iteration) or a
    postgresql:// URL (a connection is opened per iteration). kinds: some of KINDS.
    timeframes: the bars' timeframes (Timeframe or label such as "1m"), required with "bar".
    chunk: rows per page of each query.
    """

    def __init__(
        self,
        database: asyncpg.Pool | str,
        venue: str,
        symbols: Sequence[str],
        start_ns: int,
        end_ns: int,
        kinds: Collection[str] = ("book", "trade"),
        timeframes: Iterable[Timeframe | str] = (),
        chunk: int = CHUNK,
    ) -> None:
        _check(venue, symbols, start_ns, end_ns, kinds, chunk)
        self._database = database
        self.venue = venue
        self.symbols = tuple(sorted(set(symbols)))
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.kinds = frozenset(kinds)
        self.timeframes = _timeframes(timeframes, "bar" in self.kinds)
        self.chunk = chunk
        self._streams = self._make_streams()

    def __aiter__(self) -> AsyncGenerator[Recorded, None]:
        return self._events()

    async def count(self) -> dict[str, int]:
        """Rows in range per kind asked for (a progress bar's total)."""
        totals = dict.fromkeys(sorted(self.kinds, key=KINDS.index), 0)
        for stream, (rows,) in await self._summaries(lambda _: "count(*)"):
            totals[stream.kind] += rows
        return totals

    async def bounds(self) -> tuple[int, int] | None:
        """The times of the range's first and last events; None when it has none."""
        firsts, lasts = [], []
        for stream, (low, high) in await self._summaries(lambda time: f"min({time}), max({time})"):
            if low is not None:
                firsts.append(low + stream.offset)
                lasts.append(high + stream.offset)
        return (min(firsts), max(lasts)) if firsts else None

    # ---- internals

    def _make_streams(self) -> list[_Stream]:
        """In the order of equal times: kind, symbol, timeframe."""
        venue, low, high = self.venue, self.start_ns, self.end_ns
        streams = [
            _market_stream(kind, venue, symbol, low, high)
            for kind in ("book", "trade", "mark")
            if kind in self.kinds
            for symbol in self.symbols
        ]
        for symbol in self.symbols:
            streams.extend(_bar_stream(venue, symbol, timeframe, low, high) for timeframe in self.timeframes)
        return streams

    async def _events(self) -> AsyncGenerator[Recorded, None]:
        async with self._connection() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            for seed in await self._books_at_start(conn):
                yield Recorded(self.start_ns, "book", seed)
            for mark in await self._marks_at_start(conn):
                yield Recorded(self.start_ns, "mark", mark)
            pagers = [_Pager(conn, stream, self.chunk, self._failure) for stream in self._streams]
            heap: list[tuple[int, int, Any]] = []
            for number, pager in enumerate(pagers):
                row = await pager.next()
                if row is not None:
                    heap.append((row[0] + pager.stream.offset, number, row))
            heapq.heapify(heap)
            while heap:
                ts_ns, number, row = heap[0]
                pager = pagers[number]
                yield Recorded(ts_ns, pager.stream.kind, pager.stream.convert(row))
                following = pager.pop()
                if following is None and not pager.done:
                    following = await pager.next()
                if following is None:
                    heapq.heappop(heap)
                else:
                    heapq.heapreplace(heap, (following[0] + pager.stream.offset, number, following))

    async def _books_at_start(self, conn: Any) -> list[md.MarketEvent]:
        """Each symbol's book as it stood at the start (trademesh.core.backtest.book_seed)."""
        if "book" not in self.kinds:
            return []
        seeds = []
        for symbol in self.symbols:
            try:
                seed = await book_at(conn, self.venue, symbol, self.start_ns)
            except _DATABASE_ERRORS as exc:
                raise self._failure(exc, "book_events") from exc
            if seed is not None:
                seeds.append(seed)
        return seeds

    async def _marks_at_start(self, conn: Any) -> list[md.MarketEvent]:
        """Each symbol's last mark of the STATED_MARK_FRESH_NS before the start, at the start."""
        if "mark" not in self.kinds:
            return []
        keys, others = MARK_COLUMNS
        sql = (
            f"SELECT {', '.join((*keys, *others))} FROM mark_prices WHERE venue = $1 AND symbol = $2 "
            "AND ts_event_ns >= $3 AND ts_event_ns < $4 ORDER BY ts_event_ns DESC LIMIT 1"
        )
        seeds = []
        for symbol in self.symbols:
            try:
                row = await conn.fetchrow(
                    sql, self.venue, symbol, self.start_ns - STATED_MARK_FRESH_NS, self.start_ns,
                    timeout=_QUERY_TIMEOUT_S,
                )  # fmt: skip
            except _DATABASE_ERRORS as exc:
                raise self._failure(exc, "mark_prices") from exc
            if row is not None:
                seed = mark_of(self.venue, symbol, row)
                seed.ts_event_ns = self.start_ns
                seeds.append(seed)
        return seeds

    async def _summaries(self, what: Callable[[str], str]) -> list[tuple[_Stream, tuple[Any, ...]]]:
        """Per stream, the values of `what(time column)` over its rows in range."""
        found = []
        async with self._connection() as conn:
            for stream in self._streams:
                sql, args = (
                    stream.summary_sql(what(stream.time_column)),
                    (*stream.match, stream.low, stream.high),
                )
                try:
                    record = await conn.fetchrow(sql, *args, timeout=_QUERY_TIMEOUT_S)
                except _DATABASE_ERRORS as exc:
                    raise self._failure(exc, stream.table) from exc
                found.append((stream, tuple(record)))
        return found

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[Any]:
        database = self._database
        if not isinstance(database, str):
            try:
                connection = await database.acquire(timeout=_CONNECT_TIMEOUT_S)
            except _DATABASE_ERRORS as exc:
                raise self._failure(exc, "") from exc
            try:
                yield connection
            finally:
                await database.release(connection)
            return
        try:
            connection = await asyncpg.connect(database, timeout=_CONNECT_TIMEOUT_S)
        except _DATABASE_ERRORS as exc:
            raise self._failure(exc, "") from exc
        try:
            yield connection
        finally:
            await connection.close()

    def _failure(self, exc: BaseException, table: str) -> TrademeshError:
        """A database error as trademesh.core.platform.errors, naming the URL redacted."""
        if isinstance(exc, asyncpg.UndefinedTableError):
            return FailedPrecondition(
                f"the database has no {table} table: `trademesh recorder` creates it when it starts"
            )
        where = redact_url(self._database) if isinstance(self._database, str) else "the pool's database"
        return Unavailable(f"PostgreSQL at {where} is unavailable: {type(exc).__name__}")


class _Pager:
    """One stream's rows, a page at a time."""

    def __init__(
        self, conn: Any, stream: _Stream, chunk: int, failure: Callable[[BaseException, str], TrademeshError]
    ) -> None:
        self.conn = conn
        self.stream = stream
        self.chunk = chunk
        self.failure = failure
        self.done = False
        self._rows: list[Any] = []
        self._index = 0
        self._first_sql, self._next_sql = stream.first_sql(), stream.next_sql()
        self._keys = len(stream.columns[0])

    def pop(self) -> Any:
        """The next row of the page held, None past its end."""
        self._index += 1
        return self._rows[self._index] if self._index < len(self._rows) else None

    async def next(self) -> Any:
        """The first row of the next page; None at the end of the stream."""
        stream = self.stream
        if self._rows:
            last = self._rows[-1]
            sql, args = self._next_sql, (*stream.match, stream.high, self.chunk, *last[: self._keys])
        else:
            sql, args = self._first_sql, (*stream.match, stream.low, stream.high, self.chunk)
        try:
            rows = await self.conn.fetch(sql, *args, timeout=_QUERY_TIMEOUT_S)
        except _DATABASE_ERRORS as exc:
            raise self.failure(exc, stream.table) from exc
        self.done = len(rows) < self.chunk
        if not rows:
            self._rows, self._index = [], 0
            self.done = True
            return None
        self._rows, self._index = rows, 0
        return rows[0]


def _market_stream(kind: str, venue: str, symbol: str, start_ns: int, end_ns: int) -> _Stream:
    if kind == "mark":
        return _Stream("mark", "mark_prices", MARK_COLUMNS, (venue, symbol), start_ns, end_ns, 0,
                       lambda row: mark_of(venue, symbol, row))  # fmt: skip
    if kind == "book":
        return _Stream("book", "book_events", BOOK_COLUMNS, (venue, symbol), start_ns, end_ns, 0,
                       lambda row: book_event_of(venue, symbol, row))  # fmt: skip
    return _Stream("trade", "trades", TRADE_COLUMNS, (venue, symbol), start_ns, end_ns, 0,
                   lambda row: trade_of(venue, symbol, row))  # fmt: skip


def _bar_stream(venue: str, symbol: str, timeframe: Timeframe, start_ns: int, end_ns: int) -> _Stream:
    """A bar closes timeframe.ns after it opens: the bars closing in range open that much earlier."""
    duration = timeframe.ns
    return _Stream(
        "bar",
        "bars",
        BAR_COLUMNS,
        (venue, symbol, timeframe.label),
        start_ns - duration,
        end_ns - duration,
        duration,
        lambda row: bar_of(venue, symbol, timeframe, row),
    )


def _check(
    venue: str, symbols: Sequence[str], start_ns: int, end_ns: int, kinds: Collection[str], chunk: int
) -> None:
    if not venue:
        raise InvalidArgument.field("venue", "is required")
    if isinstance(symbols, str):
        raise InvalidArgument.field("symbols", f"is one string ({shown(symbols)}), not a list of symbols")
    if not symbols:
        raise InvalidArgument.field("symbols", "is empty: name at least one symbol")
    if any(not symbol for symbol in symbols):
        raise InvalidArgument.field("symbols", "holds an empty symbol")
    if end_ns <= start_ns:
        raise InvalidArgument.field("end_ns", f"{end_ns} is not after start_ns {start_ns}")
    if isinstance(kinds, str) or not kinds:
        raise InvalidArgument.field("kinds", f"name some of {', '.join(KINDS)}")
    unknown = sorted(set(kinds) - set(KINDS))
    if unknown:
        raise InvalidArgument.field("kinds", f"{shown(unknown[0])} is not a kind; known: {', '.join(KINDS)}")
    if chunk < 1:
        raise InvalidArgument.field("chunk", f"{chunk} is not a positive number of rows")


def _timeframes(values: Iterable[Timeframe | str], required: bool) -> tuple[Timeframe, ...]:
    found: set[Timeframe] = set()
    for value in values:
        if isinstance(value, Timeframe):
            found.add(value)
        elif value in TIMEFRAME_LABELS:
            found.add(Timeframe.from_label(value))
        else:
            raise InvalidArgument.field(
                "timeframes",
                f"{shown(str(value), 16)} is not a timeframe; known: {', '.join(TIMEFRAME_LABELS)}",
            )
    if required and not found:
        raise InvalidArgument.field("timeframes", 'are required with kind "bar": name one, e.g. "1m"')
    if not required:
        return ()
    return tuple(sorted(found, key=lambda timeframe: timeframe.value))
