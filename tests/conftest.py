"""Plugins of the whole suite: the process guard (no test process outlives the run), how the
tests share pytest-xdist's workers (groups, exclusive tests), and the stacks of a hung test's
asyncio tasks (task_dump)."""

from __future__ import annotations

import os

from hypothesis import settings

from tests.bus_signing import SIGNING_ENV
from trademesh.core.platform.aio.cancellation import mend_wait_for
from trademesh.core.platform.config.env import DRAIN_DELAY_S

# Nothing balances the suite's processes, and hundreds of them stop in a run: none waits out
# the production drain delay (TRADEMESH_DRAIN_DELAY_S). Every process a test starts inherits it.
os.environ.setdefault(DRAIN_DELAY_S, "0")
# As every trademesh process does (trademesh.core.cli): the in-process services keep their cancels.
mend_wait_for()
# The keys that sign the trading streams (tests/bus_signing.py): every process a test starts has
# them (an advisor's intents and a detector's requests are signed, an inspector checks them); a
# test of a process without them sets them empty in its environment.
for _variable, _key in SIGNING_ENV.items():
    os.environ.setdefault(_variable, _key)
# A process that dies of a signal (a backtest's child was seen to end with SIGSEGV at its start,
# twice in many runs) prints its Python stacks to its stderr first, which its test's log keeps.
os.environ.setdefault("PYTHONFAULTHANDLER", "1")

# Hypothesis's examples have no deadline: its default 200 ms per example measures the machine, not
# the code, and a loaded run (five workers on two cores) failed a plain property test on it.
# Speed is measured in bench/. Their examples are the same on every run (derandomize): a random
# seed found a failing sequence once in many runs, which made CI fail by luck; to explore new
# examples on purpose, run with TRADEMESH_HYPOTHESIS=explore (and keep what it finds as a test).
settings.register_profile("trademesh", deadline=None, derandomize=True)
settings.register_profile("explore", deadline=None)
settings.load_profile("explore" if os.environ.get("TRADEMESH_HYPOTHESIS") == "explore" else "trademesh")

pytest_plugins = [
    "tests.process_guard",
    "tests.workers",
    "tests.task_dump",
    "tests.cpu_report",
    "tests.forked_services",
]
