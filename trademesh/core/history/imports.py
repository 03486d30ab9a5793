"""Archives into the recorder's tables, one file per transaction, idempotent on natural keys.

Each chunk of a file (trademesh.core.history.archives: COPY text, a bar's VWAP computed by the bars' rule
and a kline with no volume left out, trademesh.core.history.layouts) gets the daily partitions its rows
need, made as the recorder makes them (trademesh.core.recorder.partitions), then goes in one of two ways:
- vacant: when the table holds no row of the chunk's venue, symbol (timeframe) and time span
  (one probe on the primary key), it is COPied into the table itself, under a savepoint; were a
  row to conflict after all (another import meanwhile, a row twice in the file), the savepoint is
  rolled back and the chunk goes the second way;
- staged: COPied into a temporary table of the same columns, then moved with INSERT ... ON
  CONFLICT DO NOTHING: a row already held (a file imported again, the recorder's own live bar) is
  kept as it is.
So a first import costs about a plain COPY, and importing the same file again adds nothing. The
whole file commits at once: an error anywhere leaves nothing of it (and rerunning the import of a
directory redoes only the files that did not commit, quickly for the others).

Values are never floats: COPY text carries the archive's decimal digits into NUMERIC.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import re
import signal
import time
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from trademesh.core.history.archives import Archive, Chunk
from trademesh.core.history.layouts import Layout
from trademesh.core.platform.errors import Corrupt
from trademesh.core.recorder.partitions import Partitions
from trademesh.core.recorder.schema import Table

__all__ = ["Imported", "Importer", "move_sql"]

log = logging.getLogger(__name__)

_REFUSED = (asyncpg.UniqueViolationError,)
_DATA = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError)
_COPY_LINE = re.compile(r"COPY \S+, line (\d+)")
# The key columns of each table a probe and the staged move name, after venue and symbol.
_SERIES = {"bars": ("timeframe",), "trades": ()}
# A block read (its archive, layout, bytes and first row; None: the archive's end), an error reading
# it, or None after the last archive.
_Read = tuple[Archive, tuple[Layout, bytes, int] | None] | Exception | None
# Blocks converted ahead by worker processes (about 2 MiB each, the block and its COPY text): a
# reserve for PostgreSQL when a worker is kept off a core for a while (docs/history.md, Speed).
_AHEAD = 8


@dataclass(frozen=True)
class Imported:
    path: Path
    table: str
    venue: str
    symbol: str
    timeframe: str | None
    rows: int  # read from the file
    added: int  # new in the table (rows minus those already held)
    first_ns: int | None
    last_ns: int | None
    seconds: float


class Importer:
    """Imports archives over one connection (the recorder's migrations applied: `prepare`);
    `close` stops its worker process."""

    def __init__(self, conn: Any, workers: int = 0) -> None:
        """`workers`: processes converting blocks beside this one (0, the default: converted here,
        in turn; a worker measured no faster on 2 shared cores: docs/benchmarks.md, History import)."""
        self._conn = conn
        self._partitions = Partitions()
        self._workers = workers
        # Blocks converted or converting beyond the one being stored (in turn: the next one).
        self._ahead = _AHEAD if workers else 1
        self._pool: ProcessPoolExecutor | None = None

    async def prepare(self) -> None:
        from trademesh.core.recorder.migrate import migrate

        await migrate(self._conn)
        await self._partitions.load(self._conn)

    async def run(self, archive: Archive) -> Imported:
        async with contextlib.aclosing(self.run_all([archive])) as files:
            async for done in files:
                return done
        raise AssertionError("run_all gave no file")  # not reached

    async def run_all(self, archives: Iterable[Archive]) -> AsyncGenerator[Imported, None]:
        """Each archive imported in turn (a transaction each), as it commits. With worker processes,
        the next file's first blocks are converted while this one's last are stored: the two cores
        stay busy across files (docs/benchmarks.md, History import)."""
        converted = self._converted(archives)
        try:
            while (first := await anext(converted, None)) is not None:
                yield await self._file(*first, converted)
        finally:
            await converted.aclose()

    async def _file(
        self, archive: Archive, chunk: Chunk | None, converted: AsyncIterator[tuple[Archive, Chunk | None]]
    ) -> Imported:
        """One archive from its first converted chunk (None: it has none) to its end in `converted`."""
        started = time.perf_counter()
        rows = added = 0
        first: int | None = None
        last: int | None = None
        try:
            async with self._conn.transaction():
                while chunk is not None:
                    added += await self._chunk(archive, chunk)
                    rows += chunk.rows
                    if chunk.rows:
                        first = chunk.first_ns if first is None else min(first, chunk.first_ns)
                        last = chunk.last_ns if last is None else max(last, chunk.last_ns)
                    _, chunk = await anext(converted)
        except BaseException:
            self._partitions.settle(committed=False)
            raise
        self._partitions.settle(committed=True)
        seconds = time.perf_counter() - started
        table = archive.table.name
        return Imported(
            archive.path,
            table,
            archive.venue,
            archive.symbol,
            archive.timeframe,
            rows,
            added,
            first,
            last,
            seconds,
        )

    async def _converted(
        self, archives: Iterable[Archive]
    ) -> AsyncGenerator[tuple[Archive, Chunk | None], None]:
        """Each archive's chunks in order, then (archive, None). With worker processes, the next
        blocks (the next file's too) are converted there while this one is stored (up to _AHEAD
        of them): reading and PostgreSQL's COPY overlap (on two cores, the import then
        takes about the longer of the two). The block after those is read meanwhile on a thread
        (the unzip releases the GIL), so no read stands between two COPYs. An error reading ahead
        is raised in its turn."""
        self._start_pool()
        blocks = _blocks(archives)
        loop = asyncio.get_running_loop()
        ahead: deque[tuple[Archive | None, asyncio.Future[Chunk | None]]] = deque()
        reading: asyncio.Future[_Read] | None = loop.run_in_executor(None, _read, blocks)
        try:
            while True:
                while len(ahead) < self._ahead and reading is not None:
                    read = await reading
                    reading = (
                        None
                        if read is None or isinstance(read, Exception)
                        else loop.run_in_executor(None, _read, blocks)
                    )
                    if (item := self._next(read)) is not None:
                        ahead.append(item)
                if not ahead:
                    return
                archive, future = ahead.popleft()
                chunk = await future
                assert archive is not None
                yield archive, chunk
        finally:
            for _, future in ahead:
                future.cancel()
            await asyncio.gather(*(future for _, future in ahead), return_exceptions=True)
            if reading is not None:  # the generator runs on the thread: let it finish first
                await asyncio.gather(reading, return_exceptions=True)
            blocks.close()

    def _next(self, read: _Read) -> tuple[Archive | None, asyncio.Future[Chunk | None]] | None:
        """The read block's conversion under way (an archive's end: done, None); None after the last."""
        if read is None:
            return None
        done: asyncio.Future[Chunk | None] = asyncio.get_running_loop().create_future()
        if isinstance(read, Exception):  # a file read ahead is corrupt: raised when its turn comes
            done.set_exception(read)
            return None, done
        archive, block = read
        if block is None:
            done.set_result(None)
            return archive, done
        return archive, self._convert(archive, block)

    def _convert(self, archive: Archive, block: tuple[Layout, bytes, int]) -> asyncio.Future[Chunk | None]:
        if self._pool is None:
            done: asyncio.Future[Chunk | None] = asyncio.get_running_loop().create_future()
            try:
                done.set_result(archive.convert(*block))
            except Exception as exc:
                done.set_exception(exc)
            return done
        return asyncio.get_running_loop().run_in_executor(self._pool, archive.convert, *block)

    def _start_pool(self) -> None:
        """The worker processes, forked now (before the reading thread runs: a fork copies no lock
        it holds). fork: the child only converts blocks (no loop, socket or thread of ours runs in
        it), and starts at once where spawn would import the CLI again."""
        if self._workers == 0 or self._pool is not None:
            return
        context = multiprocessing.get_context("fork")
        self._pool = ProcessPoolExecutor(self._workers, mp_context=context, initializer=_worker_start)
        self._pool.submit(int)  # with fork, the first submit starts every process

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None

    async def _chunk(self, archive: Archive, chunk: Chunk) -> int:
        table = archive.table
        if not chunk.kept:
            return 0
        await self._partitions.cover_times(self._conn, table, chunk.days_ns)
        try:
            if await self._vacant(archive, chunk):
                try:
                    async with self._conn.transaction():  # a savepoint
                        await self._copy(table.name, chunk.text, table)
                        return chunk.kept
                except _REFUSED:
                    log.info("history: %s rows from %d conflict; staged", archive.path, chunk.first_row)
            return await self._staged_move(table, chunk.text)
        except _DATA as exc:
            raise Corrupt(f"{archive.path}: {_where(exc, chunk)}PostgreSQL refuses it: {exc}") from None

    async def _vacant(self, archive: Archive, chunk: Chunk) -> bool:
        series = _SERIES[archive.table.name]
        time_column = archive.table.time_column
        keys = ["venue", "symbol", *series]
        match = " AND ".join(f"{key} = ${n}" for n, key in enumerate(keys, 1))
        low, high = len(keys) + 1, len(keys) + 2
        sql = (
            f"SELECT NOT EXISTS (SELECT 1 FROM {archive.table.name} WHERE {match} "
            f"AND {time_column} >= ${low} AND {time_column} <= ${high})"
        )
        values = [archive.venue, archive.symbol, *([archive.timeframe] if series else [])]
        vacant: bool = await self._conn.fetchval(sql, *values, chunk.first_ns, chunk.last_ns)
        return vacant

    async def _copy(self, name: str, text: bytes, table: Table) -> None:
        columns = [column for column, _ in table.columns]
        await self._conn.copy_to_table(name, source=memoryview(text), columns=columns, format="text")

    async def _staged_move(self, table: Table, text: bytes) -> int:
        """The text COPied into a stage, then moved into the table: a row held kept as it is."""
        stage = f"history_stage_{table.name}"
        # The table's own types: COPY reads the decimals into NUMERIC as it would. Made in the
        # file's transaction, so one rolled back takes it along: made again (IF NOT EXISTS) each time.
        await self._conn.execute(
            f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table.name} INCLUDING DEFAULTS) "
            "ON COMMIT DELETE ROWS"
        )
        await self._copy(stage, text, table)
        status = await self._conn.execute(move_sql(table, stage))
        await self._conn.execute(f"TRUNCATE {stage}")  # cheaper than a DELETE ... RETURNING a row
        return int(status.rsplit(" ", 1)[-1])


def move_sql(table: Table, stage: str) -> str:
    """Copies `stage`'s rows into `table`, keeping a row the table holds as it is."""
    names = ", ".join(column for column, _ in table.columns)
    return f"INSERT INTO {table.name} ({names}) SELECT {names} FROM {stage} ON CONFLICT DO NOTHING"


def _where(exc: BaseException, chunk: Chunk) -> str:
    """The file's row PostgreSQL's COPY context names ("COPY bars, line 5, ..."), as "row N: "."""
    found = _COPY_LINE.search(str(getattr(exc, "context", None) or getattr(exc, "where", None) or ""))
    return "" if found is None else f"row {chunk.first_row + int(found[1]) - 1}: "


def _blocks(
    archives: Iterable[Archive],
) -> Generator[tuple[Archive, tuple[Layout, bytes, int] | None], None, None]:
    """Each archive's blocks, then (archive, None)."""
    for archive in archives:
        for block in archive.blocks():
            yield archive, block
        yield archive, None


def _read(blocks: Iterator[tuple[Archive, tuple[Layout, bytes, int] | None]]) -> _Read:
    """The next block (None after the last; an error reading it as a value, to raise in its turn)."""
    try:
        return next(blocks, None)
    except Exception as exc:
        return exc


def _worker_start() -> None:
    """A worker leaves Ctrl-C to the importer, which rolls the file back and stops it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
