"""The recorder's schema: migrations/NNN_name.sql, applied in order at start
(trademesh.core.platform.postgres.migrations).

On a fresh database the recorder first tries CREATE EXTENSION timescaledb: the time tables
are hypertables when that works, natively partitioned tables otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncpg

from trademesh.core.platform.postgres.migrations import Migration, MigrationSet
from trademesh.core.platform.postgres.migrations import load_migrations as _load
from trademesh.core.platform.postgres.migrations import migrate as _migrate

__all__ = ["MIGRATIONS", "MIGRATION_LOCK", "Migration", "load_migrations", "migrate"]

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
MIGRATION_LOCK = 0x74_6D_72_65_63_6D  # "tmrecm": pg_advisory_xact_lock key


def load_migrations(directory: Path = MIGRATIONS) -> list[Migration]:
    return list(_load(directory))


async def migrate(conn: Any, migrations: Sequence[Migration] | None = None) -> list[Migration]:
    """Applies what is pending; the migrations it applied (none when up to date)."""
    wanted = tuple(load_migrations() if migrations is None else migrations)
    plan = MigrationSet("recorder", "schema_migrations", MIGRATION_LOCK, wanted, _try_timescale)
    return await _migrate(conn, plan)


async def _try_timescale(conn: Any) -> None:
    try:
        async with conn.transaction():  # a savepoint: a failure leaves the migration going
            await conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except asyncpg.PostgresError as exc:
        reason = getattr(exc, "message", None) or str(exc)  # without DETAIL and HINT lines
        log.info("recorder: TimescaleDB unavailable (%s); using native partitioning", reason)
    else:
        log.info("recorder: TimescaleDB available; using hypertables")
