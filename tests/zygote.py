"""The suite's fork server (`python -m tests.zygote FD`; tests/forked_services.py starts it and
speaks to it over FD, an AF_UNIX SOCK_SEQPACKET socket).

It imports the services' third-party libraries once (PRELOAD), then for each request forks a
monitor, which forks the service and waits for it:

- the request: one packet, `{"module", "args", "env", "cwd"}` as JSON, carrying three file
  descriptors: the service's stdout, its stderr (or the monitor's /dev/null stand-in for "inherit":
  see below) and a status pipe;
- the service: stdout and stderr on the given descriptors, exactly the request's environment,
  its working directory, default signal handlers, then the module run as `python -m` runs it;
- the monitor writes the service's pid as the status pipe's first line and, when the service has
  ended, `{"code": <exit code as subprocess gives it>, "cpu": <its CPU s>}` as the second; under
  tests/cpu_report.py (TRADEMESH_TEST_CPU in the service's environment) it first appends that CPU
  to the test process's `<pid>.forked.jsonl`, as the service is not that process's child.

It imports nothing of trademesh's (every service reads its settings as an exec'd one would) and
runs no thread, so a fork copies one thread. It ends when its socket is closed.
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import json
import os
import runpy
import select
import signal
import socket
import sys
import traceback
from pathlib import Path
from typing import Any

__all__ = ["PRELOAD", "serve"]

# Third-party libraries only (they read no trademesh setting at import), heaviest first: the
# venues' ccxt, the gateway's MCP SDK and ASGI server, the advisor's openai client. Not numpy or
# scikit-learn: their import starts BLAS threads, and a process with threads is not forked.
PRELOAD = (
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
)
_CPU_DIR_ENV = "TRADEMESH_TEST_CPU"  # tests/cpu_report.py's
_MAX_REQUEST = 1 << 20


def serve(fd: int) -> None:
    """Preload, then fork a service per request until the socket closes."""
    for name in PRELOAD:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the test run's Ctrl-C is for the tests
    test_pid = os.getppid()
    with socket.socket(fileno=fd) as requests:
        while True:
            readable, _, _ = select.select([requests], [], [], 1.0)
            _reap()
            if not readable:
                continue
            data, fds, _, _ = socket.recv_fds(requests, _MAX_REQUEST, 3)
            if not data:
                break
            _start(json.loads(data), fds, test_pid)
    _reap()


def _reap() -> None:
    """Collect the monitors that have ended (their CPU, and their services', counts as ours)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass


def _start(request: dict[str, Any], fds: list[int], test_pid: int) -> None:
    if os.fork() == 0:
        code = 1
        try:
            _monitor(request, fds, test_pid)
            code = 0
        finally:
            os._exit(code)
    for fd in fds:
        os.close(fd)


def _monitor(request: dict[str, Any], fds: list[int], test_pid: int) -> None:
    """The monitor: fork the service, say its pid, wait for it, say how it ended."""
    stdout, stderr, status = fds
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # ends after its service, whatever is signalled
    pid = os.fork()
    if pid == 0:
        os.close(status)
        _run(request, stdout, stderr)
    os.close(stdout)
    os.close(stderr)
    os.write(status, f"{pid}\n".encode())
    _, wait_status, usage = os.wait4(pid, 0)
    cpu = round(usage.ru_utime + usage.ru_stime, 3)
    # The CPU before the end: a test that ends as soon as its command has (tests/forked_services.py's
    # run_command) counts it, and the directory made if the run's first test has not yet ended.
    directory = request["env"].get(_CPU_DIR_ENV)
    if directory:
        with contextlib.suppress(OSError):
            Path(directory).mkdir(parents=True, exist_ok=True)
            with open(Path(directory) / f"{test_pid}.forked.jsonl", "a") as file:
                file.write(json.dumps({"pid": pid, "cpu": cpu, "kind": _kind(request["args"])}) + "\n")
    os.write(
        status, (json.dumps({"code": os.waitstatus_to_exitcode(wait_status), "cpu": cpu}) + "\n").encode()
    )


def _kind(args: list[str]) -> str:
    """What the service is, for tests/cpu_report.py: the CLI's subcommand (a venue's name with it)."""
    return " ".join(args[:2]) if args[:1] == ["venue"] else (args[0] if args else "?")


def _run(request: dict[str, Any], stdout: int, stderr: int) -> None:
    """The service: as `python -m module args` would run it, then its exit (never returns)."""
    os.dup2(stdout, 1)
    os.dup2(stderr, 2)
    os.close(stdout)
    os.close(stderr)
    for sig in (signal.SIGTERM, signal.SIGCHLD):
        signal.signal(sig, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ.clear()
    os.environ.update(request["env"])
    os.chdir(request["cwd"])
    sys.argv = [request["module"], *request["args"]]
    code: int = 0
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = _exit_code(exc.code)
    except KeyboardInterrupt:
        code = -signal.SIGINT
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        atexit._run_exitfuncs()  # os._exit below skips them
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
    if code == -signal.SIGINT:  # as Python ends on an uncaught KeyboardInterrupt
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGINT)
    os._exit(code)


def _exit_code(code: object) -> int:
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":
    serve(int(sys.argv[1]))
