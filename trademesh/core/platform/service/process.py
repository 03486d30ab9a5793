"""Start trademesh services as child processes and learn where they serve.

Every service prints one JSON line `{"event": "serving", "port": N, ...}` on stdout once it serves;
start_service waits for it, so callers can use port 0. A standby of a single writer
(trademesh.core.platform.replicas.leader) prints `{"event": "standby", ...}` instead, and the serving line
only once it leads: STARTED_EVENTS are the lines that say a process is up.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Protocol

from trademesh.core.platform.errors import Unavailable

__all__ = ["STARTED_EVENTS", "ChildProcess", "Launcher", "ServiceProcess", "launcher", "start_service"]

# The stdout events that say a process is up (trademesh.core.platform.service.lifecycle): serving,
# or standing by.
STARTED_EVENTS = ("serving", "standby")


class ChildProcess(Protocol):
    """What start_service's callers use of a service's process (a subprocess.Popen has it)."""

    pid: int
    returncode: int | Any
    stdout: IO[str] | None

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def send_signal(self, sig: int) -> None: ...

    def terminate(self) -> None: ...

    def kill(self) -> None: ...


class Launcher(Protocol):
    """Starts `python -m module args` with this environment and stderr; stdout a text pipe."""

    def __call__(
        self, module: str, args: Sequence[str], env: dict[str, str], stderr: IO[str] | None
    ) -> ChildProcess: ...


# None: every service is exec'd (subprocess.Popen). The test suite sets a fork server's
# (tests/forked_services.py), which starts the same entry point without importing its libraries again.
launcher: Launcher | None = None


@dataclass
class ServiceProcess:
    process: ChildProcess
    info: dict[str, Any]
    # What it printed on stdout up to its serving line.
    output: list[str] = field(default_factory=list)

    @property
    def port(self) -> int:
        port: int = self.info["port"]
        return port

    @property
    def address(self) -> str:
        return f"{self.info['host']}:{self.port}"

    def terminate(self, timeout_s: float = 15.0) -> int:
        """SIGTERM, wait; SIGKILL if it does not stop in time. Returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(timeout_s)


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def start_service(
    args: Sequence[str],
    env: dict[str, str] | None = None,
    timeout_s: float = 60.0,  # a busy machine (a test suite's) can take 30 s to start a venue
    stderr: IO[str] | None = None,
    module: str = "trademesh.core.cli",
    events: tuple[str, ...] = ("serving",),
) -> ServiceProcess:
    """Run `python -m <module> <args>` (the CLI by default; a test stand-in that prints the same
    serving line otherwise) and wait (at most timeout_s) for its serving line (or, with `events`,
    the first line of one of those events: "standby", trademesh.core.platform.service.lifecycle)."""
    process = _launch(module, args, {**os.environ, **(env or {})}, stderr)
    assert process.stdout is not None
    # A reader thread, so a child that hangs before printing cannot hang us: we wait on the queue.
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    try:
        service = _wait_serving(process, lines, time.monotonic() + timeout_s, events)
    except Unavailable as exc:
        raise Unavailable(f"{' '.join(args)} {exc}") from None
    if service is None:
        process.kill()
        raise Unavailable(f"{' '.join(args)} did not report serving within {timeout_s} s")
    return service


def _launch(module: str, args: Sequence[str], env: dict[str, str], stderr: IO[str] | None) -> ChildProcess:
    if launcher is not None:
        return launcher(module, args, env, stderr)
    return subprocess.Popen(
        [sys.executable, "-m", module, *args], stdout=subprocess.PIPE, stderr=stderr, text=True, env=env
    )


def _wait_serving(
    process: ChildProcess, lines: queue.Queue[str | None], deadline: float, events: tuple[str, ...]
) -> ServiceProcess | None:
    seen: list[str] = []
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            return None
        if line is None:
            raise Unavailable(f"exited with {process.wait()} before serving")
        seen.append(line)
        info = json.loads(line) if line.startswith("{") else {}
        if info.get("event") in events:
            return ServiceProcess(process, info, seen)
    return None
