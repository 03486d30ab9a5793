"""The detector's patches in PostgreSQL, so patches made through the API survive a restart.

Two tables, migrated by the shared runner (trademesh.core.platform.postgres.migrations) with their own ledger
(detector_schema_migrations) and lock:

- `detector_patches`: one row per (instance, patch_id): the definition (jsonb: strategy id,
  name, description, markets, warm-up, modules with their parameters in the order they were
  added, cables), the state, the version and when it was last written;
- `detector_patch_events`: every change, append-only: version after it, kind ("module_added",
  "params_set", ...), the detail text, the engine's time of the change and when it was recorded.

`restore` rebuilds a patch from its row: same modules, cables, parameters, version and state,
except that an ACTIVE patch is left PAUSED (it needs its warm-up history first) and ACTIVE is
returned as the state it wants: the shell warms it and activates it.

Database errors become Unavailable naming the redacted URL (never a password); values the
database refuses (a write no retry can mend: text it cannot store, a value past its type)
become FailedPrecondition, so the journal can drop that patch's changes and save the others.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg

from trademesh.core.detector.convert import change_detail, change_kind
from trademesh.core.detector.engine.changes import Change
from trademesh.core.detector.engine.engine import Engine
from trademesh.core.detector.engine.lifecycle import PatchState
from trademesh.core.detector.engine.patch import Patch
from trademesh.core.platform.errors import Corrupt, FailedPrecondition
from trademesh.core.platform.postgres.connect import open_pool
from trademesh.core.platform.postgres.failures import database_reason, unavailable_on_failure
from trademesh.core.platform.postgres.migrations import Migration, MigrationSet, migrate
from trademesh.core.platform.text import storable

__all__ = [
    "DEFINITION_FORMAT",
    "MIGRATIONS",
    "SCHEMA_LOCK",
    "PatchStore",
    "StoredPatch",
    "definition",
    "restore",
]

CONNECT_TIMEOUT_S = 5.0
STATEMENT_TIMEOUT_S = 10.0
SCHEMA_LOCK = 0x74_6D_64_65_74_70  # "tmdetp": pg_advisory_xact_lock key of this set
DEFINITION_FORMAT = 1
# What the same write would meet again, however often it is retried: the values themselves
# (22: a NUL, a number out of range; 23: a constraint; ValueError: a value with no form for
# its column, from asyncpg's encoders (its client-side DataError) or from json).
_REFUSED_ERRORS = (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError, ValueError)

# Append only: an applied migration is never edited
# (trademesh.core.platform.postgres.migrations checks the checksum).
MIGRATIONS = (
    Migration(
        1,
        "patches",
        """
        CREATE TABLE detector_patches (
            instance text NOT NULL,
            patch_id text NOT NULL,
            definition jsonb NOT NULL,
            state text NOT NULL,
            version bigint NOT NULL,
            updated_at timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (instance, patch_id)
        );
        CREATE TABLE detector_patch_events (
            id bigserial PRIMARY KEY,
            instance text NOT NULL,
            patch_id text NOT NULL,
            version bigint NOT NULL,
            kind text NOT NULL,
            detail text NOT NULL,
            ts_ns bigint NOT NULL,
            recorded_at timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX detector_patch_events_patch ON detector_patch_events (instance, patch_id, id);
        """,
    ),
)
_PLAN = MigrationSet("detector", "detector_schema_migrations", SCHEMA_LOCK, MIGRATIONS)

_UPSERT = """
INSERT INTO detector_patches (instance, patch_id, definition, state, version, updated_at)
VALUES ($1, $2, $3::jsonb, $4, $5, now())
ON CONFLICT (instance, patch_id) DO UPDATE
SET definition = EXCLUDED.definition, state = EXCLUDED.state, version = EXCLUDED.version,
    updated_at = now()
"""
_EVENT = """
INSERT INTO detector_patch_events (instance, patch_id, version, kind, detail, ts_ns)
VALUES ($1, $2, $3, $4, $5, $6)
"""


@dataclass(frozen=True)
class StoredPatch:
    """One row of detector_patches."""

    patch_id: str
    definition: dict[str, Any]
    state: PatchState
    version: int


def definition(patch: Patch) -> dict[str, Any]:
    """What rebuilds the patch (restore): JSON-ready."""
    return {
        "format": DEFINITION_FORMAT,
        "strategy_id": patch.strategy_id,
        "name": patch.name,
        "description": patch.description,
        "markets": [{"venue": patch.venue, "symbol": patch.symbol}] if patch.venue or patch.symbol else [],
        "warmup": patch.declared_warmup,
        "modules": [
            {"id": node.id, "type": node.spec.type, "params": dict(node.params)}
            for node in patch.graph.nodes.values()
        ],
        "cables": [str(cable) for cable in sorted(patch.graph.cables.values())],
        # Text a module's exception made (quant code's): stored as storable, not refused.
        "error": None if patch.error is None else storable(patch.error),
    }


def restore(engine: Engine, stored: StoredPatch, now_ns: int) -> PatchState:
    """Rebuild a stored patch in `engine`; the state it wants (ACTIVE: left PAUSED until the
    shell has warmed it up and activates it). The rebuild's own change events are dropped
    from the patch's log (they are not changes); the engine's pending changes must be taken
    around it (PatchJournal.restore does). Corrupt when the definition lacks a key."""
    try:
        return _rebuild(engine, stored, now_ns)
    except (KeyError, TypeError, AttributeError) as exc:
        engine.patches.pop(stored.patch_id, None)
        raise Corrupt(f"patch {stored.patch_id}: definition is missing {exc}") from None


def _rebuild(engine: Engine, stored: StoredPatch, now_ns: int) -> PatchState:
    d = stored.definition
    if d.get("format") != DEFINITION_FORMAT:
        raise Corrupt(
            f"patch {stored.patch_id}: definition format {d.get('format')!r} is not {DEFINITION_FORMAT}"
        )
    market = (d.get("markets") or [{}])[0]
    patch = engine.create_patch(
        stored.patch_id,
        d["strategy_id"],
        now_ns,
        venue=market.get("venue", ""),
        symbol=market.get("symbol", ""),
        warmup=int(d.get("warmup", 0)),
        name=d.get("name", ""),
        description=d.get("description", ""),
    )
    for module in d["modules"]:
        patch.add_module(module["id"], module["type"], module["params"], now_ns)
    for cable in d["cables"]:
        patch.connect(cable, now_ns)
    patch.version = stored.version
    patch.changes.clear()
    if stored.state is PatchState.ACTIVE:
        patch.state = PatchState.PAUSED
    else:
        patch.state = stored.state
    if stored.state is PatchState.ERRORED:
        patch.error = d.get("error")
    return stored.state


@contextlib.contextmanager
def _refusal_mapped(url: str) -> Iterator[None]:
    """As unavailable_on_failure, but values the database refuses as FailedPrecondition (never
    retried)."""
    with unavailable_on_failure(url):
        try:
            yield
        except _REFUSED_ERRORS as exc:
            raise FailedPrecondition(f"PostgreSQL refused it: {database_reason(exc, url)}") from None


class PatchStore:
    """One detector instance's patches and their event log."""

    def __init__(self, pool: Any, url: str, instance: str) -> None:
        self._pool = pool
        self._url = url
        self.instance = instance

    @classmethod
    async def open(cls, database_url: str, instance: str) -> PatchStore:
        """Connected, with the schema in place; Unavailable when the database cannot be reached."""
        with unavailable_on_failure(database_url):
            pool = await open_pool(
                database_url,
                max_size=2,
                connect_timeout_s=CONNECT_TIMEOUT_S,
                statement_timeout_s=STATEMENT_TIMEOUT_S,
                application="detector",
            )
            try:
                async with pool.acquire() as conn:
                    await migrate(conn, _PLAN)
            except BaseException:
                await pool.close()
                raise
        return cls(pool, database_url, instance)

    async def close(self) -> None:
        await self._pool.close()

    async def write(self, saved: Iterable[Patch], deleted: Iterable[str], changes: Iterable[Change]) -> None:
        """In one transaction: upsert `saved`, delete `deleted`, record `changes`. Unavailable
        when the database is away; FailedPrecondition when it refuses the values (the same
        write would fail again)."""
        with _refusal_mapped(self._url):
            rows = [self._row(patch) for patch in saved]
            gone = [(self.instance, patch_id) for patch_id in deleted]
            events = [self._event(change) for change in changes]
            async with self._pool.acquire() as conn, conn.transaction():
                if rows:
                    await conn.executemany(_UPSERT, rows)
                if gone:
                    await conn.executemany(
                        "DELETE FROM detector_patches WHERE instance = $1 AND patch_id = $2", gone
                    )
                if events:
                    await conn.executemany(_EVENT, events)

    async def save(self, patch: Patch) -> None:
        await self.write([patch], [], [])

    async def delete(self, patch_id: str) -> None:
        await self.write([], [patch_id], [])

    async def record(self, changes: Iterable[Change]) -> None:
        await self.write([], [], changes)

    async def load_all(self) -> list[StoredPatch]:
        """Every stored patch of this instance, by patch id."""
        with unavailable_on_failure(self._url):
            rows = await self._pool.fetch(
                "SELECT patch_id, definition, state, version FROM detector_patches"
                " WHERE instance = $1 ORDER BY patch_id",
                self.instance,
            )
        return [self._stored(row) for row in rows]

    async def events(self, patch_id: str) -> list[tuple[int, str, str, int]]:
        """The recorded events of one patch, oldest first: (version, kind, detail, ts_ns)."""
        with unavailable_on_failure(self._url):
            rows = await self._pool.fetch(
                "SELECT version, kind, detail, ts_ns FROM detector_patch_events"
                " WHERE instance = $1 AND patch_id = $2 ORDER BY id",
                self.instance,
                patch_id,
            )
        return [(row["version"], row["kind"], row["detail"], row["ts_ns"]) for row in rows]

    def _row(self, patch: Patch) -> tuple[str, str, str, str, int]:
        text = json.dumps(definition(patch), allow_nan=False)
        return (self.instance, patch.id, text, patch.state.value, patch.version)

    def _event(self, change: Change) -> tuple[str, str, int, str, str, int]:
        return (
            self.instance,
            change.patch_id,
            change.version,
            change_kind(change),
            storable(change_detail(change)),  # may quote an exception's text (a patch's error)
            change.at_ns,
        )

    @staticmethod
    def _stored(row: Any) -> StoredPatch:
        try:
            state = PatchState(row["state"])
            loaded = json.loads(row["definition"])
        except ValueError as exc:
            raise Corrupt(f"patch {row['patch_id']}: unreadable row: {exc}") from None
        return StoredPatch(row["patch_id"], loaded, state, row["version"])
