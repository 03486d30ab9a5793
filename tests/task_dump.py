"""A hung test says where it hangs: every asyncio task's stack, not just the threads' (which
show only the event loop waiting in select).

- The suite's per-test limit (pytest-timeout, `timeout` in pyproject.toml) prints the tasks'
  stacks, then fails the test as pytest-timeout's signal method does.
- `kill -USR1 <pytest or worker pid>` prints them on a run that is stuck right now.
"""

from __future__ import annotations

import signal
import sys
import threading
from typing import Any

import pytest
import pytest_timeout

from trademesh.core.platform.service.tasks import tasks_text

__all__ = ["dump_tasks"]


def dump_tasks() -> str:
    """Every task of the running loop, with the stack it is suspended in (to stderr, and returned)."""
    text = tasks_text()
    sys.stderr.write(text)
    return text


@pytest.hookimpl
def pytest_configure(config: pytest.Config) -> None:
    del config
    signal.signal(signal.SIGUSR1, lambda signum, frame: dump_tasks())


@pytest.hookimpl(tryfirst=True)
def pytest_timeout_set_timer(item: pytest.Item, settings: Any) -> bool | None:
    """pytest-timeout's signal method, with the tasks' stacks first."""
    if settings.method != "signal" or threading.current_thread() is not threading.main_thread():
        return None  # pytest-timeout's own way

    def on_timeout(signum: int, frame: Any) -> None:
        __tracebackhide__ = True
        dump_tasks()
        pytest_timeout.timeout_sigalrm(item, settings)

    def cancel() -> None:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)

    item.cancel_timeout = cancel  # type: ignore[attr-defined]  # read by pytest-timeout's cancel hook
    signal.signal(signal.SIGALRM, on_timeout)
    signal.setitimer(signal.ITIMER_REAL, settings.timeout)
    return True
