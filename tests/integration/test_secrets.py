"""A password never reaches a log line or an error, whatever form its URL takes (issue 12, item 11).

Each service runs with a sentinel password in each connection-string form the libraries
accept, against addresses where nothing answers (or a malformed URL); everything it writes
before it gives up or is stopped is searched for the sentinel.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import IO

import pytest

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
    """What the command writes until it exits, or until 2 s after its first line (a service
    retrying an unreachable dependency goes on forever), stdout and stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "core.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TRADEMESH_TOKEN": "t", **env},
    )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    out: list[str] = []
    deadline = time.monotonic() + _FIRST_LINE_S
    while (line := _next(lines, deadline)) is not None:
        if not out:
            deadline = time.monotonic() + _AFTER_FIRST_LINE_S
        out.append(line)
    process.terminate()
    process.wait(20)
    while (line := _next(lines, time.monotonic() + 5)) is not None:
        out.append(line)
    return "".join(out)


# However loaded the machine, a process starts within this; once it speaks, 2 s is plenty
# for the lines that follow (a retry, a second error).
_FIRST_LINE_S = 60.0
_AFTER_FIRST_LINE_S = 2.0


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _next(lines: queue.Queue[str | None], deadline: float) -> str | None:
    try:
        return lines.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
        return None


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
