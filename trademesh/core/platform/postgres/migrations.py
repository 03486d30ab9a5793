"""Schema migrations for every component that keeps tables in PostgreSQL: one runner.

A component (the recorder, the gateway's keys; next the ledger and the audit tables) owns a
MigrationSet: its migrations in order, the table that records which were applied (its own,
so components evolve apart), and an advisory lock key. migrate() runs every pending
migration in one transaction that first takes the lock, so processes starting together
apply each migration once (the others wait, then find nothing to do) and a process killed
halfway leaves nothing behind. Each applied migration is recorded with a checksum; one
edited after it was applied stops the process (add a new migration instead).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from trademesh.core.platform.errors import FailedPrecondition

__all__ = ["Migration", "MigrationSet", "load_migrations", "migrate"]

log = logging.getLogger(__name__)

_FILE = re.compile(r"(\d{3})_([a-z0-9_]+)\.sql")
_LEDGER = """
CREATE TABLE IF NOT EXISTS {table} (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()

    @property
    def label(self) -> str:
        return f"{self.version:03d}_{self.name}"


@dataclass(frozen=True)
class MigrationSet:
    # Who owns the tables: named in log lines and errors.
    owner: str
    # The table recording which migrations were applied (a plain identifier).
    ledger: str
    # pg_advisory_xact_lock key, distinct per set.
    lock: int
    migrations: tuple[Migration, ...]
    # Runs before the first migration on a database that has none of the set's yet.
    before_first: Callable[[Any], Awaitable[None]] | None = None

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", self.ledger):
            raise ValueError(f"ledger table {self.ledger!r} is not a plain identifier")
        versions = [m.version for m in self.migrations]
        if versions != sorted(set(versions)):
            raise FailedPrecondition(f"{self.owner}: migrations must have distinct versions, in order")


def load_migrations(directory: Path) -> tuple[Migration, ...]:
    """The NNN_name.sql files of a folder, in version order."""
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.fullmatch(path.name)
        if match is None:
            raise FailedPrecondition(f"migration file {path.name} is not named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise FailedPrecondition(f"two migrations numbered {version:03d}")
        found[version] = Migration(version, match.group(2), path.read_text())
    return tuple(found[version] for version in sorted(found))


async def migrate(conn: Any, plan: MigrationSet) -> list[Migration]:
    """Applies what is pending; the migrations it applied (none when up to date)."""
    if not plan.migrations:
        raise FailedPrecondition(f"{plan.owner}: no migrations: installed without its package data?")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", plan.lock)
        await conn.execute(_LEDGER.format(table=plan.ledger))
        rows = await conn.fetch(f"SELECT version, checksum FROM {plan.ledger}")
        applied = {row["version"]: row["checksum"] for row in rows}
        _check_unchanged(plan, applied)
        pending = [m for m in plan.migrations if m.version not in applied]
        if pending and not applied and plan.before_first is not None:
            await plan.before_first(conn)
        for migration in pending:
            await _apply(conn, plan, migration)
    return pending


async def _apply(conn: Any, plan: MigrationSet, migration: Migration) -> None:
    await conn.execute(migration.sql)
    await conn.execute(
        f"INSERT INTO {plan.ledger} (version, name, checksum) VALUES ($1, $2, $3)",
        migration.version,
        migration.name,
        migration.checksum,
    )
    log.info("%s: applied migration %s", plan.owner, migration.label)


def _check_unchanged(plan: MigrationSet, applied: dict[int, str]) -> None:
    for migration in plan.migrations:
        if applied.get(migration.version, migration.checksum) != migration.checksum:
            raise FailedPrecondition(
                f"{plan.owner}: migration {migration.label} changed after it was applied;"
                " add a new migration instead"
            )
