"""A cancelled task stays cancelled (trademesh.core.platform.aio.cancellation): Python 3.11's wait_for lost
a caller's cancel when what it waited for finished in the same loop turn."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import pytest

from trademesh.core.platform.aio import cancellation

WaitFor = Callable[[Awaitable[Any], float | None], Awaitable[Any]]
TURNS = range(1, 8)  # from the task's first turn on


async def _send() -> str:
    await asyncio.sleep(0)  # one loop turn, as a socket write's drain
    return "sent"


async def _lost_cancels(wait_for: WaitFor) -> list[int]:
    """The turn counts at which a cancel of a task in `wait_for(_send(), 10)` was lost: the
    cancel was accepted (the task had not ended) and the task returned all the same."""
    lost = []
    for turns in TURNS:

        async def sending() -> Any:
            return await wait_for(_send(), 10)

        task = asyncio.create_task(sending())
        for _ in range(turns):
            await asyncio.sleep(0)
        accepted = task.cancel()
        await asyncio.wait({task})
        if accepted and not task.cancelled():
            lost.append(turns)
    return lost


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="the stdlib's wait_for keeps cancels from 3.12")
async def test_the_stdlib_wait_for_of_python_3_11_loses_a_cancel() -> None:
    assert await _lost_cancels(cancellation._ORIGINAL) != []


async def test_the_mended_wait_for_never_loses_a_cancel() -> None:
    assert await _lost_cancels(cancellation.wait_for) == []


def test_every_process_of_the_suite_has_it_mended() -> None:
    # tests/conftest.py, as trademesh.core.cli does for every trademesh process.
    assert cancellation.mended()
    assert asyncio.wait_for is cancellation.wait_for or sys.version_info >= (3, 12)


async def test_it_returns_the_result_and_times_out_as_the_stdlib_does() -> None:
    assert await cancellation.wait_for(_send(), 1.0) == "sent"
    assert await cancellation.wait_for(_send(), None) == "sent"
    slow = asyncio.ensure_future(asyncio.sleep(10))
    with pytest.raises(TimeoutError):
        await cancellation.wait_for(slow, 0.01)
    assert slow.cancelled()  # what timed out is cancelled


async def test_a_timeout_of_zero_returns_what_is_done_and_times_out_the_rest() -> None:
    done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    done.set_result(7)
    assert await cancellation.wait_for(done, 0) == 7
    pending = asyncio.ensure_future(asyncio.sleep(10))
    with pytest.raises(TimeoutError):
        await cancellation.wait_for(pending, 0)
    assert pending.cancelled()


async def _slow_to_end(ended: asyncio.Event) -> None:
    """A task that takes a few turns to end once cancelled (it closes something first)."""
    try:
        await asyncio.sleep(10)
    finally:
        for _ in range(3):
            await asyncio.sleep(0)
        ended.set()


async def _stop_the_old_way(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _caller_cancelled_while_stopping(
    stop: Callable[[asyncio.Task[None]], Coroutine[Any, Any, None]],
) -> bool:
    """Whether a caller cancelled while it stops a task that is slow to end ends cancelled."""
    ended = asyncio.Event()
    worker = asyncio.create_task(_slow_to_end(ended))
    await asyncio.sleep(0)
    caller = asyncio.create_task(stop(worker))
    await asyncio.sleep(0)  # the caller waits for the worker's end
    caller.cancel()
    await asyncio.wait({caller})
    await ended.wait()
    return caller.cancelled()


async def test_stopping_a_task_keeps_the_callers_own_cancel() -> None:
    assert not await _caller_cancelled_while_stopping(_stop_the_old_way)  # suppress() swallowed it
    assert await _caller_cancelled_while_stopping(cancellation.cancel_and_wait)


async def test_stopping_a_task_ends_it_and_raises_its_error() -> None:
    ended = asyncio.Event()
    worker = asyncio.create_task(_slow_to_end(ended))
    await asyncio.sleep(0)
    await cancellation.cancel_and_wait(worker)
    assert worker.cancelled() and ended.is_set()

    async def failing() -> None:
        raise ValueError("broken")

    failed = asyncio.create_task(failing())
    await asyncio.wait({failed})
    with pytest.raises(ValueError, match="broken"):
        await cancellation.cancel_and_wait(failed)


async def test_a_retry_loop_cancelled_is_no_longer_counted_as_retrying() -> None:
    """trademesh_retrying_loops counts live backoffs that failed; a cancelled loop's backoff lives
    on in its task's traceback until the collector's pass, and counted it as retrying."""
    from trademesh.core.platform.aio.backoff import Backoff, _retrying
    from trademesh.core.platform.aio.retry import until_reachable

    asked = asyncio.Event()

    async def refused() -> None:
        asked.set()
        raise ConnectionError("nobody serves it")

    backoff = Backoff(0.05, 0.1)
    before = _retrying()
    task = asyncio.create_task(
        until_reachable(refused, what="t", retry_on=(ConnectionError,), stop=asyncio.Event(), backoff=backoff)
    )
    await asked.wait()  # refused, and its backoff stepped, in the task's same turn
    assert _retrying() == before + 1
    await cancellation.cancel_and_wait(task)
    assert _retrying() == before  # the task, its frames and the backoff are still referenced here
