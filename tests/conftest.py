"""Plugins of the whole suite: the process guard (no test process outlives the run), how the
tests share pytest-xdist's workers (groups, exclusive tests), and the stacks of a hung test's
asyncio tasks (task_dump)."""

from __future__ import annotations

import os

from core.foundations.env import DRAIN_DELAY_S

# Nothing balances the suite's processes, and hundreds of them stop in a run: none waits out
# the production drain delay (TRADEMESH_DRAIN_DELAY_S). Every process a test starts inherits it.
os.environ.setdefault(DRAIN_DELAY_S, "0")
# A process that dies of a signal (a backtest's child was seen to end with SIGSEGV at its start,
# twice in many runs) prints its Python stacks to its stderr first, which its test's log keeps.
os.environ.setdefault("PYTHONFAULTHANDLER", "1")

pytest_plugins = [
    "tests.process_guard",
    "tests.workers",
    "tests.task_dump",
    "tests.cpu_report",
    "tests.forked_services",
]
