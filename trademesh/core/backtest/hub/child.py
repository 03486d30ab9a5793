"""A run's process (trademesh.core.backtest.hub.runs), forked from the hub's run server and followed on the
event loop: its output as streams, its end as a future.

The run server is multiprocessing's forkserver, started at the hub's first run: a fresh Python
(exec'd, as subprocess.Popen starts one: nothing of the hub's threads or event loop is in it)
that imports the run's modules once (trademesh.core.backtest.hub.run_process), then forks a process per
run. An exec'd `python -m trademesh.core.cli backtest` per run imported them every time: most of a short
run's CPU (1.3 of 2.2 s over the tests' 20 minutes of history).

Never the loop's own create_subprocess_exec, nor a fork of the hub itself: the hub runs on
uvloop, which forks and then, in the child of this process with its gRPC, executor and BLAS
threads, runs Python's after-fork hooks before the exec. The child died there of SIGSEGV in
about one start of twenty ("the run's process ended with code -11", before it began).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import threading
from collections.abc import Mapping, Sequence
from multiprocessing import reduction
from typing import Any

__all__ = ["RunProcess", "start_child"]

_LINE_LIMIT = 2**16  # the longest line read, as asyncio's subprocess streams read them
# What the run server imports once: this module (the run's entry, below) and the run's modules.
# Not imported here: the hub starts without the engine (tests/unit/test_backtester_start.py).
_PRELOAD = [__name__, "trademesh.core.backtest.hub.run_process"]


class Descriptor:
    """A descriptor of the hub's, sent to the run's process as it is forked (multiprocessing's
    descriptor passing): there, the run's own duplicate of it, an int."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        return _received, (reduction.DupFd(self.fd),)


def _received(passed: Any) -> int:
    fd: int = passed.detach()
    return fd


def _run(argv: list[str], env: dict[str, str], stdout: int, stderr: int) -> None:
    """The run's process (forked from the run server, which imported what this imports)."""
    from trademesh.core.backtest.hub.run_process import run

    run(argv, env, stdout, stderr)


class RunProcess:
    """What the hub uses of a run's process: its pid, its stdout and stderr, its end, and a
    signal to end it."""

    def __init__(
        self,
        process: Any,
        stdout: asyncio.StreamReader,
        stderr: asyncio.StreamReader,
        ended: asyncio.Future[int],
    ) -> None:
        self.pid: int = process.pid
        self.stdout = stdout
        self.stderr = stderr
        self._process = process
        self._ended = ended

    async def wait(self) -> int:
        """Its exit code once it has ended (minus the signal's number when one ended it)."""
        return await asyncio.shield(self._ended)  # a cancelled waiter leaves the end to others

    def terminate(self) -> None:
        """SIGTERM, unless it has ended already."""
        self._process.terminate()


async def start_child(argv: Sequence[str], env: Mapping[str, str]) -> RunProcess:
    """`trademesh` with the arguments `argv` ("backtest", ...) and exactly the environment `env`,
    forked from the run server, its stdout and stderr piped to this loop."""
    loop = asyncio.get_running_loop()
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(_PRELOAD)  # the hub's only forkserver: its runs'
    pipes = [os.pipe(), os.pipe()]  # stdout, stderr: (read, write)
    process = context.Process(
        target=_run, args=(list(argv), dict(env), *(Descriptor(w) for _, w in pipes)), daemon=True
    )
    try:
        # Blocks until the fork (the server's first start imports the run's modules: seconds).
        await asyncio.to_thread(process.start)
    except BaseException:
        for read, _ in pipes:
            os.close(read)
        raise
    finally:
        for _, write in pipes:
            os.close(write)  # the run's are its own now: the streams end when it does
    stdout, stderr = [await _reader(loop, read) for read, _ in pipes]
    return RunProcess(process, stdout, stderr, _end_of(loop, process))


async def _reader(loop: asyncio.AbstractEventLoop, fd: int) -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=_LINE_LIMIT)
    # A file object over the pipe's descriptor (no I/O), which the transport owns and closes.
    pipe = os.fdopen(fd, "rb", buffering=0)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), pipe)
    return reader


def _end_of(loop: asyncio.AbstractEventLoop, process: Any) -> asyncio.Future[int]:
    """A future of the process's exit code, set when it ends: a thread of its own waits for it
    (one per run: the loop's executor is the hub's checks')."""
    ended: asyncio.Future[int] = loop.create_future()

    def settle(code: int) -> None:
        if not ended.done():
            ended.set_result(code)

    def wait() -> None:
        process.join()
        with contextlib.suppress(RuntimeError):  # the loop closed first: the hub has stopped
            loop.call_soon_threadsafe(settle, process.exitcode)

    threading.Thread(target=wait, name=f"backtest run {process.pid}", daemon=True).start()
    return ended
