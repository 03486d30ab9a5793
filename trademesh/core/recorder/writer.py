"""One batch of bus entries into PostgreSQL, in one transaction; returns after COMMIT.

The batch goes in chunks of about CHUNK_EVENTS events. A chunk's trades, book events and
tickers are COPied straight into their tables (trademesh.core.recorder.copy_text) unless a value needs
the general path. There a chunk's rows are COPied into the connection's staging tables, then
one INSERT ... SELECT ... ON CONFLICT per table moves them into the table on its natural key
(the staged rows are deleted by the same statement, so the next chunk finds the staging table
empty). While PostgreSQL runs a chunk's COPY straight in and INSERTs, Python builds the next
chunk's rows: the two processes work at the same time instead of in turn. When a COPY straight
in fails (a row already recorded: a redelivered entry; or a value PostgreSQL refuses), the
transaction is rolled back and the whole batch written again, all staged.

Writing the same entries again changes nothing (or, for candles and bars, only what a newer
version replaces), so a bus entry delivered twice is recorded once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, NamedTuple

import asyncpg
from prometheus_client import Counter, Histogram

from trademesh.core.platform.bus.consumer import Entry
from trademesh.core.platform.errors import Corrupt, Unavailable
from trademesh.core.recorder.copy_text import COPY_COLUMNS, copy_text
from trademesh.core.recorder.database import data_error, transient_error
from trademesh.core.recorder.market_text import Copied, market_text
from trademesh.core.recorder.partitions import Partitions
from trademesh.core.recorder.rows import Row, chunks, rows_of
from trademesh.core.recorder.schema import Table

__all__ = ["CHUNK_EVENTS", "Writer"]

ROWS_STAGED = Counter("trademesh_recorder_rows_staged_total", "Rows copied for recording.", ["table"])
ROWS_WRITTEN = Counter(
    "trademesh_recorder_rows_written_total",
    "Rows inserted or replaced (staged minus duplicates and versions no newer).",
    ["table"],
)
ROWS_DIRECT = Counter(
    "trademesh_recorder_rows_copied_direct_total",
    "Rows COPied straight into their table (the others are staged and moved).",
    ["table"],
)
BATCH_SECONDS = Histogram(
    "trademesh_recorder_batch_seconds",
    "Time to write one batch, first COPY to COMMIT.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

CHUNK_EVENTS = 5000
_ACQUIRE_TIMEOUT_S = 10.0


class Writer:
    def __init__(
        self, pool: Any, partitions: Partitions, chunk_events: int = CHUNK_EVENTS, direct: bool = True
    ) -> None:
        self.pool = pool  # asyncpg.Pool; its connections have the staging tables
        self.partitions = partitions
        self.chunk_events = chunk_events
        self.direct = direct  # False: every row staged (tests and benchmarks compare the two paths)

    async def write(self, entries: list[Entry]) -> int:
        """Rows inserted or replaced. Corrupt when an entry cannot be rows or PostgreSQL refuses
        the data, Unavailable when it cannot be reached; nothing of the batch is kept either way."""
        started = time.perf_counter()
        try:
            written = await self._write(entries)
        except Exception as exc:
            if transient_error(exc):  # first: bad data also fails next time, and is caught then
                raise Unavailable(f"PostgreSQL unavailable: {type(exc).__name__}: {exc}") from exc
            if data_error(exc):
                raise Corrupt(f"PostgreSQL refused the batch: {exc}") from exc
            raise
        BATCH_SECONDS.observe(time.perf_counter() - started)
        return written

    async def _write(self, entries: list[Entry]) -> int:
        if self.direct:
            try:
                return await self._transaction(entries, direct=True)
            except _DirectRefused:
                pass  # a row already recorded, or a value PostgreSQL refuses: the batch again, staged
        return await self._transaction(entries, direct=False)

    async def _transaction(self, entries: list[Entry], direct: bool) -> int:
        at_once = self._at_once(entries) if direct else None
        async with self.pool.acquire(timeout=_ACQUIRE_TIMEOUT_S) as conn:
            try:
                if at_once is not None:
                    counts = await _copy_at_once(conn, at_once)
                else:
                    async with conn.transaction():
                        counts = await self._chunks(conn, entries, direct)
            except BaseException as exc:  # cancelled too: the connection may be mid-statement
                self.partitions.settle(committed=False)
                if not (isinstance(exc, (Corrupt, _DirectRefused)) or data_error(exc)):
                    _discard(conn)  # else it is rolled back and fine
                raise
            self.partitions.settle(committed=True)
        for count in counts:
            ROWS_STAGED.labels(count.table).inc(count.rows)
            ROWS_WRITTEN.labels(count.table).inc(count.written)
            if count.direct:
                ROWS_DIRECT.labels(count.table).inc(count.rows)
        return sum(count.written for count in counts)

    async def _chunks(self, conn: Any, entries: list[Entry], direct: bool) -> list[_Count]:
        parts = chunks(entries, self.chunk_events)
        counts: list[_Count] = []
        chunk = _prepared(next(parts, []), direct)
        while chunk is not None:
            copied, staged = chunk
            await self._stage(conn, staged)
            storing = asyncio.ensure_future(self._store(conn, copied, staged))
            await asyncio.sleep(0)  # lets it send its first statement, then build the next chunk meanwhile
            try:
                following = next(parts, None)
                chunk = None if following is None else _prepared(following, direct)
            finally:
                counts += await storing
        return counts

    def _at_once(self, entries: list[Entry]) -> list[Copied] | None:
        """The batch as COPY text when it is one chunk of market data whose days all have their
        partitions (a live batch at any usual rate): the whole transaction then goes in one
        round trip a table (_copy_at_once). None: the chunked path."""
        if any(envelope.WhichOneof("body") != "market" for _, envelope in entries):
            return None
        parts = chunks(entries, self.chunk_events)
        if next(parts, None) is None or next(parts, None) is not None:
            return None
        copied = market_text(entries)
        if not copied or not all(self.partitions.covered(c.table, c.times) for c in copied):
            return None
        return copied

    async def _stage(self, conn: Any, tables: list[tuple[Table, list[Row]]]) -> None:
        for table, rows in tables:
            await self.partitions.cover(conn, table, rows)
            await conn.copy_records_to_table(table.stage, records=rows)

    async def _store(
        self, conn: Any, copied: list[Copied], staged: list[tuple[Table, list[Row]]]
    ) -> list[_Count]:
        """COPies the encoded rows straight into their tables, then moves the staged ones."""
        counts = []
        for table, text, count, times in copied:
            await self.partitions.cover_times(conn, table, times)
            try:
                columns = COPY_COLUMNS[table.name]
                source = memoryview(text)  # a buffer: sent as it is (a file-like source is read in a thread)
                await conn.copy_to_table(table.name, source=source, columns=columns, format="text")
            except _REFUSED as exc:
                raise _DirectRefused from exc
            counts.append(_Count(table.name, count, count, direct=True))
        for table, staged_rows in staged:
            status = await conn.execute(table.insert_sql)
            counts.append(_Count(table.name, len(staged_rows), int(status.rsplit(" ", 1)[-1])))
        return counts


class _Count(NamedTuple):
    table: str
    rows: int  # copied or staged
    written: int  # inserted or replaced
    direct: bool = False


class _DirectRefused(Exception):
    """A COPY straight into a table failed; the writer writes the batch again, all staged."""


# A row already there (a redelivered entry) or a value PostgreSQL refuses.
_REFUSED = (asyncpg.UniqueViolationError, asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)


def _prepared(
    entries: list[Entry], direct: bool
) -> tuple[list[Copied], list[tuple[Table, list[Row]]]] | None:
    """A chunk's tables to COPY straight in, as COPY text, and its tables to stage: its market
    entries made text in one pass (trademesh.core.recorder.market_text) when they can be, else rows first;
    its other entries (the bars, signals, ... a read of every stream brings beside them) rows
    first, whichever way the market entries go."""
    if not direct:
        return _split(rows_of(entries).tables(), direct)
    market = [entry for entry in entries if entry[1].WhichOneof("body") == "market"]
    copied = market_text(market) if market else []
    if copied is None:
        return _split(rows_of(entries).tables(), direct)
    if len(market) == len(entries):
        return copied, []
    others = [entry for entry in entries if entry[1].WhichOneof("body") != "market"]
    others_copied, staged = _split(rows_of(others).tables(), direct)
    return copied + others_copied, staged


def _split(
    tables: list[tuple[Table, list[Row]]], direct: bool
) -> tuple[list[Copied], list[tuple[Table, list[Row]]]]:
    """The tables whose rows go straight in, with their COPY text; the tables to stage."""
    copied, staged = [], []
    for table, rows in tables:
        text = copy_text(table, rows) if direct else None
        if text is None:
            staged.append((table, rows))
        else:
            copied.append(Copied(table, text, len(rows), [row[table.time_index] for row in rows]))
    return copied, staged


async def _copy_at_once(conn: Any, copied: list[Copied]) -> list[_Count]:
    """The whole transaction as COPYs straight in, BEGIN sent with the first and COMMIT with the
    last (statements of one simple query): a table's COPY is one round trip, and BEGIN and COMMIT
    take none of their own. A COPY refused aborts the transaction and the rest of its query (the
    COMMIT) is not run; it is rolled back here, as conn.transaction() would. On any other error
    the caller discards the connection."""
    last = len(copied) - 1
    try:
        for index, (table, text, _, _) in enumerate(copied):
            statement = _COPY_SQL[table.name]
            if index == 0:
                statement = f"BEGIN; {statement}"
            if index == last:
                statement = f"{statement}; COMMIT"
            # copy_to_table's own step, with the statement made once: a buffer is sent as it is.
            await conn._copy_in(statement, memoryview(text), None)
    except _REFUSED as exc:
        await conn.execute("ROLLBACK")
        raise _DirectRefused from exc
    return [_Count(table.name, count, count, direct=True) for table, _, count, _ in copied]


def _copy_sql(table: str) -> str:
    columns = ", ".join(f'"{column}"' for column in COPY_COLUMNS[table])
    return f'COPY "{table}" ({columns}) FROM STDIN (FORMAT text)'


_COPY_SQL = {table: _copy_sql(table) for table in COPY_COLUMNS}


def _discard(conn: Any) -> None:
    """Closes a connection that may be broken, so the pool makes a new one."""
    with contextlib.suppress(asyncpg.InterfaceError):  # the pool already let go of a lost one
        conn.terminate()
