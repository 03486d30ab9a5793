"""Schema migrations: migrations/NNN_name.sql, applied in order at start.

All pending files run in one transaction that first takes an advisory lock, so recorders
starting together apply each file once (the others wait, then find nothing to do), and a
recorder killed halfway leaves nothing behind. Each applied file is recorded in
schema_migrations with a checksum; a file edited after it was applied stops the recorder.
On a fresh database the recorder first tries CREATE EXTENSION timescaledb: the time tables
are hypertables when that works, natively partitioned tables otherwise.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from core.errors import FailedPrecondition

__all__ = ["MIGRATIONS", "MIGRATION_LOCK", "Migration", "load_migrations", "migrate"]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x74_6D_72_65_63_6D  # "tmrecm": pg_advisory_xact_lock key
_FILE = re.compile(r"(\d{3})_([a-z0-9_]+)\.sql")

_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
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


def load_migrations(directory: Path = MIGRATIONS) -> list[Migration]:
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE.fullmatch(path.name)
        if match is None:
            raise FailedPrecondition(f"migration file {path.name} is not named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise FailedPrecondition(f"two migrations numbered {version:03d}")
        found[version] = Migration(version, match.group(2), path.read_text())
    return [found[version] for version in sorted(found)]


async def migrate(conn: Any, migrations: list[Migration] | None = None) -> list[Migration]:
    """Applies what is pending; the migrations it applied (none when up to date)."""
    wanted = load_migrations() if migrations is None else migrations
    if not wanted:
        raise FailedPrecondition(f"no migration files in {MIGRATIONS}: installed without its package data?")
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK)
        await conn.execute(_LEDGER)
        applied = {r["version"]: r["checksum"] for r in await conn.fetch("SELECT * FROM schema_migrations")}
        _check_unchanged(wanted, applied)
        pending = [m for m in wanted if m.version not in applied]
        if pending and not applied:
            await _try_timescale(conn)
        for migration in pending:
            await conn.execute(migration.sql)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                migration.version,
                migration.name,
                migration.checksum,
            )
            log.info("recorder: applied migration %03d_%s", migration.version, migration.name)
    return pending


def _check_unchanged(wanted: list[Migration], applied: dict[int, str]) -> None:
    for migration in wanted:
        if applied.get(migration.version, migration.checksum) != migration.checksum:
            raise FailedPrecondition(
                f"migration {migration.version:03d}_{migration.name}.sql changed after it was applied;"
                " add a new migration instead"
            )


async def _try_timescale(conn: Any) -> None:
    try:
        async with conn.transaction():  # a savepoint: a failure leaves the migration going
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except asyncpg.PostgresError as exc:
        reason = getattr(exc, "message", None) or str(exc)  # without DETAIL and HINT lines
        log.info("recorder: TimescaleDB unavailable (%s); using native partitioning", reason)
    else:
        log.info("recorder: TimescaleDB available; using hypertables")
