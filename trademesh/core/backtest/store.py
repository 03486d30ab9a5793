"""Backtest runs in PostgreSQL: every run's config, orders, fills, round trips, equity and
drawdown curves and metrics (trademesh/core/backtest/migrations: `backtest_runs` and its children).

A run's life: start() records it as "running" (a run with the same id, the same config, is
replaced: deleted with its children, then inserted, in one transaction); finish() COPies all
its children and marks it "done" in one transaction, so a run is either done with every row or
has none; fail() marks a running run "failed" (or "cancelled") with its error; record() does
all three around a run. Money goes in as
Decimal (NUMERIC, exact) and comes back as Decimal.

A run is alive while some process holds its lease (lease(): a shared advisory lock on a
connection of its own, freed by PostgreSQL when that process is gone): the hub that started it
and the process that runs it each hold one until it ends. fail_running() marks only runs no
one holds, so a hub starting on a database another hub (or a command-line run) shares leaves
their runs alone, and marks failed only what a stopped process left running.

Database errors are Unavailable naming the redacted URL; rows the tables' CHECKs refuse are
InvalidArgument naming the constraint; an unknown run id is NotFound.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import asyncpg
from asyncpg.exceptions import _base as asyncpg_base

from trademesh.core.backtest.metrics import TOTAL
from trademesh.core.backtest.results import BacktestRoundTrip, EquityPoint, FillRecord, Metrics
from trademesh.core.backtest.rows import COLUMNS, children, fill_of, metrics_of, point_of, trip_of
from trademesh.core.backtest.schema import migrate
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable, shown
from trademesh.core.platform.logs.redact import redact_url
from trademesh.core.platform.postgres.connect import open_pool

if TYPE_CHECKING:  # the run's engine: the hub reads and lists runs without it
    from trademesh.core.backtest.outcome import RunOutcome

__all__ = ["ENDED", "BacktestStore", "RunLease", "RunResult", "RunSummary"]

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0
STATEMENT_TIMEOUT_S = 300.0  # a long run's COPY of its curves and orders
ENDED = ("failed", "cancelled")  # what fail() may record
_DATABASE_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg_base.InternalClientError,
)
_REFUSED = (asyncpg.IntegrityConstraintViolationError, asyncpg.DataError, asyncpg_base.DataError)
_TOTAL_METRICS = ", ".join(f"m.{c}" for c in COLUMNS["backtest_metrics"][1:])
_RUN_LOCK = 0x74_6D_62_74_72_6E  # "tmbtrn": seeds the per-run advisory lock's hash
_LIVE_LOCK = 0x74_6D_62_74_6C_76  # "tmbtlv": seeds the per-run lease's hash
_START = "INSERT INTO backtest_runs (run_id, config, start_ns, end_ns) VALUES ($1, $2::jsonb, $3, $4)"
_DONE = "UPDATE backtest_runs SET status = 'done', events = $2, finished_at = now() WHERE run_id = $1"
_ENDED = "UPDATE backtest_runs SET status = $2, error = $3, finished_at = now() WHERE run_id = $1"
_RUN = "run_id, status, created_at, finished_at, config, start_ns, end_ns, events, error"


@dataclass(frozen=True)
class RunSummary:
    """One run in the list: `total` is the account's metrics (None until it is done)."""

    run_id: str
    status: str
    created_at: datetime
    config: dict[str, str]
    total: Metrics | None


@dataclass(frozen=True)
class RunResult:
    """A stored run read back. `metrics` has each strategy's figures (by name) then "total";
    `drawdowns` has each curve's drawdown at its points, "total" for `curve`."""

    run_id: str
    status: str
    created_at: datetime
    finished_at: datetime | None
    config: dict[str, str]
    start_ns: int
    end_ns: int
    events: int | None
    error: str | None
    metrics: dict[str, Metrics]
    curve: list[EquityPoint]
    strategy_curves: dict[str, list[EquityPoint]]
    drawdowns: dict[str, list[Decimal]]
    fills: list[FillRecord]
    trips: list[BacktestRoundTrip]


