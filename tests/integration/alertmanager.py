"""Debian's Alertmanager (/usr/bin/prometheus-alertmanager) for a test: on a free port, without
clustering, its storage in the test's directory; alerts posted to its API v2 as Prometheus
would post them."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from tests.integration.support import CALL_TIMEOUT_S, until

__all__ = ["ALERTMANAGER", "alertmanager", "post_alert"]

ALERTMANAGER = Path("/usr/bin/prometheus-alertmanager")
# Every alert to a receiver that sends nothing: the test reads them back through the API.
_CONFIG = "route:\n  receiver: quiet\nreceivers:\n  - name: quiet\n"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def alertmanager(directory: Path) -> AsyncIterator[str]:
    """Its base URL once it answers; stopped on the way out."""
    process, url = await asyncio.to_thread(_start, directory)
    try:
        await until(lambda: _ready(url), 30, 0.1, "Alertmanager answering")
        yield url
    finally:
        await asyncio.to_thread(_stop, process)


def _start(directory: Path) -> tuple[subprocess.Popen[bytes], str]:
    if not ALERTMANAGER.exists():
        pytest.fail(f"{ALERTMANAGER} is missing: `./dev test` installs Debian's prometheus-alertmanager")
    (directory / "alertmanager.yml").write_text(_CONFIG)
    address = f"127.0.0.1:{_free_port()}"
    command = [
        str(ALERTMANAGER),
        f"--config.file={directory / 'alertmanager.yml'}",
        f"--storage.path={directory / 'alertmanager-data'}",
        f"--web.listen-address={address}",
        "--cluster.listen-address=",
    ]
    with (directory / "alertmanager.log").open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    return process, f"http://{address}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def _ready(url: str) -> bool | None:
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session, session.get(f"{url}/-/ready") as reply:
            return True if reply.status == 200 else None
    except aiohttp.ClientError:
        return None


async def post_alert(url: str, labels: Mapping[str, str], summary: str = "") -> None:
    """One firing alert (for the next hour), as Prometheus posts it."""
    now = datetime.now(UTC)
    alert = {
        "labels": dict(labels),
        "annotations": {"summary": summary} if summary else {},
        "startsAt": now.isoformat(),
        "endsAt": (now + timedelta(hours=1)).isoformat(),
    }
    timeout = aiohttp.ClientTimeout(total=CALL_TIMEOUT_S)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.post(f"{url}/api/v2/alerts", json=[alert]) as reply,
    ):
        assert reply.status == 200, await reply.text()
