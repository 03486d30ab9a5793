"""A pytest plugin: the services the tests start are forked from a pre-imported Python.

The suite starts about 350 service processes. Each one run as `python -m core.cli ...` imports
its third-party libraries again before it serves: ccxt alone (every exchange it ships, sync and
async) is 1.4 CPU s of a replay venue's 1.5, the MCP SDK about 1 s of a gateway's start
(docs/benchmarks.md, section 8). Here each pytest process (each xdist worker) keeps one
standard-library fork server (multiprocessing's "forkserver" context) that has imported those
libraries once; core.process.start_service asks it for each service instead of exec-ing Python.

The service is still its own process running the CLI's real entry point (`runpy` of
`core.cli`, as `python -m` runs it), with its own arguments, environment, working directory,
stdout (a pipe back to the test, read for the serving line as before) and stderr. Only the
libraries it finds already imported differ from an exec'd start; none of trademesh's modules
is imported before the fork, so each service reads its environment as it would from exec.

Tests of starting itself (the CLI's errors, `trademesh up`, the process guard) start their own
processes with subprocess and are unaffected. TRADEMESH_TEST_FORK=0 turns the fork server off
(every service exec'd, as before), e.g. to compare the two.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import multiprocessing
import multiprocessing.context
import multiprocessing.forkserver
import multiprocessing.reduction
import multiprocessing.resource_tracker
import os
import resource
import runpy
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import pytest

import core.process

__all__ = ["PRELOAD", "ForkedService", "launch"]

_ENV = "TRADEMESH_TEST_FORK"
CPU_DIR_ENV = "TRADEMESH_TEST_CPU"  # tests/cpu_report.py's

# Third-party libraries only (they read no trademesh setting at import), heaviest first: the
# venues' ccxt, the gateway's MCP SDK and ASGI server, the advisor's openai client. Not numpy or
# scikit-learn: their import starts BLAS threads, and a process with threads is not forked.
PRELOAD = [
    "ccxt",
    "ccxt.async_support",
    "ccxt.pro",
    "aiohttp",
    "mcp.server",
    "mcp.server.mcpserver",
    "mcp.server.transport_security",
    "pydantic",
    "uvicorn",
    "starlette.applications",
    "starlette.staticfiles",
    "openai",
    "grpc",
    "grpc.aio",
    "grpc_health.v1.health",
    "grpc_reflection.v1alpha.reflection",
    "google.protobuf.json_format",
    "redis.asyncio",
    "asyncpg",
    "prometheus_client",
]


class _Fd:
    """A file descriptor sent to the forked child (by SCM_RIGHTS, as multiprocessing sends a
    socket), where it arrives as the child's own descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd

    def __reduce__(self) -> tuple[Any, tuple[Any]]:
        return (_received_fd, (multiprocessing.reduction.DupFd(self.fd),))


def _received_fd(dup: Any) -> int:
    fd: int = dup.detach()
    return fd


def _run_service(
    module: str, args: list[str], env: dict[str, str], cwd: str, out: int, err: int | None, test_pid: int
) -> None:
    """The child: stdout and stderr onto the test's, the test's environment, then the module as
    `python -m module args` runs it (its SystemExit is the process's exit code)."""
    os.dup2(out, 1)
    os.close(out)
    if err is not None:
        os.dup2(err, 2)
        os.close(err)
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
    finally:
        atexit._run_exitfuncs()  # a forked child ends by os._exit: run what the service registered
        _report_cpu(env.get(CPU_DIR_ENV), test_pid)


def _report_cpu(directory: str | None, test_pid: int) -> None:
    """Under tests/cpu_report.py: this process's CPU, for the test process that started it (a
    forked child is not that process's child, so its CPU is not in that process's rusage)."""
    if not directory:
        return
    usage = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = sum(u.ru_utime + u.ru_stime for u in usage)
    with contextlib.suppress(OSError), open(Path(directory) / f"{test_pid}.forked.jsonl", "a") as file:
        file.write(json.dumps({"pid": os.getpid(), "cpu": round(cpu, 3)}) + "\n")


class ForkedService:
    """What start_service needs of a subprocess.Popen (pid, poll, wait, signals, stdout), for a
    process the fork server made: it is not our child, so its end comes through the server."""

    def __init__(
        self, process: multiprocessing.context.ForkServerProcess, stdout: IO[str], args: list[str]
    ) -> None:
        self._process = process
        self.stdout: IO[str] | None = stdout
        self.args = args
        self.pid: int = process.pid or 0
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = self._process.exitcode
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        self._process.join(timeout)
        code = self.poll()
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return code

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


_context: multiprocessing.context.ForkServerContext | None = None
_started: list[ForkedService] = []


def _fork_server() -> multiprocessing.context.ForkServerContext:
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload(PRELOAD)
    return _context


def launch(module: str, args: Sequence[str], env: dict[str, str], stderr: IO[str] | None) -> ForkedService:
    """Start `python -m module args` as a child of the fork server."""
    ours, theirs = socket.socketpair()
    err = _Fd(stderr.fileno()) if stderr is not None else None
    process = _fork_server().Process(
        target=_run_service,
        args=(module, list(args), env, os.getcwd(), _Fd(theirs.fileno()), err, os.getpid()),
        daemon=False,
    )
    process.start()
    theirs.close()
    service = ForkedService(process, ours.makefile("r", encoding="utf-8"), [module, *args])
    _started[:] = [*(s for s in _started if s.returncode is None), service]
    return service


def pytest_configure(config: pytest.Config) -> None:
    if os.environ.get(_ENV, "1") != "0":
        core.process.launcher = launch


def pytest_unconfigure(config: pytest.Config) -> None:
    """Before the process guard's end of run (trylast): end the forked services a test left
    running, named as the guard names its left-overs, then the fork server and multiprocessing's
    resource tracker (whose `_stop` is how CPython's own tests stop them). Stopped first, the
    server would orphan its children out of the guard's reach."""
    if _context is None:
        return
    left = [service for service in _started if service.poll() is None]
    if left:
        named = "\n  ".join(f"{service.pid}: {' '.join(service.args)}" for service in left)
        print(f"\nforked_services: services the tests left running, now ended:\n  {named}", file=sys.stderr)
        _end(left)
    multiprocessing.forkserver._forkserver._stop()  # type: ignore[attr-defined]
    multiprocessing.resource_tracker._resource_tracker._stop()  # type: ignore[attr-defined]


def _end(services: list[ForkedService], grace_s: float = 5.0) -> None:
    for service in services:
        service.terminate()
    deadline = time.monotonic() + grace_s
    for service in services:
        try:
            service.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            service.kill()
