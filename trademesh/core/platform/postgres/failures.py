"""A store's database failures as the platform's errors, where they enter: Unavailable naming the
database's URL redacted, and the library's text with the URL's secrets scrubbed (it may quote the
URL), so a command prints one clear line and never a password.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import asyncpg
from asyncpg.exceptions import _base as asyncpg_base

from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.logs.redact import redact_url, scrub

__all__ = ["DATABASE_ERRORS", "database_reason", "unavailable_on_failure"]

# What a database call can raise when the database is away, refuses us, or the URL is bad.
DATABASE_ERRORS = (
    OSError,
    TimeoutError,
    ValueError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg_base.InternalClientError,  # a pooled connection the server dropped
)


def database_reason(exc: BaseException, url: str) -> str:
    """The library's text (or the exception's name), every secret of `url` in it as ***."""
    return scrub(str(exc) or type(exc).__name__, url)


@contextlib.contextmanager
def unavailable_on_failure(url: str, what: str = "PostgreSQL") -> Iterator[None]:
    """DATABASE_ERRORS raised inside as Unavailable: "<what> at <the URL redacted>: <reason>"."""
    try:
        yield
    except DATABASE_ERRORS as exc:
        raise Unavailable(f"{what} at {redact_url(url)}: {database_reason(exc, url)}") from None
