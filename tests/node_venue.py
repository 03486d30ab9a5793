"""node-ref (trademesh/venues/node_ref), the reference venue in TypeScript, as a real process for the tests.

Built first when its stamps are stale (`npm ci` on its lockfile, `npm run build` on its sources,
as ./dev does in its set-up), then started as `node trademesh/venues/node_ref/dist/main.js --port N` with the
mesh token and the trading credential; a start returns once it printed its serving line.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import json
import os
import queue
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import IO

import pytest

from tests.integration.support import TEST_TOKEN, TEST_TRADE_TOKEN, Venue
from trademesh.core.platform.config.env import DRAIN_DELAY_S, TOKEN, TRADE_TOKEN
from trademesh.core.platform.service.process import ServiceProcess

__all__ = ["HISTORY_S", "NODE_REF", "build_node_ref", "running", "start_node_ref"]

ROOT = Path(__file__).resolve().parents[1]
NODE_REF = ROOT / "trademesh" / "venues" / "node_ref"
MAIN = NODE_REF / "dist" / "main.js"
# One build at a time across the test processes (pytest-xdist workers) of a machine.
_BUILD_LOCK = Path(tempfile.gettempdir()) / "trademesh-node-ref-build.lock"
# npm ci and tsc on a loaded 2-core machine: well under a minute; a hung npm fails the test.
_BUILD_TIMEOUT_S = 300
# Seconds of market the venue plays before it opens (its GetCandles history): enough for the
# kit to page 1-minute candles, little start-up time (about 0.3 s a minute played).
HISTORY_S = 300
_START_TIMEOUT_S = 60.0


def _run(command: list[str]) -> None:
    done = subprocess.run(
        command, cwd=NODE_REF, capture_output=True, text=True, timeout=_BUILD_TIMEOUT_S, check=False
    )
    if done.returncode != 0:
        pytest.fail(
            f"{' '.join(command)} in trademesh/venues/node_ref failed ({done.returncode}):\n"
            f"{done.stderr[-4000:]}"
        )


def build_node_ref() -> Path:
    """dist/main.js, built first when stale: node_modules stamped on package-lock.json's hash as
    ./dev stamps it (`npm ci`), dist older than a source, the lock or the TypeScript config (`npm
    run build`, as make would; ./dev's set-up builds it too)."""
    with _BUILD_LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        lockfile = NODE_REF / "package-lock.json"
        digest = hashlib.sha256(lockfile.read_bytes()).hexdigest()[:16]
        installed = NODE_REF / "node_modules" / f".installed-{digest}"
        if not installed.exists():
            _run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"])
            installed.touch()
        inputs = [lockfile, NODE_REF / "tsconfig.json", *(NODE_REF / "src").rglob("*.ts")]
        newest = max(path.stat().st_mtime for path in inputs)
        if not MAIN.exists() or MAIN.stat().st_mtime < newest:
            _run(["npm", "run", "--silent", "build"])
            MAIN.touch()  # tsc leaves an unchanged output's time as it was
    return MAIN


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def start_node_ref(
    log_path: Path, env: dict[str, str] | None = None, port: int = 0, history_s: int = HISTORY_S
) -> Venue:
    """A node-ref process on `port` (0: a free one); returns once it printed its serving line.
    `env` over the tests' tokens: the mesh token and trading credential a mesh gives it."""
    main = build_node_ref()
    environment = {
        **os.environ,
        TOKEN: TEST_TOKEN,
        TRADE_TOKEN: TEST_TRADE_TOKEN,
        DRAIN_DELAY_S: "0",
        **(env or {}),
    }
    with log_path.open("w") as log_file:
        process = subprocess.Popen(
            ["node", str(main), "--port", str(port), "--history-s", str(history_s)],
            stdout=subprocess.PIPE,
            stderr=log_file,
            text=True,
            env=environment,
        )
    assert process.stdout is not None
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
    deadline = time.monotonic() + _START_TIMEOUT_S
    seen: list[str] = []
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:
            pytest.fail(
                f"node-ref exited with {process.wait()} before serving: {log_path.read_text()[-2000:]}"
            )
        seen.append(line)
        info = json.loads(line) if line.startswith("{") else {}
        if info.get("event") == "serving":
            service = ServiceProcess(process, info, seen)
            return Venue(service, log_path, token=environment[TOKEN], trade_token=environment[TRADE_TOKEN])
    process.kill()
    pytest.fail(f"node-ref did not report serving within {_START_TIMEOUT_S} s")


@contextlib.asynccontextmanager
async def running(
    log_path: Path, env: dict[str, str] | None = None, port: int = 0, history_s: int = HISTORY_S
) -> AsyncIterator[Venue]:
    """node-ref for the block; stopped with SIGTERM after it, which must end it with exit code 0."""
    venue = await asyncio.to_thread(start_node_ref, log_path, env, port, history_s)
    try:
        yield venue
    finally:
        try:
            await venue.close_channels()
        finally:
            assert await asyncio.to_thread(venue.service.terminate) == 0, venue.log()[-2000:]
