"""A pytest plugin: the services the tests start are forked from a pre-imported Python.

The suite starts about 350 service processes. Each one run as `python -m trademesh.core.cli ...`
imports its third-party libraries again before it serves: ccxt alone (every exchange it ships, sync
and async) is most of a replay venue's start, the MCP SDK most of a gateway's
(docs/benchmarks-history.md, section 8). Here each pytest process (each xdist worker) keeps one fork
server (tests/zygote.py), which imported those libraries once;
trademesh.core.platform.service.process.start_service asks it for each service instead of exec-ing
Python.

The service is still its own process running the CLI's real entry point (`runpy` of `trademesh.core.cli`,
as `python -m` runs it), with its own arguments, environment, working directory, stdout (a pipe
back to the test, read for the serving line as before) and stderr. Only the libraries it finds
already imported differ from an exec'd start; none of trademesh's modules is imported before the
fork, so each service reads its settings as an exec'd one would.

One-shot commands (`trademesh keys list`, a service refusing a bad value: they print and exit)
go through it too, with run_command: a test of the CLI's errors used to pay a whole Python start
with ccxt, gRPC and the rest per case (1-2 CPU s each, over a hundred cases).

The fork server is this plugin's own, not multiprocessing's (whose one fork server per process
the product's sweep runner uses and stops: trademesh/core/backtest/runners.py). Tests of starting itself
(`trademesh up`, signals, the process guard, one case of the CLI's errors) start their own
processes with subprocess. TRADEMESH_TEST_FORK=0 turns it off (every service and command exec'd,
as before), e.g. to compare the two.
"""

from __future__ import annotations

import contextlib
import json
import locale
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

import trademesh.core.platform.service.process
from tests.process_guard import end_processes
from trademesh.core.platform.errors import Unavailable

__all__ = ["ForkServer", "ForkedService", "launch", "launch_command", "run_command"]

_ENV = "TRADEMESH_TEST_FORK"
_KILLED_S = 10.0  # a SIGKILLed process's end is reported within this, or never (its monitor gone)


class ForkedService:
    """What start_service needs of a subprocess.Popen (pid, poll, wait, signals, stdout), for a
    process the fork server made: it is not our child, so its end comes through the status pipe
    its monitor writes (tests/zygote.py)."""

    def __init__(self, status: int, args: list[str], timeout: float | None = None) -> None:
        self._status = status  # the status pipe's read end, read unbuffered (select sees all)
        self._read = b""
        self.stdout: IO[str] | None = None
        self.args = args
        self.returncode: int | None = None
        try:
            pid = self._line(timeout)
        except TimeoutError:
            pid = None
        if pid is None:
            os.close(status)
            raise Unavailable(f"the fork server did not start {' '.join(args)}")
        self.pid = int(pid)

    def poll(self) -> int | None:
        return self.ended_within(0.0)

    def wait(self, timeout: float | None = None) -> int:
        code = self.ended_within(timeout)
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return code

    def ended_within(self, timeout: float | None) -> int | None:
        """Its exit code once it has ended, waiting at most `timeout` s; None if it runs on."""
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

    def abandon(self) -> None:
        """Stop listening for its end (it was killed and its monitor has not said so in time)."""
        if self.returncode is None:
            self.returncode = -signal.SIGKILL
            os.close(self._status)


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
        err = stderr.fileno() if stderr is not None else sys.stderr.fileno()
        try:
            service = self._fork(module, args, env, out_w, err, None)
        except BaseException:
            os.close(out_r)
            raise
        finally:
            os.close(out_w)
        service.stdout = open(out_r, encoding="utf-8")  # noqa: SIM115 (the service's, read until it ends)
        return service

    def run(
        self, module: str, args: Sequence[str], env: dict[str, str], timeout_s: float
    ) -> subprocess.CompletedProcess[str]:
        """`python -m module args` to its end, as subprocess.run(capture_output=True, text=True,
        timeout=timeout_s) runs it: both streams read together (neither pipe fills while the
        other is waited on), killed and TimeoutExpired at the deadline."""
        command = [sys.executable, "-m", module, *args]
        out_r, out_w = os.pipe()
        err_r, err_w = os.pipe()
        try:
            try:
                # Its pid waited for as start waits for one: a server's first request waits for its
                # preload (30 s of imports at load 16, past a whole 60 s timeout at 40).
                service = self._fork(module, args, env, out_w, err_w, None)
            finally:
                os.close(out_w)  # the service holds its own: the pipes end with it
                os.close(err_w)
            deadline = time.monotonic() + timeout_s  # the command's own time, from its start
            try:
                out, err, ended = _read_both(out_r, err_r, deadline)
                code = service.ended_within(deadline - time.monotonic()) if ended else None
            except BaseException:  # the test's own timeout (pytest-timeout's signal) too
                service.kill()
                service.abandon()
                raise
        finally:
            os.close(out_r)
            os.close(err_r)
        if code is None:
            service.kill()
            if service.ended_within(_KILLED_S) is None:
                service.abandon()
            raise subprocess.TimeoutExpired(command, timeout_s, output=out or None, stderr=err or None)
        return subprocess.CompletedProcess(command, code, _text(out), _text(err))

    def _fork(
        self,
        module: str,
        args: Sequence[str],
        env: dict[str, str],
        stdout: int,
        stderr: int,
        timeout: float | None,
    ) -> ForkedService:
        """Ask for `python -m module args` writing to these descriptors (the caller's still)."""
        status_r, status_w = os.pipe()
        request = {"module": module, "args": list(args), "env": env, "cwd": os.getcwd()}
        try:
            with self._lock:
                socket.send_fds(self._socket, [json.dumps(request).encode()], [stdout, stderr, status_w])
        except BaseException:
            os.close(status_r)
            raise
        finally:
            os.close(status_w)
        service = ForkedService(status_r, [module, *args], timeout)
        with self._lock:  # threads start services too; a lost entry would outlive the run
            self.started[:] = [*(s for s in self.started if s.returncode is None), service]
        return service

    def stop(self) -> None:
        """End what the tests left running (named, as the process guard names its left-overs),
        then the server (before the guard: the server gone first would leave them out of reach)."""
        with self._lock:
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


