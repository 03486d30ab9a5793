"""A pytest plugin: the services the tests start are forked from a pre-imported Python.

The suite starts about 350 service processes. Each one run as `python -m core.cli ...` imports
its third-party libraries again before it serves: ccxt alone (every exchange it ships, sync and
async) is most of a replay venue's start, the MCP SDK most of a gateway's (docs/benchmarks.md,
section 8). Here each pytest process (each xdist worker) keeps one fork server
(tests/zygote.py), which imported those libraries once; core.foundations.process.start_service asks it for
each service instead of exec-ing Python.

The service is still its own process running the CLI's real entry point (`runpy` of `core.cli`,
as `python -m` runs it), with its own arguments, environment, working directory, stdout (a pipe
back to the test, read for the serving line as before) and stderr. Only the libraries it finds
already imported differ from an exec'd start; none of trademesh's modules is imported before the
fork, so each service reads its settings as an exec'd one would.

The fork server is this plugin's own, not multiprocessing's (whose one fork server per process
the product's sweep runner uses and stops: core/backtest/runners.py). Tests of starting itself
(the CLI's errors, `trademesh up`, the process guard) start their own processes with subprocess.
TRADEMESH_TEST_FORK=0 turns it off (every service exec'd, as before), e.g. to compare the two.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO

import pytest

import core.foundations.process
from core.foundations.errors import Unavailable
from tests.process_guard import end_processes

__all__ = ["ForkServer", "ForkedService", "launch"]

_ENV = "TRADEMESH_TEST_FORK"


class ForkedService:
    """What start_service needs of a subprocess.Popen (pid, poll, wait, signals, stdout), for a
    process the fork server made: it is not our child, so its end comes through the status pipe
    its monitor writes (tests/zygote.py)."""

    def __init__(self, status: int, stdout: IO[str], args: list[str]) -> None:
        self._status = status  # the status pipe's read end, read unbuffered (select sees all)
        self._read = b""
        self.stdout: IO[str] | None = stdout
        self.args = args
        self.returncode: int | None = None
        pid = self._line(None)
        if pid is None:
            raise Unavailable(f"the fork server did not start {' '.join(args)}")
        self.pid = int(pid)

    def poll(self) -> int | None:
        return self._read_end(0.0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._read_end(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return code

    def _read_end(self, timeout: float | None) -> int | None:
        if self.returncode is None:
            try:
                line = self._line(timeout)
            except TimeoutError:
                return None
            # No line: the monitor itself was killed; the service went with the test run's end.
            self.returncode = int(json.loads(line)["code"]) if line else -signal.SIGKILL
            os.close(self._status)
        return self.returncode

    def _line(self, timeout: float | None) -> bytes | None:
        """The status pipe's next line; None at its end; TimeoutError if none comes in time."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._read:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self._status], [], [], left)[0]:
                raise TimeoutError
            chunk = os.read(self._status, 4096)
            if not chunk:
                return None
            self._read += chunk
        line, self._read = self._read.split(b"\n", 1)
        return line

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """This process's fork server (tests/zygote.py), started on first use."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        # The server imports only from sys.path as this process has it (the tree under test).
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.zygote", str(theirs.fileno())],
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            env=env,
        )
        theirs.close()
        self._socket = ours
        self._lock = threading.Lock()  # start_service runs in threads too (asyncio.to_thread)
        self.started: list[ForkedService] = []

    def start(
        self, module: str, args: Sequence[str], env: dict[str, str], stderr: IO[str] | None
    ) -> ForkedService:
        out_r, out_w = os.pipe()
        status_r, status_w = os.pipe()
        request = {"module": module, "args": list(args), "env": env, "cwd": os.getcwd()}
        err = stderr.fileno() if stderr is not None else sys.stderr.fileno()
        try:
            with self._lock:
                socket.send_fds(self._socket, [json.dumps(request).encode()], [out_w, err, status_w])
        finally:
            os.close(out_w)
            os.close(status_w)
        stdout = open(out_r, encoding="utf-8")  # noqa: SIM115 (the service's, read until it ends)
        service = ForkedService(status_r, stdout, [module, *args])
        self.started[:] = [*(s for s in self.started if s.returncode is None), service]
        return service

    def stop(self) -> None:
        """End what the tests left running (named, as the process guard names its left-overs),
        then the server (before the guard: the server gone first would leave them out of reach)."""
        left = [service for service in self.started if service.poll() is None]
        if left:
            named = "\n  ".join(f"{service.pid}: {' '.join(service.args)}" for service in left)
            print(
                f"\nforked_services: services the tests left running, now ended:\n  {named}", file=sys.stderr
            )
            end_processes([service.pid for service in left])
        self._socket.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


_server: ForkServer | None = None
_server_lock = threading.Lock()


def launch(module: str, args: Sequence[str], env: dict[str, str], stderr: IO[str] | None) -> ForkedService:
    """Start `python -m module args` as a child of this process's fork server."""
    global _server
    with _server_lock:
        if _server is None:
            _server = ForkServer()
    return _server.start(module, args, env, stderr)


def pytest_configure(config: pytest.Config) -> None:
    # Linux's AF_UNIX SOCK_SEQPACKET and fd passing; elsewhere every service is exec'd.
    if os.environ.get(_ENV, "1") != "0" and hasattr(socket, "SOCK_SEQPACKET") and sys.platform == "linux":
        core.foundations.process.launcher = launch


def pytest_unconfigure(config: pytest.Config) -> None:
    """Runs before the process guard's end of run (trylast there)."""
    global _server
    if _server is not None:
        _server.stop()
        _server = None
