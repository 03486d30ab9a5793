"""A database URL checked before a command's work (trademesh.core.platform.postgres.connect): each way a URL
fails to reach a PostgreSQL that takes it is its own line, naming the setting and the URL with
its password hidden; a PostgreSQL that takes it passes."""

from __future__ import annotations

import socketserver
import time
from collections.abc import Iterator

import pytest

import trademesh.core.platform.postgres.connect
from tests.integration.postgres_server import database_url, with_database
from tests.integration.support import ClosesOnFirstBytes, tcp_server
from trademesh.core.platform.errors import InvalidArgument, TrademeshError, Unavailable
from trademesh.core.platform.postgres.connect import check_database

pytestmark = pytest.mark.integration  # servers on sockets
__all__ = ["database_url"]  # the fixture, for pytest


class _Silent(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        time.sleep(2)  # reads nothing, says nothing: a server of another protocol waiting for its own


@pytest.fixture(scope="module")
def closing_port() -> Iterator[int]:
    yield from tcp_server(ClosesOnFirstBytes)


@pytest.fixture(scope="module")
def silent_port() -> Iterator[int]:
    yield from tcp_server(_Silent)


async def _refusal(url: str) -> TrademeshError:
    with pytest.raises(TrademeshError) as caught:
        await check_database(url, "DATABASE_URL")
    assert "secret" not in str(caught.value)
    return caught.value


async def test_a_port_nothing_listens_on_is_unavailable_naming_the_setting() -> None:
    error = await _refusal("postgresql://u:secret@127.0.0.1:1/x")
    assert isinstance(error, Unavailable)
    assert (
        str(error)
        == "DATABASE_URL: postgresql://u:***@127.0.0.1:1/x: nothing listens there (connection refused)"
    )


async def test_a_server_that_closes_the_connection_is_not_postgresql(closing_port: int) -> None:
    error = await _refusal(f"postgresql://u:secret@127.0.0.1:{closing_port}/x")
    assert isinstance(error, InvalidArgument) and error.violations[0].field == "DATABASE_URL"
    assert "answers, but not as PostgreSQL" in str(error)


async def test_a_server_that_never_answers_is_said_at_the_connect_deadline(
    silent_port: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trademesh.core.platform.postgres.connect, "CONNECT_TIMEOUT_S", 0.3)
    started = time.monotonic()
    error = await _refusal(f"postgresql://u:secret@127.0.0.1:{silent_port}/x")
    assert isinstance(error, Unavailable) and time.monotonic() - started < 2
    assert str(error).endswith(f"{silent_port}/x: no answer as PostgreSQL within 0.3 s")


@pytest.mark.slow  # PostgreSQL
async def test_a_postgresql_that_refuses_the_url_is_named_and_one_that_takes_it_passes(
    database_url: str,
) -> None:
    error = await _refusal(with_database(database_url, "no_such_database_here"))
    assert isinstance(error, InvalidArgument)
    assert 'PostgreSQL refuses it: database "no_such_database_here" does not exist' in str(error)
    await check_database(database_url, "DATABASE_URL")
