"""No venue outlives the test run that started it: a failed test, Ctrl-C, SIGTERM, under xdist too.

Each case runs a small pytest session of its own in a subprocess, with the suite's process guard
(tests/process_guard.py). Its test starts a real sim venue and never stops it (it fails, or it
waits to be interrupted); once that pytest has exited, the venue must be gone.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.integration.support import TEST_TOKEN
from tests.process_guard import descendants

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # interrupts pytest runs: not in the fast tier

ROOT = Path(__file__).resolve().parents[2]

# The inner session's tests: each starts a venue, notes its pid, and never stops it.
INNER = textwrap.dedent(
    """
    import asyncio
    import os
    from pathlib import Path

    from tests.integration.support import start_venue


    def started(tmp_path: Path) -> None:
        venue, _ = start_venue(tmp_path, None, "left-behind")
        Path(os.environ["GUARD_PID_FILE"]).write_text(str(venue.service.process.pid))


    def test_fails_before_stopping_its_venue(tmp_path: Path) -> None:
        started(tmp_path)
        raise AssertionError("failed with its venue running")


    async def test_waits_to_be_interrupted(tmp_path: Path) -> None:
        started(tmp_path)
        try:
            Path(os.environ["GUARD_SLEEP_FILE"]).write_text("sleeping")
            await asyncio.sleep(300)
        finally:
            Path(os.environ["GUARD_FINALLY_FILE"]).write_text("ran")
    """
)


class Inner:
    """A pytest session in a subprocess, on INNER, with the process guard loaded."""

    def __init__(self, directory: Path, test: str, *extra: str) -> None:
        (directory / "test_inner.py").write_text(INNER)
        self.pid_file = directory / "venue.pid"
        self.finally_file = directory / "finally"
        self.sleep_file = directory / "sleeping"
        args = [sys.executable, "-m", "pytest", "-p", "tests.process_guard", "-p", "no:cacheprovider"]
        args += ["-o", "asyncio_mode=auto", "--rootdir", str(directory), "-q", "-k", test, *extra]
        args += ["--basetemp", str(directory / "tmp")]  # not pytest's shared temp root
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "GUARD_PID_FILE": str(self.pid_file),
            "GUARD_FINALLY_FILE": str(self.finally_file),
            "GUARD_SLEEP_FILE": str(self.sleep_file),
            "TRADEMESH_TOKEN": TEST_TOKEN,
        }
        self.process = subprocess.Popen(
            [*args, str(directory / "test_inner.py")],
            cwd=directory,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def venue_pid(self, timeout_s: float = 60.0) -> int:
        deadline = time.monotonic() + timeout_s
        while not self.pid_file.exists() or not self.pid_file.read_text():
            assert self.process.poll() is None, f"the inner pytest ended early:\n{self.output()}"
            assert time.monotonic() < deadline, "the inner test never started its venue"
            time.sleep(0.05)
        return int(self.pid_file.read_text())

    def sleeping(self, timeout_s: float = 60.0) -> None:
        """Wait until the inner test is inside its `try` (a signal sent sooner, on a loaded
        machine, would land before it and test nothing of the `finally`)."""
        deadline = time.monotonic() + timeout_s
        while not self.sleep_file.exists():
            assert self.process.poll() is None, f"the inner pytest ended early:\n{self.output()}"
            assert time.monotonic() < deadline, "the inner test never reached its sleep"
            time.sleep(0.05)
        time.sleep(0.2)  # from the marker into the sleep itself

    def output(self, timeout_s: float = 90.0) -> str:
        try:
            out, _ = self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"the inner pytest still runs after {timeout_s} s: {_signals(self.process.pid)}"
            ) from None
        return out

    def end(self) -> None:
        """Whatever is left, when a check failed: the inner pytest, and its venue, which a
        SIGKILL of the inner run would otherwise leave behind (its guard never runs)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        pid = self.pid_file.read_text() if self.pid_file.exists() else ""
        if pid and running(int(pid)) and b"venue" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(int(pid), signal.SIGKILL)


def _signals(pid: int) -> str:
    """The signal masks of a process (/proc/PID/status), to tell an ignored or blocked SIGINT."""
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return "gone"
    return " ".join(line for line in lines if line.startswith(("State", "SigBlk", "SigIgn", "SigCgt")))


def running(pid: int) -> bool:
    """Still a live process (a zombie has ended; it only waits to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def assert_gone(pid: int, output: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while running(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not running(pid), f"venue {pid} outlived its test run:\n{output}"


def test_a_failed_test_leaves_no_venue_behind(tmp_path: Path) -> None:
    inner = Inner(tmp_path, "fails_before")
    try:
        pid = inner.venue_pid()
        output = inner.output()
        assert inner.process.returncode == 1, output
        assert "processes left behind by the tests, now ended" in output
        assert_gone(pid, output)
    finally:
        inner.end()


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_an_interrupted_run_runs_the_tests_finally_and_leaves_no_venue(tmp_path: Path, signum: int) -> None:
    inner = Inner(tmp_path, "waits_to_be_interrupted")
    try:
        pid = inner.venue_pid()
        inner.sleeping()
        inner.process.send_signal(signum)
        output = inner.output()
        assert inner.process.returncode == 2 and "KeyboardInterrupt" in output, output
        assert inner.finally_file.read_text() == "ran", "the interrupted test's finally did not run"
        assert_gone(pid, output)
    finally:
        inner.end()


def test_sigterm_to_an_xdist_run_reaches_its_workers_and_leaves_no_venue(tmp_path: Path) -> None:
    inner = Inner(tmp_path, "waits_to_be_interrupted", "-n", "2")
    try:
        pid = inner.venue_pid()
        workers = [p for p in descendants(inner.process.pid) if p != pid]
        assert workers, "no xdist workers"
        inner.sleeping()
        inner.process.send_signal(signal.SIGTERM)
        output = inner.output()
        assert inner.process.returncode != 0, output
        assert inner.finally_file.read_text() == "ran", "the interrupted test's finally did not run"
        assert_gone(pid, output)
        for worker in workers:
            assert_gone(worker, output)
    finally:
        inner.end()
