"""Start trademesh services as child processes and learn where they serve.

Every service prints one JSON line `{"event": "serving", "port": N, ...}` on
stdout once it serves; start_service waits for it, so callers can use port 0.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from core.errors import Unavailable

__all__ = ["ServiceProcess", "start_service"]


@dataclass
class ServiceProcess:
    process: subprocess.Popen[str]
    info: dict[str, Any]
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


def _pump(stream: IO[str], sink: list[str]) -> None:
    for line in stream:
        sink.append(line)


def start_service(
    args: Sequence[str],
    env: dict[str, str] | None = None,
    timeout_s: float = 30.0,
    stderr: IO[str] | None = None,
) -> ServiceProcess:
    """Run `python -m core.cli <args>` and wait for its serving line."""
    process = subprocess.Popen(
        [sys.executable, "-m", "core.cli", *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    lines: list[str] = []
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if line == "":
            raise Unavailable(f"{' '.join(args)} exited with {process.wait()} before serving")
        lines.append(line)
        if line.startswith("{"):
            info = json.loads(line)
            if info.get("event") == "serving":
                service = ServiceProcess(process, info, lines)
                threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
                return service
    process.kill()
    raise Unavailable(f"{' '.join(args)} did not report serving within {timeout_s} s")
