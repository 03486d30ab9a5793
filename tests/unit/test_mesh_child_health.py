"""The supervisor's wait for a started child's health (trademesh.core.cli.mesh.supervisor.Child): a child
that dies during it is seen at once, and one never healthy is killed at the deadline (so the
supervisor restarts it). Real processes; the health checks go to a port nothing listens on."""

from __future__ import annotations

import asyncio
import io
import socket
import time
from collections.abc import AsyncIterator

import pytest

from trademesh.core.cli.mesh.supervisor import Child, ChildSpec
from trademesh.core.platform.errors import Unavailable


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def child() -> AsyncIterator[Child]:
    """A child past its serving line: its process runs, its health answers nothing."""
    child = Child(ChildSpec("probe", lambda info: []), 5, io.StringIO())
    child.process = await asyncio.create_subprocess_exec("sleep", "600")
    child.info = {"event": "serving", "host": "127.0.0.1", "port": closed_port()}
    yield child
    if child.process.returncode is None:
        child.process.kill()
    await child.process.wait()


async def test_a_child_that_exits_before_it_is_healthy_ends_the_wait_at_once(child: Child) -> None:
    waiting = asyncio.create_task(child.wait_healthy())
    await asyncio.sleep(0.5)  # a few looks at its health first
    assert not waiting.done()
    assert child.process is not None
    killed = time.monotonic()
    child.process.kill()
    # The wait ends well before its 30 s deadline (before: only at the deadline).
    with pytest.raises(Unavailable, match=r"probe exited with -9 before it was healthy"):
        await asyncio.wait_for(waiting, 10)
    assert time.monotonic() - killed < 10


async def test_a_child_not_healthy_by_the_deadline_is_killed(child: Child) -> None:
    child.healthy_timeout_s = 0.5
    with pytest.raises(Unavailable, match=r"probe at 127\.0\.0\.1:\d+ is not healthy"):
        await asyncio.wait_for(child.wait_healthy(), 10)
    assert child.process is not None
    # Killed: the supervisor's wait on its exit ends, and it restarts it.
    assert await asyncio.wait_for(child.process.wait(), 10) == -9
