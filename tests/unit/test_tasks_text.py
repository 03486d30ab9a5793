"""trademesh.core.platform.service.tasks: a stuck task's dump names where it waits, not only where it began
(an inspector's stall dump once showed only `_carry_out`, not the wait inside it)."""

from __future__ import annotations

import asyncio

from trademesh.core.platform.service.tasks import awaited_frames, tasks_text


async def _innermost(gate: asyncio.Event) -> None:
    await gate.wait()


async def _middle(gate: asyncio.Event) -> None:
    await _innermost(gate)


async def _outer(gate: asyncio.Event) -> None:
    await _middle(gate)


async def test_a_task_waiting_deep_in_its_awaits_shows_each_of_them_outermost_first() -> None:
    gate = asyncio.Event()
    task = asyncio.create_task(_outer(gate), name="stuck")
    await asyncio.sleep(0)
    try:
        names = [frame.f_code.co_name for frame in awaited_frames(task)]
        assert names[:4] == ["_outer", "_middle", "_innermost", "wait"]  # Event.wait, asyncio's
        dump = tasks_text()
        stuck = dump[dump.index("name='stuck'") :]
        assert " in _outer\n" in stuck and " in _innermost\n" in stuck
    finally:
        gate.set()
        await task
    assert awaited_frames(task) == []  # done: nothing awaited