def _fork_server() -> ForkServer:
    global _server
    with _server_lock:
        if _server is None:
            _server = ForkServer()
        return _server


def launch(module: str, args: Sequence[str], env: dict[str, str], stderr: IO[str] | None) -> ForkedService:
    """Start `python -m module args` as a child of this process's fork server."""
    return _fork_server().start(module, args, env, stderr)


def run_command(
    args: Sequence[str],
    env: dict[str, str] | None = None,
    timeout_s: float = 90.0,
    module: str = "trademesh.core.cli",
) -> subprocess.CompletedProcess[str]:
    """`python -m trademesh.core.cli args` (or another module's) run to its end: its exit code, stdout and
    stderr as subprocess.run(capture_output=True, text=True) gives them; `env` is its whole
    environment (this process's when None). Forked by the fork server when the services are
    (TRADEMESH_TEST_FORK), else exec'd. At `timeout_s` it is killed and TimeoutExpired raised.

    Its stdin is /dev/null either way (the fork server's): no command reads one. Thread-safe."""
    environment = dict(os.environ if env is None else env)
    if trademesh.core.platform.service.process.launcher is not launch:
        return subprocess.run(
            [sys.executable, "-m", module, *args],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            env=environment,
        )
    return _fork_server().run(module, args, environment, timeout_s)


def launch_command(
    args: Sequence[str], env: dict[str, str]
) -> tuple[trademesh.core.platform.service.process.ChildProcess, IO[str], IO[str]]:
    """`python -m trademesh.core.cli args` started as run_command starts it (forked when the services are,
    else exec'd), for a test that reads its output as it comes: the process, its stdout and its
    stderr, each to be read to its end (and closed) by the caller."""
    if trademesh.core.platform.service.process.launcher is not launch:
        process = subprocess.Popen(
            [sys.executable, "-m", "trademesh.core.cli", *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        assert process.stdout is not None and process.stderr is not None
        return process, process.stdout, process.stderr
    read, write = os.pipe()
    with open(write, "w") as stderr:  # the service holds its own copy: ours is closed, so its end shows
        forked = launch("trademesh.core.cli", args, env, stderr)
    assert forked.stdout is not None
    return forked, forked.stdout, open(read, encoding="utf-8")


def _read_both(out: int, err: int, deadline: float) -> tuple[bytes, bytes, bool]:
    """What the two pipes carry until both end (True) or the deadline passes (False)."""
    read: dict[int, list[bytes]] = {out: [], err: []}
    open_ = [out, err]
    while open_:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        for fd in select.select(open_, [], [], left)[0]:
            chunk = os.read(fd, 65536)
            if chunk:
                read[fd].append(chunk)
            else:
                open_.remove(fd)
    return b"".join(read[out]), b"".join(read[err]), not open_


def _text(data: bytes) -> str:
    """As subprocess's text mode decodes a stream: the locale's encoding, universal newlines."""
    return data.decode(locale.getpreferredencoding(False)).replace("\r\n", "\n").replace("\r", "\n")


def pytest_configure(config: pytest.Config) -> None:
    # Linux's AF_UNIX SOCK_SEQPACKET and fd passing; elsewhere every service is exec'd.
    if os.environ.get(_ENV, "1") != "0" and hasattr(socket, "SOCK_SEQPACKET") and sys.platform == "linux":
        trademesh.core.platform.service.process.launcher = launch


@pytest.hookimpl(trylast=True)  # after the session's fixtures have stopped their services
def pytest_sessionfinish(session: pytest.Session) -> None:
    """Before the process guard's end of run. Not at pytest_unconfigure: an xdist worker never
    calls it, and the guard found the worker's fork server left behind at its exit."""
    global _server
    if _server is not None:
        _server.stop()
        _server = None
