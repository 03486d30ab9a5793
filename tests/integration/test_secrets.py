"""A password never reaches a log line or an error, whatever form its URL takes (issue 12, item 11).

Each service runs with a sentinel password in each connection-string form the libraries
accept, against addresses where nothing answers (or a malformed URL); everything it writes
before it gives up or is stopped is searched for the sentinel.
"""

from __future__ import annotations

import os
import queue
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import IO

import pytest

from tests.forked_services import launch_command

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)

SECRET = "S3ntinel-pw-41f9"


def _refusing_port() -> tuple[socket.socket, int]:
    """A port bound and never listened on: a connection to it is refused, and while the socket
    is held no other process of the suite can take it (a port closed again could be: once a
    gateway took it, and the bridge met an HTTP server where it looked for Redis)."""
    held = socket.socket()
    held.bind(("127.0.0.1", 0))
    return held, held.getsockname()[1]


_HELD, PORT = _refusing_port()
REDIS_FORMS = [
    f"redis://:{SECRET}@127.0.0.1:{PORT}/0",
    f"redis://default:{SECRET}@127.0.0.1:{PORT}/0",
    f"redis://127.0.0.1:{PORT}/0?password={SECRET}",
    f"127.0.0.1:{PORT},password={SECRET}",
    f"redis://u:{SECRET}@[::1/0",
]
DATABASE_FORMS = [
    f"postgresql://rec:{SECRET}@127.0.0.1:{PORT}/market",
    f"postgresql://rec@127.0.0.1:{PORT}/market?password={SECRET}",
    f"host=127.0.0.1 port={PORT} user=rec password={SECRET} dbname=market",
    f"postgresql://rec:{SECRET}@[::1/market",
]
SERVE = ["--port", "0", "--metrics-port", "-1"]
REDIS_SERVICES = [
    ["bridge", *SERVE],
    ["bars", *SERVE],
    ["ingest", *SERVE, "--venue", f"sim=127.0.0.1:{PORT}"],
]
DATABASE_SERVICES = [
    ["recorder", *SERVE],
    ["gateway", "--port", "0", "--grpc-port", "0"],
    ["keys", "list"],
]


def _output(args: list[str], env: dict[str, str]) -> str:
    """What the command writes (stdout and stderr) until it exits or has written two lines (a
    service retrying an unreachable dependency goes on forever: its second line is the first
    retry's), then as it stops."""
    process, stdout, stderr = launch_command(args, {**os.environ, "TRADEMESH_TOKEN": "t", **env})
    lines = _Lines([stdout, stderr])
    out = lines.read(time.monotonic() + _FIRST_LINES_S, most=2)
    process.terminate()
    process.wait(20)
    out += lines.read(time.monotonic() + 5)
    return "".join(out)


# However loaded the machine, a process starts and says something within this.
_FIRST_LINES_S = 60.0


class _Lines:
    """The lines of a process's streams as they come (a thread reads each)."""

    def __init__(self, streams: list[IO[str]]) -> None:
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._open = len(streams)
        for stream in streams:
            threading.Thread(target=_pump, args=(stream, self._lines), daemon=True).start()

    def read(self, deadline: float, most: int | None = None) -> list[str]:
        """The next lines, until `most` of them, the streams' end or the deadline."""
        found: list[str] = []
        while self._open and (most is None or len(found) < most):
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                break
            if line is None:
                self._open -= 1
            else:
                found.append(line)
        return found


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    with stream:
        for line in stream:
            lines.put(line)
    lines.put(None)


def _runs() -> list[tuple[list[str], dict[str, str]]]:
    runs = [(args, {"REDIS_URL": url}) for url in REDIS_FORMS for args in REDIS_SERVICES]
    runs += [(args, {"DATABASE_URL": url}) for url in DATABASE_FORMS for args in DATABASE_SERVICES]
    runs += [(["bridge", *SERVE, "--redis-url", url], {}) for url in REDIS_FORMS]
    runs += [(["recorder", *SERVE, "--database-url", url], {}) for url in DATABASE_FORMS]
    return runs


def test_no_password_form_reaches_any_log_line_or_error() -> None:
    runs = _runs()
    with ThreadPoolExecutor(max_workers=6) as pool:
        outputs = list(pool.map(lambda run: _output(*run), runs))
    leaks = [(run, out) for run, out in zip(runs, outputs, strict=True) if SECRET in out]
    assert not leaks, leaks[0]
    # Each run said something (an error or a retry), so there was something to search.
    assert all(out.strip() for out in outputs)
    assert all("Traceback" not in out for out in outputs), next(o for o in outputs if "Traceback" in o)
