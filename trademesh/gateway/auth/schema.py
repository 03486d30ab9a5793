"""The gateway's tables, created on first use by whichever process gets there first.

They are migrated by the shared runner (trademesh.core.platform.postgres.migrations) with their own ledger
(gateway_schema_migrations) and lock: gateways and `trademesh keys` commands starting
together on a fresh database wait for each other instead of racing CREATE TABLE.
"""

from __future__ import annotations

from typing import Any

from trademesh.core.platform.postgres.migrations import Migration, MigrationSet, migrate

__all__ = ["MIGRATIONS", "SCHEMA_LOCK", "Step", "ensure_schema"]

SCHEMA_LOCK = 0x74_6D_67_61_75_74  # "tmgaut": pg_advisory_xact_lock key, distinct from the recorder's

# The gateway's migrations are written here rather than in .sql files; their checksums
# (of these exact strings) are what databases already record.
Step = Migration

# Append only: an applied step is never edited (the checksum check stops the process if it is).
MIGRATIONS = (
    Step(
        1,
        "api_keys",
        """
        CREATE TABLE gateway_api_keys (
            id bigserial PRIMARY KEY,
            name text NOT NULL,
            key_hash bytea NOT NULL UNIQUE,
            created_at timestamptz NOT NULL DEFAULT now(),
            revoked_at timestamptz
        );
        -- A name belongs to one live key; a revoked key keeps its row (and its name) as history.
        CREATE UNIQUE INDEX gateway_api_keys_live_name ON gateway_api_keys (name)
            WHERE revoked_at IS NULL;
        """,
    ),
    Step(
        2,
        "api_key_scopes",
        """
        -- What each key may do (trademesh.core.platform.access's Scope). Keys made before scopes existed keep
        -- all three, so an upgrade breaks no client; every key made since names its own.
        ALTER TABLE gateway_api_keys ADD COLUMN scopes text[] NOT NULL DEFAULT '{read,trade,admin}';
        ALTER TABLE gateway_api_keys ALTER COLUMN scopes DROP DEFAULT;
        """,
    ),
)


async def ensure_schema(conn: Any, steps: tuple[Step, ...] = MIGRATIONS) -> list[Step]:
    """Applies the pending steps; those it applied (none when the schema is up to date)."""
    return await migrate(conn, MigrationSet("gateway", "gateway_schema_migrations", SCHEMA_LOCK, steps))
