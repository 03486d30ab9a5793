"""Plugins of the whole suite: the process guard (no test process outlives the run), how the
tests share pytest-xdist's workers (groups, exclusive tests), and the stacks of a hung test's
asyncio tasks (task_dump)."""

from __future__ import annotations

pytest_plugins = ["tests.process_guard", "tests.workers", "tests.task_dump"]
