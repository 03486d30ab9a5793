"""A database URL checked before a command's work starts: one connection, opened and closed.

A one-shot command that reads the recorder's history (`trademesh backtest`, `backtest-sweep`)
meets its database first: a URL where nothing listens, a server that is not PostgreSQL (it
closes the connection, or says nothing PostgreSQL can read), or a PostgreSQL that refuses it
(a password, a database that is not there) is one line naming the setting the URL came from
(DATABASE_URL or --database-url), as trademesh.core.platform.bus.redis says a wrong REDIS_URL, and not
a failure seconds later inside the work (a sweep's worker pool started first).

A service's stores open their pools through `open_pool`: no floor of open connections, the
store's connect and statement timeouts, and the connections named for the service in
pg_stat_activity.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from trademesh.core.platform.errors import InvalidArgument, Unavailable
from trademesh.core.platform.logs.redact import redact_url, scrub

__all__ = ["CONNECT_TIMEOUT_S", "check_database", "open_pool"]

CONNECT_TIMEOUT_S = 5.0


async def check_database(url: str, setting: str) -> None:
    """Connect to `url` and close; Unavailable when nothing answers there (or nothing within
    CONNECT_TIMEOUT_S), InvalidArgument when what answers is not a PostgreSQL that takes the URL;
    either naming `setting` and the URL redacted."""
    where = redact_url(url)
    try:
        connection = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    except asyncpg.PostgresError as exc:  # a password, a database that is not there
        raise InvalidArgument.field(setting, f"{where}: PostgreSQL refuses it: {_reason(exc, url)}") from None
    except TimeoutError:
        raise Unavailable(
            f"{setting}: {where}: no answer as PostgreSQL within {CONNECT_TIMEOUT_S:g} s"
        ) from None
    except ConnectionRefusedError:
        raise Unavailable(f"{setting}: {where}: nothing listens there (connection refused)") from None
    except (
        ConnectionError,
        asyncpg.ProtocolError,
    ) as exc:  # closed, reset, or answered in no protocol of ours
        raise InvalidArgument.field(
            setting, f"{where} answers, but not as PostgreSQL ({_reason(exc, url)})"
        ) from None
    except OSError as exc:  # a host that is not there, no route
        raise Unavailable(f"{setting}: {where}: cannot connect ({_reason(exc, url)})") from None
    except (asyncpg.InterfaceError, ValueError, OverflowError) as exc:  # a URL asyncpg cannot use
        raise InvalidArgument.field(setting, f"{where}: {_reason(exc, url)}") from None
    await connection.close(timeout=CONNECT_TIMEOUT_S)


async def open_pool(
    url: str,
    *,
    max_size: int,
    connect_timeout_s: float,
    statement_timeout_s: float | None = None,
    application: str | None = None,
    init: Callable[[Any], Awaitable[None]] | None = None,
    reset: Callable[[Any], Awaitable[None]] | None = None,
) -> asyncpg.Pool:
    """An asyncpg pool of up to `max_size` connections and no floor (min_size 0): a floor would
    keep connections in the background and log a traceback for each failed attempt while the
    database is away; connections are made when a caller needs one, where a failure is the
    caller's to handle. `application` names the connections `trademesh-<application>` in
    pg_stat_activity; `init`/`reset` as asyncpg's (a new connection's set-up, a released one's
    reset). The caller maps asyncpg's errors to its own."""
    settings = {"application_name": f"trademesh-{application}"} if application else None
    return await asyncpg.create_pool(
        url,
        min_size=0,
        max_size=max_size,
        timeout=connect_timeout_s,
        command_timeout=statement_timeout_s,
        init=init,
        reset=reset,
        server_settings=settings,
    )


def _reason(exc: BaseException, url: str) -> str:
    """The library's text, its secrets scrubbed (it may quote the URL)."""
    text = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return scrub(text or type(exc).__name__, url)