class RunLease:
    """A run's sign of life, held until release() (or until its process is gone)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn

    async def release(self) -> None:
        with contextlib.suppress(*_DATABASE_ERRORS):
            await self._conn.close()


class BacktestStore:
    """The backtest tables through an asyncpg pool."""

    def __init__(self, pool: Any, url: str = "") -> None:
        self._pool = pool
        self._url = url

    @classmethod
    async def open(cls, database_url: str, size: int = 2) -> BacktestStore:
        """Connected, with the schema in place; Unavailable when the database cannot be reached."""
        with _mapped(database_url):
            pool = await open_pool(
                database_url,
                max_size=size,
                connect_timeout_s=CONNECT_TIMEOUT_S,
                statement_timeout_s=STATEMENT_TIMEOUT_S,
                application="backtest",
            )
        store = cls(pool, database_url)
        try:
            await store.migrate()
        except BaseException:
            await pool.close()
            raise
        return store

    async def close(self) -> None:
        await self._pool.close()

    async def migrate(self) -> list[str]:
        """Applies the pending migrations; their labels (none when up to date)."""
        with _mapped(self._url):
            async with self._pool.acquire() as conn:
                return [m.label for m in await migrate(conn)]

    # ---- a run's life

    async def lease(self, run_id: str) -> RunLease:
        """The run's lease (module docstring), on a connection of its own."""
        with _mapped(self._url):
            conn = await asyncpg.connect(
                self._url,
                timeout=CONNECT_TIMEOUT_S,
                server_settings={"application_name": "trademesh-backtest-lease"},
            )
            try:
                await conn.execute(
                    "SELECT pg_advisory_lock_shared(hashtextextended($1, $2))", run_id, _LIVE_LOCK
                )
            except BaseException:
                await conn.close()
                raise
        return RunLease(conn)

    async def start(self, run_id: str, config: dict[str, str], start_ns: int, end_ns: int) -> None:
        """Records the run as running, replacing a run of the same id and everything of it."""
        with _mapped(self._url):
            async with self._pool.acquire() as conn, conn.transaction():
                # Two starts of one id wait for each other: the second replaces the first.
                await conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended($1, $2))", run_id, _RUN_LOCK
                )
                await conn.execute("DELETE FROM backtest_runs WHERE run_id = $1", run_id)
                await conn.execute(
                    _START,
                    run_id,
                    json.dumps(config, sort_keys=True),
                    start_ns,
                    end_ns,
                )

    async def finish(self, run_id: str, done: RunOutcome) -> None:
        """Stores the run's results (COPY, all in one transaction) and marks it done."""
        rows = children(run_id, done)
        with _mapped(self._url):
            async with self._pool.acquire() as conn, conn.transaction():
                await _running(conn, run_id)
                for table, records in rows.items():
                    if records:
                        await conn.copy_records_to_table(table, records=records, columns=COLUMNS[table])
                await conn.execute(
                    _DONE,
                    run_id,
                    done.tape.events,
                )

    async def fail(self, run_id: str, error: str, status: str = "failed") -> None:
        """Marks a running run as ended without results ("failed" or "cancelled"), with why."""
        if status not in ENDED:
            raise InvalidArgument.field("status", f"{shown(status)} is not one of {', '.join(ENDED)}")
        with _mapped(self._url):
            async with self._pool.acquire() as conn, conn.transaction():
                await _running(conn, run_id)
                await conn.execute(
                    _ENDED,
                    run_id,
                    status,
                    error,
                )

    async def fail_running(self, error: str) -> int:
        """Marks failed every run left running that no process holds a lease on (its hub or its
        process stopped while it ran); how many. A run another process runs is left alone."""
        with _mapped(self._url):
            async with self._pool.acquire() as conn:
                status = await conn.execute(
                    "UPDATE backtest_runs SET status = 'failed', error = $1, finished_at = now() "
                    "WHERE status = 'running' AND pg_try_advisory_xact_lock(hashtextextended(run_id, $2))",
                    error,
                    _LIVE_LOCK,
                )
        return int(status.split()[-1])

    async def record(
        self,
        run_id: str,
        config: dict[str, str],
        start_ns: int,
        end_ns: int,
        run: Callable[[], Awaitable[RunOutcome]],
    ) -> RunOutcome:
        """Runs `run()` between start() and finish(); when it raises (or finish does), marks the
        run failed ("cancelled" when interrupted) with the error, then raises that error. The
        run's lease is held throughout."""
        lease = await self.lease(run_id)
        try:
            return await self._record(run_id, config, start_ns, end_ns, run)
        finally:
            await lease.release()

    async def _record(
        self,
        run_id: str,
        config: dict[str, str],
        start_ns: int,
        end_ns: int,
        run: Callable[[], Awaitable[RunOutcome]],
    ) -> RunOutcome:
        await self.start(run_id, config, start_ns, end_ns)
        try:
            done = await run()
            await self.finish(run_id, done)
        except BaseException as exc:
            status = "cancelled" if isinstance(exc, (asyncio.CancelledError, KeyboardInterrupt)) else "failed"
            try:
                await self.fail(run_id, f"{type(exc).__name__}: {exc}", status)
            except Exception:  # the run's own error is the one to raise
                log.warning("backtest run %s: its failure could not be recorded", run_id, exc_info=True)
            raise
        return done

    async def delete(self, run_id: str) -> None:
        """Deletes the run and everything of it; NotFound when there is no such run."""
        with _mapped(self._url):
            deleted = await self._pool.fetchval(
                "DELETE FROM backtest_runs WHERE run_id = $1 RETURNING run_id", run_id
            )
        if deleted is None:
            raise NotFound(f"no backtest run {shown(run_id)}")

    # ---- reading

    async def runs(self, limit: int = 50, offset: int = 0) -> list[RunSummary]:
        """The runs, newest first, each with its total metrics."""
        if limit < 1 or offset < 0:
            raise InvalidArgument.field("limit", "limit must be at least 1 and offset at least 0")
        with _mapped(self._url):
            rows = await self._pool.fetch(
                f"SELECT r.run_id, r.status, r.created_at, r.config, {_TOTAL_METRICS}"
                " FROM backtest_runs r LEFT JOIN backtest_metrics m"
                " ON m.run_id = r.run_id AND m.strategy = $1"
                " ORDER BY r.created_at DESC, r.run_id LIMIT $2 OFFSET $3",
                TOTAL,
                limit,
                offset,
            )
        return [
            RunSummary(
                row["run_id"],
                row["status"],
                row["created_at"],
                json.loads(row["config"]),
                metrics_of(row) if row["strategy"] is not None else None,
            )
            for row in rows
        ]

    async def result(self, run_id: str) -> RunResult:
        """The run with its metrics, curves, fills and round trips; NotFound when unknown."""
        with _mapped(self._url):
            async with self._pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
                run = await conn.fetchrow(f"SELECT {_RUN} FROM backtest_runs WHERE run_id = $1", run_id)
                if run is None:
                    raise NotFound(f"no backtest run {shown(run_id)}")
                metrics = await conn.fetch(
                    "SELECT * FROM backtest_metrics WHERE run_id = $1 ORDER BY strategy = $2, strategy",
                    run_id,
                    TOTAL,
                )
                points = await conn.fetch(
                    "SELECT * FROM backtest_equity WHERE run_id = $1 ORDER BY strategy, seq", run_id
                )
                fills = await conn.fetch(
                    "SELECT * FROM backtest_fills WHERE run_id = $1 ORDER BY seq", run_id
                )
                trips = await conn.fetch(
                    "SELECT * FROM backtest_trips WHERE run_id = $1 ORDER BY seq", run_id
                )
        curves: dict[str, list[EquityPoint]] = {}
        drawdowns: dict[str, list[Decimal]] = {}
        for row in points:
            curves.setdefault(row["strategy"], []).append(point_of(row))
            drawdowns.setdefault(row["strategy"], []).append(row["drawdown"])
        return RunResult(
            run_id=run["run_id"],
            status=run["status"],
            created_at=run["created_at"],
            finished_at=run["finished_at"],
            config=json.loads(run["config"]),
            start_ns=run["start_ns"],
            end_ns=run["end_ns"],
            events=run["events"],
            error=run["error"],
            metrics={row["strategy"]: metrics_of(row) for row in metrics},
            curve=curves.pop(TOTAL, []),
            strategy_curves=curves,
            drawdowns=drawdowns,
            fills=[fill_of(row) for row in fills],
            trips=[trip_of(row) for row in trips],
        )


async def _running(conn: Any, run_id: str) -> None:
    """Locks the run's row; NotFound when there is none, FailedPrecondition when it has ended."""
    status = await conn.fetchval("SELECT status FROM backtest_runs WHERE run_id = $1 FOR UPDATE", run_id)
    if status is None:
        raise NotFound(f"no backtest run {shown(run_id)}: start it first")
    if status != "running":
        raise FailedPrecondition(f"backtest run {shown(run_id)} is {status}, not running")


@contextlib.contextmanager
def _mapped(url: str) -> Iterator[None]:
    """Rows a CHECK refuses as InvalidArgument; other database and network errors as
    Unavailable, naming the redacted URL."""
    try:
        yield
    except _REFUSED as exc:
        constraint = getattr(exc, "constraint_name", None) or "row"
        raise InvalidArgument.field(constraint, str(exc) or type(exc).__name__) from exc
    except _DATABASE_ERRORS as exc:
        text = (str(exc) or type(exc).__name__).replace(url, redact_url(url)) if url else str(exc)
        where = f" at {redact_url(url)}" if url else ""
        raise Unavailable(f"PostgreSQL{where}: {text or type(exc).__name__}") from exc
