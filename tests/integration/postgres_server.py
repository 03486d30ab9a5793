"""A real PostgreSQL for the tests: DATABASE_URL when set, else the server on the default local
port when one answers, else an embedded one (pgserver) started for the session. Each test that
writes gets its own database (`fresh_database`), created before it and dropped after it; or a
module's own (`Databases`: empty or copies of one, dropped together at its end). A test that
needs the recorder's tables and has nothing to prove about making them takes `recorder_database`:
a copy of a database the recorder prepared once for the process (`recorder_template`). The
recorder's start on an empty database (its 17 migrations, 23 partitioned tables and their 4 days
of partitions: 428 relations) cost the server 0.77 CPU s and 5.5 s of the test's wait, made,
prepared and dropped, where a copy that the start finds prepared cost 0.37 s and 2.4 s (the same
8 of each, interleaved, on this machine under its usual load of other work).

The drops run off the tests' path (`_Dropper`): a DROP DATABASE waits for a checkpoint, which
writes every dirty buffer of the server (every test's writes: 0.1 s at a quiet moment, ~4 s under
a whole run), so each test's teardown paid one. A thread drops whatever is queued, all at once
(drops running together wait for the same checkpoint), and the session's end waits for the
last."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import struct
import tempfile
import threading
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest

__all__ = [
    "Databases",
    "database_url",
    "fresh_database",
    "recorder_database",
    "recorder_template",
    "with_database",
]

_LOCAL = ("127.0.0.1", 5432)
_LOCAL_URL = f"postgresql://postgres@{_LOCAL[0]}:{_LOCAL[1]}/postgres"
# Databases dropped at once, a connection each: a module's (a third of PostgreSQL's default 100).
_DROPS_AT_ONCE = 32
# The embedded server's settings (reloaded, none needs a restart): it lives for the session and
# its data with it, so nothing it writes need survive a crash of the machine; no fsync of the WAL
# at commits, of the files at checkpoints (a DROP DATABASE's, each CREATE DATABASE copying its
# template), and no page images written to the WAL to survive a torn write.
_THROWAWAY = """
ALTER SYSTEM SET fsync = off;
ALTER SYSTEM SET synchronous_commit = off;
ALTER SYSTEM SET full_page_writes = off;
SELECT pg_reload_conf();
"""
# How the page images in the WAL of the tests' sessions are compressed (`_compress_wal`).
_WAL_COMPRESSION = "zstd"
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
    """The server's URL; its end waits for the databases queued to drop (_DROPPER)."""
    configured = os.environ.get("DATABASE_URL")
    if configured:
        with _drained(configured):
            yield configured
    elif _local_answers():
        with _drained(_LOCAL_URL):
            yield _LOCAL_URL
    else:
        from pgserver.postgres_server import get_server

        server = get_server(tempfile.mkdtemp(prefix="trademesh-pg-"), cleanup_mode="stop")
        try:
            server.psql(_THROWAWAY)
            with _drained(server.get_uri()):
                yield server.get_uri()
        finally:
            server.cleanup()


@contextlib.contextmanager
def _drained(database_url: str) -> Iterator[None]:
    """At the end: this process's templates on the server dropped, and every drop waited for."""
    try:
        yield
    finally:
        _DROPPER.add(database_url, _TEMPLATES.pop(database_url, []))
        _DROPPER.wait()


