"""No task is stopped with `task.cancel()` then `await task` under suppress(CancelledError):
that await also takes a cancel of the caller itself for the task's and swallows it (the caller
runs on after it was told to stop). trademesh.core.platform.aio.cancellation.cancel_and_wait does it right."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_SWALLOWING = re.compile(
    r"^(?P<i>[ \t]*)(?P<task>[\w.\[\]]+)\.cancel\(\)\n"
    r"(?:(?P=i)[^\n]*\n){0,2}?"
    r"(?P=i)with contextlib\.suppress\([^)]*CancelledError[^)]*\):\n"
    r"(?P=i)    await (?:asyncio\.gather\(\*)?(?P=task)\b",
    re.M,
)


def swallowing(text: str) -> list[str]:
    return [m["task"] for m in _SWALLOWING.finditer(text)]


def test_the_pattern_is_found_where_it_is() -> None:
    text = (
        "    def f():\n"
        "        t.cancel()\n"
        "        with contextlib.suppress(asyncio.CancelledError):\n"
        "            await t\n"
    )
    assert swallowing(text) == ["t"]
    assert swallowing(text.replace("await t", "await cancel_and_wait(t)")) == []


def test_no_module_awaits_a_cancelled_task_under_a_suppressed_cancel() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {task}"
        for folder in ("trademesh/core", "trademesh/gateway", "trademesh/venues")
        for path in sorted((ROOT / folder).rglob("*.py"))
        for task in swallowing(path.read_text(encoding="utf-8"))
    ]
    assert found == []
