"""A cancelled task stays cancelled: Python 3.11's `asyncio.wait_for` mended.

On Python 3.11, `asyncio.wait_for` runs what it waits for in a task of its own and, when the
caller is cancelled in the loop turn in which that inner task finished, returns the inner
result instead of raising CancelledError (CPython gh-86296, fixed in 3.12 by waiting under
`asyncio.timeout` in the caller's own task). The cancel is lost: a loop that runs until its
stop event, cancelled without it, runs on. redis-py sends every command under `wait_for` when
a socket timeout is set (ours always is), so any task cancelled while it talks to Redis could
lose its cancel: the inspector's bus consumer, cancelled as its lease was lost, read on for a
minute (1 run in ~50 of a random cancel; seen in CI as a deposed leader that never stopped).

`mend_wait_for()` puts 3.12's semantics in place on 3.11: the awaitable runs in the caller's
task under `asyncio.timeout`, so a cancel always reaches it. Called once as a process starts
(trademesh.core.cli; the tests' conftest); on 3.12 and later it does nothing.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import Any, TypeVar

__all__ = ["cancel_and_wait", "mend_wait_for", "wait_for"]

T = TypeVar("T")

_ORIGINAL = asyncio.wait_for


async def wait_for(fut: Awaitable[T], timeout: float | None) -> T:  # noqa: ASYNC109 (the stdlib's)
    """`fut`'s result (an awaitable), or TimeoutError after `timeout` s (None: no limit). A
    cancel of the caller cancels `fut` and is raised, whatever `fut` did in the same turn."""
    if timeout is not None and timeout <= 0:
        # Already out of time: what is done at once is returned, anything else cancelled.
        future = asyncio.ensure_future(fut)
        if future.done():
            return future.result()
        future.cancel()
        await asyncio.wait({future})
        if future.cancelled():
            raise TimeoutError
        return future.result()
    async with asyncio.timeout(timeout):
        return await fut


async def cancel_and_wait(task: asyncio.Future[Any]) -> None:
    """Cancel `task` and return once it has ended; an error it ended with (not the cancel) is
    raised. A cancel of the caller meanwhile is raised as well: `task.cancel()` then `await task`
    under suppress(CancelledError) took the caller's own cancel for the task's and swallowed it."""
    task.cancel()
    await asyncio.wait({task})
    if not task.cancelled() and (error := task.exception()) is not None:
        raise error


def mend_wait_for() -> None:
    """On Python 3.11: `asyncio.wait_for` (the attribute every library calls) is `wait_for`."""
    if sys.version_info < (3, 12):
        mended: Any = wait_for
        asyncio.wait_for = mended
        asyncio.tasks.wait_for = mended


def mended() -> bool:
    """Whether `asyncio.wait_for` keeps a caller's cancel (3.12+, or mended)."""
    return sys.version_info >= (3, 12) or asyncio.wait_for is not _ORIGINAL
