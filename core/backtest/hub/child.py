"""A run's process (core.backtest.hub.runs), started by the standard library's subprocess and
followed on the event loop: its output as streams, its end as a future.

Not the loop's own create_subprocess_exec: the hub runs on uvloop, which forks and then, in the
child of this process with its gRPC, executor and BLAS threads, runs Python's after-fork hooks
before the exec. The child died there of SIGSEGV in about one start of twenty ("the run's
process ended with code -11", before it began). subprocess.Popen forks with vfork and runs
nothing of Python's before the exec.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
from collections.abc import Mapping, Sequence
from typing import IO

__all__ = ["Child", "start_child"]

_LINE_LIMIT = 2**16  # the longest line read, as asyncio's subprocess streams read them


class Child:
    """What the hub uses of a run's process: its pid, its stdout and stderr, its end, and a
    signal to end it."""

    def __init__(
        self,
        popen: subprocess.Popen[bytes],
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
        ended: asyncio.Future[int],
    ) -> None:
        self.pid = popen.pid
        self.stdout = stdout
        self.stderr = stderr
        self._popen = popen
        self._ended = ended

    async def wait(self) -> int:
        """Its exit code once it has ended (minus the signal's number when one ended it)."""
        return await asyncio.shield(self._ended)  # a cancelled waiter leaves the end to others

    def terminate(self) -> None:
        """SIGTERM, unless it has ended already."""
        self._popen.terminate()


async def start_child(args: Sequence[str], env: Mapping[str, str]) -> Child:
    """`args` with `env`, its stdout and stderr piped to this loop."""
    loop = asyncio.get_running_loop()
    # Blocks until the exec, milliseconds after the vfork: as long as the loop's own spawn did.
    popen = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)  # noqa: ASYNC220
    assert popen.stdout is not None and popen.stderr is not None
    stdout, stderr = await _reader(loop, popen.stdout), await _reader(loop, popen.stderr)
    return Child(popen, stdout, stderr, _end_of(loop, popen))


async def _reader(loop: asyncio.AbstractEventLoop, pipe: IO[bytes]) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=_LINE_LIMIT)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    return reader


def _end_of(loop: asyncio.AbstractEventLoop, popen: subprocess.Popen[bytes]) -> asyncio.Future[int]:
    """A future of the process's exit code, set when it ends: a thread of its own waits for it
    (one per run: the loop's executor is the hub's checks')."""
    ended: asyncio.Future[int] = loop.create_future()

    def settle(code: int) -> None:
        if not ended.done():
            ended.set_result(code)

    def wait() -> None:
        code = popen.wait()
        with contextlib.suppress(RuntimeError):  # the loop closed first: the hub has stopped
            loop.call_soon_threadsafe(settle, code)

    threading.Thread(target=wait, name=f"backtest run {popen.pid}", daemon=True).start()
    return ended