class _Dropper:
    """Databases dropped on a thread of their own, each batch all at once: `add` queues and
    returns at once; `wait` returns once every one queued is dropped, raising the first failure."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queued: list[tuple[str, str]] = []  # (server URL, database name)
        self._running = False
        self._failed: list[BaseException] = []

    def add(self, database_url: str, names: list[str]) -> None:
        with self._lock:
            self._queued.extend((database_url, name) for name in names)
            if self._queued and not self._running:
                self._running = True
                threading.Thread(target=self._run, name="drop databases").start()

    def _run(self) -> None:
        while True:
            with self._lock:
                batch, self._queued = self._queued, []
                if not batch:
                    self._running = False
                    self._idle.notify_all()
                    return
            failed = asyncio.run(_drop_together(batch))
            with self._lock:
                self._failed.extend(failed)

    def wait(self) -> None:
        with self._lock:
            self._idle.wait_for(lambda: not self._running)
            failed, self._failed = self._failed, []
        if failed:
            raise failed[0]

    @contextlib.contextmanager
    def drained(self) -> Iterator[None]:
        try:
            yield
        finally:
            self.wait()


_DROPPER = _Dropper()


def drops_settled() -> None:
    """Returns once the databases queued to drop are dropped: no drop's thread, event loop or
    connection is open then (a test that counts this process's descriptors waits for it)."""
    _DROPPER.wait()


async def _drop_together(batch: list[tuple[str, str]]) -> list[BaseException]:
    """Each database of `batch` dropped, at most _DROPS_AT_ONCE at a time; the failures."""
    gate = asyncio.Semaphore(_DROPS_AT_ONCE)

    async def drop(url: str, name: str) -> None:
        async with gate:
            await _drop(url, name)

    done = await asyncio.gather(*(drop(url, name) for url, name in batch), return_exceptions=True)
    return [e for e in done if isinstance(e, BaseException)]


@contextlib.asynccontextmanager
async def new_database(
    database_url: str, prefix: str, keep: bool = False, copy_of: str | None = None
) -> AsyncIterator[str]:
    """The URL of a new, empty database named <prefix>_<random>, dropped after exit (_Dropper)
    unless `keep`;
    with `copy_of` (the URL of a database no one is connected to), a copy of that one: its
    tables and rows for a tenth of a second, where writing them again took seconds."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    template = "" if copy_of is None else f" TEMPLATE {urllib.parse.urlsplit(copy_of).path.lstrip('/')}"
    await _create(database_url, name, template)
    try:
        yield with_database(database_url, name)
    finally:
        if not keep:
            _DROPPER.add(database_url, [name])


class Databases:
    """New databases on one server, each empty or a copy of another, dropped together after
    drop_all() (_Dropper). A DROP DATABASE waits for a checkpoint (the server's dirty buffers
    written and synced: 0.5-3.5 s on a machine the other tests load, most of a small store test's
    time); drops running together wait for the same one. Measured dropping a module's 31
    databases: under a second all at once, 8-30 s 8 at a time."""

    def __init__(self, database_url: str, prefix: str) -> None:
        self.database_url = database_url
        self.prefix = prefix
        self.names: list[str] = []

    async def new(self, copy_of: str | None = None) -> str:
        """The URL of a new database: empty, or a copy of the database at URL `copy_of` (which
        no connection may hold meanwhile)."""
        name = f"{self.prefix}_{uuid.uuid4().hex[:12]}"
        template = f" TEMPLATE {_name(copy_of)}" if copy_of else ""
        await _create(self.database_url, name, template)
        self.names.append(name)
        return with_database(self.database_url, name)

    async def drop_all(self) -> None:
        names, self.names = self.names, []
        _DROPPER.add(self.database_url, names)


async def _create(database_url: str, name: str, template: str) -> None:
    """CREATE DATABASE, its commits not waiting for the WAL's fsync (synchronous_commit off): a
    test's database lives for its test, and no test stops the server, so the wait bought nothing
    (300 one-row commits: 0.12 s with it, 0.02 s without, on this machine's server at a quiet
    moment; 3 s with it on a loaded one). Each commit is
    still atomic and seen by every later read: only a crash of the server could lose the last.

    The copy and the database's sessions write their WAL compressed (`_compress_wal`)."""
    admin = await asyncpg.connect(database_url)
    try:
        compressed = await _compress_wal(admin)
        await admin.execute(f"CREATE DATABASE {name}{template}")
        await admin.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
        if compressed:
            await admin.execute(f"ALTER DATABASE {name} SET wal_compression = {_WAL_COMPRESSION}")
    finally:
        await admin.close()


async def _compress_wal(admin: asyncpg.Connection) -> bool:
    """Whether `admin`'s session now compresses the page images it writes to the WAL: a CREATE
    DATABASE (PostgreSQL 15's WAL_LOG strategy) writes every page of its template there (7.5 MB
    of an empty one, 13 MB of the recorder's template), and the CREATE DATABASE statements were
    most of the server's CPU under the tests, nearly all of it system time. Compressed, a copy of
    the recorder's template wrote 1.8 MB of WAL where it wrote 6.8, and took 0.16 CPU s where it
    took 0.22 (8 of each, interleaved). Only a superuser may set it, on a server built with zstd
    (PostgreSQL 15 on): elsewhere the WAL stays as it was."""
    try:
        await admin.execute(f"SET wal_compression = {_WAL_COMPRESSION}")
    except asyncpg.PostgresError:
        return False
    return True


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


# The databases made to be copied, by server URL: the recorder's (one, made at the process's
# first `recorder_template`; a second only if two made it together), dropped at the session's end.
_TEMPLATES: dict[str, list[str]] = {}
_RECORDER_TEMPLATE: dict[str, str] = {}


async def recorder_template(database_url: str) -> str:
    """The URL of this process's database that the recorder's start prepared (its migrations
    applied, its partitions made for yesterday to two days ahead), made at the first call; no
    connection is left on it, so it can be copied (`new_database(..., copy_of=...)`)."""
    made = _RECORDER_TEMPLATE.get(database_url)
    if made is None:
        from trademesh.core.recorder.app import RecorderConfig, prepare
        from trademesh.core.recorder.database import open_pool

        name = f"rectemplate_{uuid.uuid4().hex[:12]}"
        await _create(database_url, name, "")
        _TEMPLATES.setdefault(database_url, []).append(name)
        made = with_database(database_url, name)
        pool = await open_pool(made)
        try:
            await prepare(pool, RecorderConfig(database_url=made, redis_url="redis://unused"))
        finally:
            await pool.close()
        _RECORDER_TEMPLATE.setdefault(database_url, made)
    return made


@pytest.fixture
async def recorder_database(database_url: str) -> AsyncIterator[str]:
    """The URL of a new database with the recorder's tables (a copy of `recorder_template`:
    migrated, its partitions made), dropped after the test. Whatever the recorder's start does
    on it again (`prepare`: no migration pending, the partitions of the days it wants) is what it
    does on every restart."""
    async with new_database(database_url, "rec", copy_of=await recorder_template(database_url)) as url:
        yield url
