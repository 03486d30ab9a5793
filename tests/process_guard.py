"""A pytest plugin: no process a test started outlives the test run, however the run ends.

Tests stop what they start in `finally` blocks and fixture teardowns; this is the safety net
under them, for a test that fails before it could, or a run that is interrupted:

- SIGINT is taken even when the run inherited it ignored (started with `&` by a script).
- SIGTERM is handled like Ctrl-C: every process descended from this one, and this one, get
  SIGINT (as a terminal's Ctrl-C reaches its whole foreground group). The running test is
  interrupted, its `finally` blocks and the fixtures' teardowns run, and the run ends. Under
  pytest-xdist that reaches the workers and their venues too.
- At the end of the run (pytest_unconfigure, or at exit if the run dies before it), every
  process still descended from this one is sent SIGTERM, then SIGKILL after a grace period,
  and named on stderr: a test left it behind.

tests/conftest.py loads it; a pytest run outside the tree loads it with `-p tests.process_guard`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from types import FrameType

import pytest

__all__ = ["descendants", "end_descendants", "end_processes"]

# How long a left-over process gets to stop on SIGTERM before SIGKILL.
_GRACE_S = 5.0


def _parents() -> dict[int, int]:
    """pid -> parent pid of every process visible in /proc."""
    parents: dict[int, int] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # gone meanwhile
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ")".
        fields = text[text.rindex(")") + 2 :].split()
        parents[int(stat.parent.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> list[int]:
    """Every living process below `pid` (children, their children, ...), parents first."""
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found: list[int] = []
    frontier = [pid]
    while frontier:
        below = children.get(frontier.pop(), [])
        found += below
        frontier += below
    return found


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return "?"


def _alive(pid: int) -> bool:
    """Running (a zombie has ended: it only waits for its parent to read its status)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return text[text.rindex(")") + 2] != "Z"


def end_descendants(grace_s: float = _GRACE_S) -> list[str]:
    """SIGTERM every process left below this one, SIGKILL what still runs after grace_s;
    returns their command lines."""
    left = [pid for pid in descendants(os.getpid()) if _alive(pid)]
    commands = [f"{pid}: {_command(pid)}" for pid in left]
    end_processes(left, grace_s)
    return commands


def end_processes(pids: list[int], grace_s: float = _GRACE_S) -> None:
    """SIGTERM these processes, then SIGKILL what still runs after grace_s."""
    _signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    _signal_all([pid for pid in pids if _alive(pid)], signal.SIGKILL)


def _report_left_overs() -> None:
    commands = end_descendants()
    if commands:
        lines = "\n  ".join(commands)
        print(f"\nprocess_guard: processes left behind by the tests, now ended:\n  {lines}", file=sys.stderr)


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    _signal_all(descendants(os.getpid()), signal.SIGINT)
    signal.raise_signal(signal.SIGINT)


def pytest_configure(config: pytest.Config) -> None:
    # A run started in the background by a non-interactive shell (`cmd &`: CI scripts) inherits
    # SIGINT ignored, and so would every pytest it starts: Ctrl-C and the SIGTERM above would
    # then reach nothing. A test run always takes SIGINT.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _on_sigterm)
    atexit.register(_report_left_overs)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    _report_left_overs()
