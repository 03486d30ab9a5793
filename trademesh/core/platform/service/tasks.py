"""Where a process's asyncio tasks wait: every task with the stack it is suspended in. The
threads' stacks (faulthandler, py-spy) show only the event loop waiting in select; this shows
what each task waits for. A service writes it to its log on SIGUSR1 (`kill -USR1 <pid>`:
trademesh.core.platform.service.lifecycle); the suite's hung tests print it too (tests/task_dump.py)."""

from __future__ import annotations

import asyncio
import io
from types import FrameType
from typing import Any

__all__ = ["awaited_frames", "tasks_text"]


def tasks_text(loop: asyncio.AbstractEventLoop | None = None) -> str:
    """Every task of `loop` (the running one by default) and the stack it is suspended in."""
    try:
        tasks = asyncio.all_tasks(loop or asyncio.get_running_loop())
    except RuntimeError:
        tasks = set()
    text = io.StringIO()
    text.write(f"---- {len(tasks)} asyncio tasks ----\n")
    for task in tasks:
        text.write(f"{task!r}\n")
        for frame in awaited_frames(task):
            # Not task.print_stack(): a frame of compiled code (grpc's Cython) has no line
            # number, and linecache fails on it; the dump must never fail the dump.
            code = frame.f_code
            text.write(f"  {code.co_filename}:{frame.f_lineno} in {code.co_name}\n")
    return text.getvalue()


def awaited_frames(task: asyncio.Task[Any]) -> list[FrameType]:
    """The task's coroutine and each it awaits in turn, outermost first (task.get_stack() gives
    only the outermost: a stuck task said where it began, not where it waits)."""
    frames: list[FrameType] = []
    awaited: Any = task.get_coro()
    while awaited is not None:
        frame = _first(awaited, "cr_frame", "gi_frame", "ag_frame")
        if frame is not None:
            frames.append(frame)
        awaited = _first(awaited, "cr_await", "gi_yieldfrom", "ag_await")
    return frames


def _first(awaited: Any, *names: str) -> Any:
    for name in names:
        value = getattr(awaited, name, None)
        if value is not None:
            return value
    return None
