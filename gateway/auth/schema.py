"""The gateway's tables, created on first use by whichever process gets there first.

Each step runs once, recorded with its checksum in gateway_schema_migrations, inside one
transaction that first takes an advisory lock: gateways and `trademesh keys` commands starting
together on a fresh database wait for each other instead of racing CREATE TABLE (which fails
with a duplicate-type error when two run at once). The recorder's runner is not reused because
its ledger, lock and TimescaleDB step belong to the recorder's own schema.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from core.errors import FailedPrecondition

__all__ = ["MIGRATIONS", "SCHEMA_LOCK", "Step", "ensure_schema"]

log = logging.getLogger(__name__)

SCHEMA_LOCK = 0x74_6D_67_61_75_74  # "tmgaut": pg_advisory_xact_lock key, distinct from the recorder's

_LEDGER = """
CREATE TABLE IF NOT EXISTS gateway_schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
)
"""


@dataclass(frozen=True)
class Step:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


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
)


async def ensure_schema(conn: Any, steps: tuple[Step, ...] = MIGRATIONS) -> list[Step]:
    """Applies the pending steps; those it applied (none when the schema is up to date)."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK)
        await conn.execute(_LEDGER)
        rows = await conn.fetch("SELECT version, checksum FROM gateway_schema_migrations")
        applied = {row["version"]: row["checksum"] for row in rows}
        _check_unchanged(steps, applied)
        pending = [step for step in steps if step.version not in applied]
        for step in pending:
            await conn.execute(step.sql)
            await conn.execute(
                "INSERT INTO gateway_schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                step.version,
                step.name,
                step.checksum,
            )
            log.info("gateway: applied schema step %03d_%s", step.version, step.name)
    return pending


def _check_unchanged(steps: tuple[Step, ...], applied: dict[int, str]) -> None:
    for step in steps:
        if applied.get(step.version, step.checksum) != step.checksum:
            raise FailedPrecondition(
                f"gateway schema step {step.version:03d}_{step.name} changed after it was applied;"
                " add a new step instead"
            )
