"""The ledger's schema: migrations/NNN_name.sql, applied in order by the shared runner
(trademesh.core.platform.postgres.migrations) with their own ledger table (ledger_schema_migrations)
and lock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trademesh.core.platform.postgres.migrations import Migration, MigrationSet, load_migrations
from trademesh.core.platform.postgres.migrations import migrate as _migrate

__all__ = ["MIGRATIONS", "SCHEMA_LOCK", "migrate"]

MIGRATIONS = Path(__file__).with_name("migrations")
SCHEMA_LOCK = 0x74_6D_6C_65_64_67  # "tmledg": pg_advisory_xact_lock key of this set


async def migrate(conn: Any, directory: Path = MIGRATIONS) -> list[Migration]:
    """Applies what is pending; the migrations it applied (none when up to date)."""
    plan = MigrationSet("ledger", "ledger_schema_migrations", SCHEMA_LOCK, load_migrations(directory))
    return await _migrate(conn, plan)
