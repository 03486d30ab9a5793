"""One batch of bus entries into PostgreSQL, in one transaction; returns after COMMIT.

The batch goes in chunks of about CHUNK_EVENTS events. A chunk's trades, book events and
tickers are COPied straight into their tables (core.recorder.copy_text), inside a savepoint:
when that fails (a row already recorded, or a value PostgreSQL refuses) or cannot be encoded,
the savepoint is rolled back and those rows take the general path. There each chunk's rows are
COPied into the connection's staging tables, then one INSERT ... SELECT ... ON CONFLICT per
table moves them into the table on its natural key (the staged rows are deleted by the same
statement, so the next chunk finds the staging table empty). While PostgreSQL runs a chunk's
INSERT, Python builds the next chunk's rows: the two processes work at the same time instead
of in turn.

Writing the same entries again changes nothing (or, for candles and bars, only what a newer
version replaces), so a bus entry delivered twice is recorded once.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import time
from typing import Any

import asyncpg
from prometheus_client import Counter, Histogram

from core.bus.consumer import Entry
from core.errors import Corrupt, Unavailable
from core.recorder.copy_text import COPY_COLUMNS, copy_text
from core.recorder.database import data_error, transient_error
from core.recorder.partitions import Partitions
from core.recorder.rows import Row, Rows, chunks, rows_of
from core.recorder.schema import Table

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
        async with self.pool.acquire(timeout=_ACQUIRE_TIMEOUT_S) as conn:
            try:
                async with conn.transaction():
                    counts = await self._chunks(conn, entries)
            except BaseException as exc:  # cancelled too: the connection may be mid-statement
                self.partitions.settle(committed=False)
                if not (isinstance(exc, Corrupt) or data_error(exc)):  # else it is rolled back and fine
                    _discard(conn)
                raise
            self.partitions.settle(committed=True)
        for table_name, staged, written in counts:
            ROWS_STAGED.labels(table_name).inc(staged)
            ROWS_WRITTEN.labels(table_name).inc(written)
        return sum(written for _, _, written in counts)

    async def _chunks(self, conn: Any, entries: list[Entry]) -> list[tuple[str, int, int]]:
        """(table, staged, written) per chunk and table."""
        parts = chunks(entries, self.chunk_events)
        counts: list[tuple[str, int, int]] = []
        rows: Rows | None = rows_of(next(parts, []))
        while rows is not None:
            tables = await self._copy(conn, rows.tables(), counts)
            await self._stage(conn, tables)
            moving = asyncio.ensure_future(self._move(conn, tables))
            await asyncio.sleep(0)  # lets it send the INSERT, then build the next chunk meanwhile
            try:
                following = next(parts, None)
                rows = None if following is None else rows_of(following)
            finally:
                counts += await moving
        return counts

    async def _copy(
        self, conn: Any, tables: list[tuple[Table, list[Row]]], counts: list[tuple[str, int, int]]
    ) -> list[tuple[Table, list[Row]]]:
        """COPies what it can straight into its table (counted in `counts`); the rest, to stage."""
        staged = []
        for table, rows in tables:
            text = copy_text(table, rows) if self.direct else None
            if text is None or not await self._copied(conn, table, rows, text):
                staged.append((table, rows))
            else:
                counts.append((table.name, len(rows), len(rows)))
                ROWS_DIRECT.labels(table.name).inc(len(rows))
        return staged

    async def _copied(self, conn: Any, table: Table, rows: list[Row], text: bytes) -> bool:
        await self.partitions.cover(conn, table, rows)
        try:
            async with conn.transaction():  # a savepoint: a failure leaves the batch going
                await conn.copy_to_table(
                    table.name, source=io.BytesIO(text), columns=COPY_COLUMNS[table.name], format="text"
                )
        except (asyncpg.UniqueViolationError, asyncpg.DataError, asyncpg.IntegrityConstraintViolationError):
            return False  # the staged path records it once, or refuses it with its own error
        return True

    async def _stage(self, conn: Any, tables: list[tuple[Table, list[Row]]]) -> None:
        for table, rows in tables:
            await self.partitions.cover(conn, table, rows)
            await conn.copy_records_to_table(table.stage, records=rows)

    async def _move(self, conn: Any, tables: list[tuple[Table, list[Row]]]) -> list[tuple[str, int, int]]:
        counts = []
        for table, rows in tables:
            status = await conn.execute(table.insert_sql)
            counts.append((table.name, len(rows), int(status.rsplit(" ", 1)[-1])))
        return counts


def _discard(conn: Any) -> None:
    """Closes a connection that may be broken, so the pool makes a new one."""
    with contextlib.suppress(asyncpg.InterfaceError):  # the pool already let go of a lost one
        conn.terminate()
