"""The API keys in PostgreSQL: create, list, revoke, replace, and the rows the gateway caches.

Only digests are stored (trademesh.gateway.auth.keys). Database errors become Unavailable naming the
redacted URL where they enter, so `trademesh keys` prints one clear line, never a traceback,
and never a password.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from trademesh.core.platform.access.contracts import Scope
from trademesh.core.platform.errors import AlreadyExists, NotFound
from trademesh.core.platform.postgres.connect import open_pool
from trademesh.core.platform.postgres.failures import unavailable_on_failure
from trademesh.gateway.auth.keys import key_digest, new_key, stored_scopes
from trademesh.gateway.auth.schema import ensure_schema

__all__ = ["KeyRecord", "KeyRow", "KeyStore"]

CONNECT_TIMEOUT_S = 5.0
STATEMENT_TIMEOUT_S = 10.0
# Serialises replacing one name's key (ensure_key_file), so two starts make one key, not two.
_REPLACE_LOCK = 0x74_6D_67_6B_65_79  # "tmgkey"


@dataclass(frozen=True)
class KeyRecord:
    """What `trademesh keys list` shows: never the digest."""

    name: str
    created_at: datetime
    revoked_at: datetime | None
    scopes: frozenset[Scope]


@dataclass(frozen=True)
class KeyRow:
    """What the gateway keeps in memory to check a presented key."""

    id: int
    name: str
    digest: bytes
    revoked: bool
    scopes: frozenset[Scope]


_INSERT = "INSERT INTO gateway_api_keys (name, key_hash, scopes) VALUES ($1, $2, $3)"
_RECORD = "name, created_at, revoked_at, scopes"


def _scope_names(scopes: Iterable[Scope]) -> list[str]:
    return sorted(scope.value for scope in set(scopes))


def _record(row: Any) -> KeyRecord:
    return KeyRecord(row["name"], row["created_at"], row["revoked_at"], stored_scopes(row["scopes"]))


def _row(row: Any) -> KeyRow:
    return KeyRow(
        row["id"], row["name"], bytes(row["key_hash"]), row["revoked"], stored_scopes(row["scopes"])
    )


class KeyStore:
    def __init__(self, pool: Any, url: str) -> None:
        self._pool = pool
        self._url = url

    @classmethod
    async def open(cls, url: str) -> KeyStore:
        """Connected, with the schema in place; Unavailable when the database cannot be reached."""
        with unavailable_on_failure(url, "cannot connect to PostgreSQL"):
            pool = await open_pool(
                url,
                max_size=1,
                connect_timeout_s=CONNECT_TIMEOUT_S,
                statement_timeout_s=STATEMENT_TIMEOUT_S,
                application="gateway-auth",
            )
            async with pool.acquire() as conn:
                await ensure_schema(conn)
        return cls(pool, url)

    async def close(self) -> None:
        await self._pool.close()

    async def create(self, name: str, scopes: Iterable[Scope]) -> str:
        """A new live key named `name` (the only time the key is seen); AlreadyExists if one is live."""
        key = new_key()
        with unavailable_on_failure(self._url):
            try:
                await self._pool.execute(_INSERT, name, key_digest(key), _scope_names(scopes))
            except asyncpg.UniqueViolationError:
                raise AlreadyExists(
                    f"a key named {name!r} exists already: revoke it first"
                    f" (trademesh keys revoke {name}) or choose another name"
                ) from None
        return key

    async def records(self) -> list[KeyRecord]:
        with unavailable_on_failure(self._url):
            rows = await self._pool.fetch(f"SELECT {_RECORD} FROM gateway_api_keys ORDER BY name, created_at")
        return [_record(row) for row in rows]

    async def revoke(self, name: str) -> KeyRecord:
        with unavailable_on_failure(self._url):
            row = await self._pool.fetchrow(
                "UPDATE gateway_api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL"
                f" RETURNING {_RECORD}",
                name,
            )
            known = row is not None or await self._pool.fetchval(
                "SELECT EXISTS (SELECT 1 FROM gateway_api_keys WHERE name = $1)", name
            )
        if row is None:
            raise NotFound(f"key {name!r} is already revoked" if known else f"no key named {name!r}")
        return _record(row)

    async def set_scopes(self, name: str, scopes: Iterable[Scope]) -> KeyRecord:
        """Gives the live key `name` exactly `scopes` (its Studio sessions too, within the
        gateway's refresh); NotFound when there is no live key of that name."""
        with unavailable_on_failure(self._url):
            row = await self._pool.fetchrow(
                "UPDATE gateway_api_keys SET scopes = $2 WHERE name = $1 AND revoked_at IS NULL"
                f" RETURNING {_RECORD}",
                name,
                _scope_names(scopes),
            )
        if row is None:
            raise NotFound(f"no live key named {name!r}: see `trademesh keys list`")
        return _record(row)

    async def rows(self) -> list[KeyRow]:
        with unavailable_on_failure(self._url):
            found = await self._pool.fetch(
                "SELECT id, name, key_hash, revoked_at IS NOT NULL AS revoked, scopes FROM gateway_api_keys"
            )
        return [_row(row) for row in found]

    async def live_scopes(self, name: str, key: str) -> frozenset[Scope] | None:
        """The scopes of `key` when it is the live key called `name`; None otherwise."""
        with unavailable_on_failure(self._url):
            found = await self._pool.fetchval(
                "SELECT scopes FROM gateway_api_keys"
                " WHERE name = $1 AND key_hash = $2 AND revoked_at IS NULL",
                name,
                key_digest(key),
            )
        return None if found is None else stored_scopes(found)

    async def replace(self, name: str, scopes: Iterable[Scope], keep: Callable[[str], None]) -> str:
        """Revokes `name`'s live key (if any) and makes a new one; `keep(key)` runs before commit,
        so a key is live only once its holder has it (a failing `keep` leaves nothing changed)."""
        key = new_key()
        with unavailable_on_failure(self._url):
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute("SELECT pg_advisory_xact_lock($1)", _REPLACE_LOCK)
                await conn.execute(
                    "UPDATE gateway_api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL",
                    name,
                )
                await conn.execute(_INSERT, name, key_digest(key), _scope_names(scopes))
                keep(key)
        return key
