"""A real PostgreSQL for the tests: DATABASE_URL when set, else the server on the default local
port when one answers, else an embedded one (pgserver) started for the session. Each test that
writes gets its own database (`fresh_database`), created before it and dropped after it; or a
module's own (`Databases`: empty or copies of one, dropped together at its end)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import tempfile
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

__all__ = ["Databases", "database_url", "fresh_database", "with_database"]

_LOCAL = ("127.0.0.1", 5432)
_LOCAL_URL = f"postgresql://postgres@{_LOCAL[0]}:{_LOCAL[1]}/postgres"
# Databases dropped at once, a connection each: a module's (a third of PostgreSQL's default 100).
_DROPS_AT_ONCE = 32
# The startup packet of PostgreSQL's SSL negotiation: a server answers it with one byte, S or N.
_SSL_REQUEST = struct.pack("!ii", 8, 80877103)


def _local_answers() -> bool:
    try:
        with socket.create_connection(_LOCAL, timeout=0.5) as sock:
            sock.sendall(_SSL_REQUEST)
            return sock.recv(1) in (b"S", b"N")
    except OSError:
        return False


def with_database(url: str, name: str) -> str:
    """The same server's URL for database `name`."""
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    configured = os.environ.get("DATABASE_URL")
    if configured:
        yield configured
    elif _local_answers():
        yield _LOCAL_URL
    else:
        from pgserver.postgres_server import get_server

        server = get_server(tempfile.mkdtemp(prefix="trademesh-pg-"), cleanup_mode="stop")
        try:
            yield server.get_uri()
        finally:
            server.cleanup()


@contextlib.asynccontextmanager
async def new_database(
    database_url: str, prefix: str, keep: bool = False, copy_of: str | None = None
) -> AsyncIterator[str]:
    """The URL of a new, empty database named <prefix>_<random>, dropped on exit unless `keep`;
    with `copy_of` (the URL of a database no one is connected to), a copy of that one: its
    tables and rows for a tenth of a second, where writing them again took seconds."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    template = "" if copy_of is None else f" TEMPLATE {urllib.parse.urlsplit(copy_of).path.lstrip('/')}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"CREATE DATABASE {name}{template}")
    finally:
        await admin.close()
    try:
        yield with_database(database_url, name)
    finally:
        if not keep:
            await _drop(database_url, name)


class Databases:
    """New databases on one server, each empty or a copy of another, dropped together by
    drop_all(). A DROP DATABASE waits for a checkpoint (the server's dirty buffers written and
    synced: 0.5-3.5 s on a machine the other tests load, most of a small store test's time);
    drops running together wait for the same one. Measured dropping a module's 31 databases:
    under a second all at once, 8-30 s 8 at a time."""

    def __init__(self, database_url: str, prefix: str) -> None:
        self.database_url = database_url
        self.prefix = prefix
        self.names: list[str] = []

    async def new(self, copy_of: str | None = None) -> str:
        """The URL of a new database: empty, or a copy of the database at URL `copy_of` (which
        no connection may hold meanwhile)."""
        name = f"{self.prefix}_{uuid.uuid4().hex[:12]}"
        template = f" TEMPLATE {_name(copy_of)}" if copy_of else ""
        admin = await asyncpg.connect(self.database_url)
        try:
            await admin.execute(f"CREATE DATABASE {name}{template}")
        finally:
            await admin.close()
        self.names.append(name)
        return with_database(self.database_url, name)

    async def drop_all(self) -> None:
        names, self.names = self.names, []
        gate = asyncio.Semaphore(_DROPS_AT_ONCE)

        async def drop(name: str) -> None:
            async with gate:
                await _drop(self.database_url, name)

        failed = [e for e in await asyncio.gather(*map(drop, names), return_exceptions=True) if e is not None]
        if failed:
            raise failed[0]


def _name(url: str) -> str:
    return urllib.parse.urlsplit(url).path.lstrip("/")


async def _drop(database_url: str, name: str) -> None:
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    finally:
        await admin.close()


@pytest.fixture
async def fresh_database(database_url: str) -> AsyncIterator[str]:
    """The URL of a new, empty database, dropped after the test."""
    async with new_database(database_url, "rec") as url:
        yield url
