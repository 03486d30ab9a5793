"""How the recorder sorts database errors: bad data, the database away for now, or a fault."""

from __future__ import annotations

import asyncpg
import pytest
from asyncpg.exceptions import _base as asyncpg_base

from trademesh.core.recorder.database import data_error, scrub, transient_error


def caused_by(error: BaseException, cause: BaseException) -> BaseException:
    try:
        try:
            raise cause
        except BaseException:
            raise error  # noqa: B904 - the implicit context is what asyncpg produces
    except BaseException as raised:
        return raised


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.TooManyConnectionsError("too many clients"),
        asyncpg.DeadlockDetectedError("deadlock detected"),
        # A lost connection surfaces as a failed rollback whose context is the loss.
        caused_by(asyncpg.InterfaceError("connection is closed"), asyncpg.ConnectionDoesNotExistError("x")),
    ],
)
def test_the_database_away_for_now_is_transient(error: BaseException) -> None:
    assert transient_error(error) and not data_error(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.InvalidTextRepresentationError('invalid input syntax for type numeric: "abc"'),
        asyncpg.NumericValueOutOfRangeError("value out of range"),
        asyncpg.CheckViolationError('violates check constraint "trades_venue_check"'),
        asyncpg_base.DataError("invalid input for query argument"),
        OverflowError("value out of int64 range"),
    ],
)
def test_data_postgresql_refuses_is_bad_data(error: BaseException) -> None:
    assert data_error(error) and not transient_error(error)


@pytest.mark.parametrize(
    "error",
    [
        asyncpg.UndefinedTableError('relation "trades" does not exist'),
        asyncpg.InsufficientPrivilegeError("permission denied"),
        asyncpg.QueryCanceledError("canceling statement due to statement timeout"),
    ],
)
def test_other_errors_are_faults(error: BaseException) -> None:
    assert not transient_error(error) and not data_error(error)


def test_a_password_is_scrubbed_from_messages() -> None:
    url = "postgresql://rec:hunter2@db:5432/market"
    assert scrub("FATAL: bad login rec:hunter2", url) == "FATAL: bad login rec:***"
    assert scrub("nothing to hide", "postgresql://rec@db/market") == "nothing to hide"
