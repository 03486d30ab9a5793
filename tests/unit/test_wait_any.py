"""trademesh.core.platform.aio.retry.wait_any: the one way a loop waits on whichever of its events comes
first, or a timeout (the bus writer, the advisor's refresh, the inspector's timers and markets,
the bars' repairs)."""

from __future__ import annotations

import asyncio

from trademesh.core.platform.aio.retry import wait_any


def _waits_on(*events: asyncio.Event) -> set[asyncio.Task[object]]:
    """The pending tasks waiting on one of `events` (the tests share the session's loop with
    other tests' services, whose own tasks are not these tests' business)."""
    waiting = set()
    for task in asyncio.all_tasks():
        frame = getattr(task.get_coro(), "cr_frame", None)
        if not task.done() and frame is not None and any(frame.f_locals.get("self") is e for e in events):
            waiting.add(task)
    return waiting


async def test_it_returns_when_any_event_is_set_and_leaves_no_wait_behind() -> None:
    first, second = asyncio.Event(), asyncio.Event()
    asyncio.get_running_loop().call_later(0.01, second.set)
    await asyncio.wait_for(wait_any(first, second), 5.0)
    assert second.is_set() and not first.is_set()
    assert _waits_on(first, second) == set()


async def test_it_returns_at_its_timeout_when_no_event_comes() -> None:
    loop = asyncio.get_running_loop()
    began = loop.time()
    never = asyncio.Event()
    await asyncio.wait_for(wait_any(never, timeout_s=0.05), 5.0)
    assert loop.time() - began >= 0.05
    assert _waits_on(never) == set()


async def test_cancelled_it_ends_its_waits_too() -> None:
    first, second = asyncio.Event(), asyncio.Event()
    waiting = asyncio.ensure_future(wait_any(first, second))
    await asyncio.sleep(0)
    assert len(_waits_on(first, second)) == 2
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    assert waiting.cancelled()
    assert _waits_on(first, second) == set()
