"""The recorder's PostgreSQL connections, and what a database error means for a batch.

Errors split three ways where they enter our code:
- the batch's data is bad (a malformed decimal, a value out of range, a broken constraint):
  Corrupt, so the bus consumer retries entry by entry and dead-letters the bad entry;
- the database is unreachable or busy for now (connection lost, shutting down, deadlock):
  Unavailable, so the batch is written again once it is back;
- anything else (a missing table, a privilege) is a fault the recorder cannot fix: it stops.
The URL only ever appears redacted; a password is scrubbed from any message that quotes it.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from asyncpg.exceptions import _base as asyncpg_base

from trademesh.core.platform.logs.redact import scrub
from trademesh.core.platform.postgres import connect as postgres
from trademesh.core.platform.postgres.failures import unavailable_on_failure
from trademesh.core.recorder.schema import TABLES

__all__ = ["CONNECT_TIMEOUT_S", "data_error", "open_pool", "scrub", "transient_error"]

CONNECT_TIMEOUT_S = 10.0
# A statement that runs longer is cancelled and its batch written again: a batch takes about a
# second, so one this slow means a stuck database (a lock held elsewhere), not bad data.
STATEMENT_TIMEOUT_S = 120.0

_TRANSIENT = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,  # 08: the connection failed or was lost
    asyncpg.InsufficientResourcesError,  # 53: too many connections, disk full
    asyncpg.TransactionRollbackError,  # 40: serialization failure, deadlock
    asyncpg.LockNotAvailableError,
    asyncpg.OperatorInterventionError,  # 57: admin shutdown, starting up (but not a statement timeout)
    # A connection the server dropped while it sat in the pool can come out of it half-failed;
    # the writer discards such a connection, so a retry gets a new one.
    asyncpg_base.InternalClientError,
)
_DATA = (
    asyncpg.DataError,  # 22: invalid text for a type, out of range
    asyncpg.IntegrityConstraintViolationError,  # 23: NOT NULL, CHECK
    asyncpg_base.DataError,  # raised before sending: a value the column's type cannot hold
    OverflowError,  # COPY's encoder: an unsigned 64-bit value past bigint
)


def transient_error(exc: BaseException) -> bool:
    """True when `exc`, or an error it arose from, says the database is away for now (asyncpg
    reports a connection lost mid-transaction as a failed rollback, the loss as its cause)."""
    return any(
        isinstance(link, _TRANSIENT) and not isinstance(link, asyncpg.QueryCanceledError)
        for link in _chain(exc)
    )


def data_error(exc: BaseException) -> bool:
    return any(isinstance(link, _DATA) for link in _chain(exc))


def _chain(exc: BaseException) -> list[BaseException]:
    links: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in links:
        links.append(link)
        link = link.__cause__ or link.__context__
    return links


async def _init_connection(conn: Any) -> None:
    for table in TABLES:
        await conn.execute(table.stage_ddl)


async def _keep_session(conn: Any) -> None:
    """A connection back in the pool keeps its session as it is: the recorder sets no session
    state (its advisory locks are the transaction's), so asyncpg's reset query (advisory locks,
    cursors, LISTEN, RESET ALL), a round trip and four statements after every batch, is skipped.
    A transaction left open is still rolled back by the pool."""


async def open_pool(url: str, size: int = 2) -> Any:
    """A pool of up to `size` connections, each with the staging tables, one of them open;
    Unavailable naming the redacted URL when the database cannot be reached."""
    with unavailable_on_failure(url, "cannot connect to PostgreSQL"):
        pool = await postgres.open_pool(
            url,
            max_size=size,
            connect_timeout_s=CONNECT_TIMEOUT_S,
            statement_timeout_s=STATEMENT_TIMEOUT_S,
            application="recorder",
            init=_init_connection,
            reset=_keep_session,
        )
        async with pool.acquire():
            return pool
