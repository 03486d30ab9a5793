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

Over several connections (`lanes`; the CLI's default, two, on two or more cores) the files are
dealt to them in turn and stored at once, each still one transaction on one connection:
PostgreSQL stores on two backends, where one left a core to the conversion and the rest
(docs/history.md, Speed). What changes: the files commit in the order they end, not in the order
given, and an error stops the import once the files in flight on the other connections have ended
(a rerun still redoes exactly the files that did not commit); a day's partition is made beside the
files in flight, in a transaction of its own (it stays when the file that needed it fails: an empty
partition, as the recorder makes them ahead); two files of overlapping rows on two connections wait
for each other's rows (the vacant way then falls to the staged one), and when PostgreSQL ends one of
them to break a deadlock, that file is rolled back and imported again at the end, alone. A key
two such files both hold keeps the row of the one that committed first (a venue's archives agree
on an interval's kline).

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
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from trademesh.core.history.archives import Archive, Chunk
from trademesh.core.history.layouts import Layout
from trademesh.core.platform.errors import Corrupt
from trademesh.core.recorder.partitions import FIRST_DAY, LAST_DAY, Partitions, day_of, partition_name
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
# Over several lanes: a file PostgreSQL rolled back to break a deadlock with another lane's (their
# rows overlapping), or whose partition waited past _LOCK_WAIT: imported again, alone, at the end.
_AGAIN = (asyncpg.DeadlockDetectedError, asyncpg.LockNotAvailableError)
_LOCK_WAIT = "5s"  # the longest a partition made beside the lanes waits for a lock


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
    """Imports archives over one connection (the recorder's migrations applied: `prepare`), or over
    several at once (`lanes`); `close` stops its worker process."""

    def __init__(self, conn: Any, workers: int = 0, lanes: Sequence[Any] = ()) -> None:
        """`workers`: processes converting blocks beside this one (0, the default: converted here,
        in turn; a worker measured no faster on 2 shared cores: docs/benchmarks.md, History import).
        `lanes`: two or more further connections storing files at once, a file a transaction on
        one of them (PostgreSQL then stores on as many backends: docs/history.md, Speed); `conn`
        then only makes partitions. None, the default: every file on `conn`, in turn."""
        if len(lanes) == 1:
            raise ValueError("lanes: none, or two or more connections")
        self._conn = conn
        self._lanes = list(lanes)
        self._partitions = Partitions()
        self._making = asyncio.Lock()  # partitions made on `conn`, one call at a time
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
        """Each archive imported (a transaction each), as it commits. With worker processes,
        the next file's first blocks are converted while this one's last are stored: the two cores
        stay busy across files (docs/benchmarks.md, History import). Over `lanes`, see _spread."""
        if self._lanes:
            async with contextlib.aclosing(self._spread(list(archives))) as files:
                async for done in files:
                    yield done
            return
        converted = self._converted(archives)
        try:
            while (first := await anext(converted, None)) is not None:
                yield await self._file(self._conn, *first, converted)
        finally:
            await converted.aclose()

    async def _spread(self, archives: list[Archive]) -> AsyncGenerator[Imported, None]:
        """The files dealt to the lanes in turn (the first to the first lane, the second to the
        second, ...), each lane storing its own in order, a transaction each, with its own blocks
        converted ahead: the files commit as they end, not in their order. A file that fails stops
        the import once the files then in flight on the other lanes have ended (committed, as in
        turn the files before it would have): its error is raised after them. A file whose
        transaction PostgreSQL ends to break a deadlock (two files of overlapping rows on two lanes)
        or that waited too long for a partition is rolled back and imported again at the end,
        alone. Cancelled (Ctrl-C), every file in flight is rolled back."""
        self._start_pool()
        ended: asyncio.Queue[Imported | BaseException | None] = asyncio.Queue()
        stop = asyncio.Event()
        again: list[tuple[int, Archive]] = []
        count = len(self._lanes)
        tasks = [
            asyncio.create_task(self._lane(conn, list(enumerate(archives))[n::count], ended, stop, again))
            for n, conn in enumerate(self._lanes)
        ]
        failed: BaseException | None = None
        try:
            running = len(tasks)
            while running:
                item = await ended.get()
                if item is None:
                    running -= 1
                elif isinstance(item, BaseException):
                    failed = failed or item
                else:
                    yield item
            if failed is not None:
                raise failed
            if again:
                stop.clear()
                redo = [archive for _, archive in sorted(again, key=lambda item: item[0])]
                log.info("history: %d files imported again, alone", len(redo))
                await self._lane(self._lanes[0], list(enumerate(redo)), ended, stop, None)
                while (item := ended.get_nowait()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    yield item
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _lane(
        self,
        conn: Any,
        files: list[tuple[int, Archive]],
        ended: asyncio.Queue[Imported | BaseException | None],
        stop: asyncio.Event,
        again: list[tuple[int, Archive]] | None,
    ) -> None:
        """`files` (each with its place in the import) stored on `conn`, each as it ends put in
        `ended` (an error: put, `stop` set), then None. `again`: where a file goes to be imported
        again after a deadlock (None: raised as any error)."""
        places = iter(place for place, _ in files)  # the files come out of `converted` in order
        converted = self._converted([archive for _, archive in files])
        try:
            while not stop.is_set() and (first := await anext(converted, None)) is not None:
                archive, chunk = first
                place = next(places)
                try:
                    ended.put_nowait(await self._file(conn, archive, chunk, converted))
                except _AGAIN as exc:
                    if again is None:
                        raise
                    log.info("history: %s rolled back (%s); imported again at the end", archive.path, exc)
                    again.append((place, archive))
                    while chunk is not None:  # the rest of its blocks passed over
                        _, chunk = await anext(converted)
        except Exception as exc:
            ended.put_nowait(exc)
            stop.set()
        finally:
            await converted.aclose()
            ended.put_nowait(None)

    async def _file(
        self,
        conn: Any,
        archive: Archive,
        chunk: Chunk | None,
        converted: AsyncIterator[tuple[Archive, Chunk | None]],
    ) -> Imported:
        """One archive from its first converted chunk (None: it has none) to its end in `converted`,
        a transaction on `conn`."""
        started = time.perf_counter()
        rows = added = 0
        first: int | None = None
        last: int | None = None
        try:
            async with conn.transaction():
                while chunk is not None:
                    added += await self._chunk(conn, archive, chunk)
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

    async def _chunk(self, conn: Any, archive: Archive, chunk: Chunk) -> int:
        table = archive.table
        if not chunk.kept:
            return 0
        await self._cover(conn, table, chunk.days_ns)
        try:
            if await self._vacant(conn, archive, chunk):
                try:
                    async with conn.transaction():  # a savepoint
                        await _copy(conn, table.name, chunk.text, table)
                        return chunk.kept
                except _REFUSED:
                    log.info("history: %s rows from %d conflict; staged", archive.path, chunk.first_row)
            return await _staged_move(conn, table, chunk.text)
        except _DATA as exc:
            raise Corrupt(f"{archive.path}: {_where(exc, chunk)}PostgreSQL refuses it: {exc}") from None

    async def _cover(self, conn: Any, table: Table, days_ns: list[int]) -> None:
        """The partitions of these days made: in the file's transaction over one connection (known
        once it commits); over several, each in its own transaction on the importer's first
        connection, one at a time and attached (a lock on the parent that the copies' do not
        conflict with: CREATE TABLE ... PARTITION OF would wait for every file in flight)."""
        if not self._lanes:
            await self._partitions.cover_times(conn, table, days_ns)
            return
        if self._partitions.covered(table, days_ns):
            return
        async with self._making:
            await self._partitions.cover_times(self._conn, table, days_ns, attach=_LOCK_WAIT)

    async def _vacant(self, conn: Any, archive: Archive, chunk: Chunk) -> bool:
        series = _SERIES[archive.table.name]
        time_column = archive.table.time_column
        keys = ["venue", "symbol", *series]
        match = " AND ".join(f"{key} = ${n}" for n, key in enumerate(keys, 1))
        low, high = len(keys) + 1, len(keys) + 2
        held = " UNION ALL ".join(
            f"SELECT 1 FROM {source} WHERE {match} AND {time_column} >= ${low} AND {time_column} <= ${high}"
            for source in self._sources(archive.table, chunk)
        )
        values = [archive.venue, archive.symbol, *([archive.timeframe] if series else [])]
        vacant: bool = await conn.fetchval(
            f"SELECT NOT EXISTS ({held})", *values, chunk.first_ns, chunk.last_ns
        )
        return vacant

    def _sources(self, table: Table, chunk: Chunk) -> list[str]:
        """Where the probe looks: the table; over lanes, its day partitions the chunk's rows go to,
        named. A lane's transaction that has used the table plans its next statement with the
        partitions it knew (PostgreSQL reads the news of one attached meanwhile when it next takes
        a lock it does not hold): the probe would look into the default partition too (and lock it,
        which attaching the next partition waits for) and miss the day just attached. Naming the
        new day's partition takes a lock on it: the news are read, and the COPY after it routes its
        rows by the partitions as they are."""
        known = self._partitions.days.get(table.name)
        if not self._lanes or known is None:
            return [table.name]
        days = range(day_of(chunk.first_ns), day_of(chunk.last_ns) + 1)
        if not all(FIRST_DAY <= day <= LAST_DAY and day in known for day in days):
            return [table.name]  # rows for the default partition (the years out of 2000 .. 2099)
        return [partition_name(table.name, day) for day in days]


async def _copy(conn: Any, name: str, text: bytes, table: Table) -> None:
    columns = [column for column, _ in table.columns]
    await conn.copy_to_table(name, source=memoryview(text), columns=columns, format="text")


async def _staged_move(conn: Any, table: Table, text: bytes) -> int:
    """The text COPied into a stage, then moved into the table: a row held kept as it is."""
    stage = f"history_stage_{table.name}"
    # The table's own types: COPY reads the decimals into NUMERIC as it would. Made in the
    # file's transaction, so one rolled back takes it along: made again (IF NOT EXISTS) each time.
    await conn.execute(
        f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {table.name} INCLUDING DEFAULTS) "
        "ON COMMIT DELETE ROWS"
    )
    await _copy(conn, stage, text, table)
    status = await conn.execute(move_sql(table, stage))
    await conn.execute(f"TRUNCATE {stage}")  # cheaper than a DELETE ... RETURNING a row
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
