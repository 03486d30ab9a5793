"""A venue started by hand joins the mesh exactly as docs/scaling.md's runbook says (issue 56 item
7): the runbook's shell block, run by bash with an empty environment beside a real gateway, gives
a venue the registry lists and that refuses calls without the mesh token. With TRADEMESH_GATEWAY
alone (what the docs used to say) a venue does not start: one line naming TRADEMESH_TOKEN, exit 2.
With a token that is not the mesh's, the registration is refused and says so at each attempt."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

from tests.integration.gateway_support import Gateway, Processes, list_instances, module_database
from tests.integration.postgres_server import database_url
from tests.integration.support import (
    CALL_TIMEOUT_S,
    TEST_TOKEN,
    TEST_TRADE_TOKEN,
    metric_samples,
    metrics_page,
    until,
)
from trademesh.admin.v1 import admin_pb2 as adm
from trademesh.admin.v1 import admin_pb2_grpc as adm_grpc
from trademesh.core.platform.config.env import GATEWAY, TOKEN
from trademesh.core.platform.service.registry import METRICS_PORT_OFFSET
from trademesh.registry.v1 import registry_pb2 as reg

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["database_url", "module_database"]  # fixtures, for pytest

ROOT = Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "scaling.md"
# What the runbook names that a test puts its own in place of: the gateway's address and the
# venue's port (a test binds free ports); the secrets' directory is the test's `.trademesh`.
DOC_GATEWAY = "127.0.0.1:8082"
DOC_PORT = "5090"
DOC_NAME = "sim.by-hand"
WRONG_TOKEN = "not-the-mesh-token-4242"


@pytest.fixture(scope="module")
async def gateway(tmp_path_factory: pytest.TempPathFactory, module_database: str) -> AsyncIterator[Gateway]:
    processes = Processes(tmp_path_factory.mktemp("by-hand"), module_database)
    try:
        yield processes.gateway("--heartbeat-interval-s", "0.5", "--registry-ttl-s", "2")
    finally:
        await processes.stop_all()


def runbook_block() -> str:
    """The shell block of docs/scaling.md's "Runbook: a venue started by hand"."""
    text = RUNBOOK.read_text()
    section = text.split("### Runbook: a venue started by hand", 1)[1]
    found = re.search(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert found is not None, "the runbook has no sh block"
    return found.group(1)


def free_port_pair() -> int:
    """A free port whose metrics port (port + METRICS_PORT_OFFSET) is free too."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port: int = sock.getsockname()[1]
        if port + METRICS_PORT_OFFSET > 65535:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port + METRICS_PORT_OFFSET))
            except OSError:
                continue
        return port
    raise AssertionError("no free port pair")


def fresh_shell_env(home: Path) -> dict[str, str]:
    """A fresh login's environment: no TRADEMESH_* variable, nothing of this test run's."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(home), "LANG": "C.UTF-8"}


@contextmanager
def runbook_venue(directory: Path, gateway: Gateway, port: int) -> Iterator[subprocess.Popen[bytes]]:
    """The runbook's block, run by bash in `directory` (up's directory: .trademesh holding the
    mesh's secrets, .venv the checkout's); stopped with SIGTERM as an operator's Ctrl-C would."""
    (directory / ".trademesh").mkdir()
    (directory / ".trademesh" / "token").write_text(TEST_TOKEN + "\n")
    (directory / ".trademesh" / "trade-token").write_text(TEST_TRADE_TOKEN + "\n")
    (directory / ".venv").symlink_to(ROOT / ".venv")
    block = runbook_block().replace(DOC_GATEWAY, gateway.grpc_address).replace(DOC_PORT, str(port))
    with (directory / "venue.log").open("wb") as log:
        shell = subprocess.Popen(
            ["/bin/bash", "-e", "-c", block],
            cwd=directory,
            env=fresh_shell_env(directory),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield shell
        finally:
            if shell.poll() is None:
                os.killpg(shell.pid, signal.SIGTERM)
                try:
                    shell.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(shell.pid, signal.SIGKILL)
                    shell.wait()


async def admin_status(address: str, token: str | None) -> grpc.StatusCode:
    metadata = () if token is None else (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        stub = adm_grpc.AdminStub(channel)
        try:
            await stub.GetStatus(adm.GetStatusRequest(), metadata=metadata, timeout=CALL_TIMEOUT_S)
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    return grpc.StatusCode.OK


async def test_the_runbooks_environment_from_a_fresh_shell_joins_the_mesh_with_auth_on(
    gateway: Gateway, tmp_path: Path
) -> None:
    port = free_port_pair()
    with runbook_venue(tmp_path, gateway, port) as shell:

        async def listed() -> reg.Instance | None:
            assert shell.poll() is None, (tmp_path / "venue.log").read_text()
            return (await list_instances(gateway)).get(DOC_NAME)

        instance = await until(listed, 60, 0.2, f"{DOC_NAME} registered by the runbook's venue")
        assert instance.address == f"127.0.0.1:{port}"
        assert instance.kind == reg.KIND_VENUE
        assert await admin_status(instance.address, None) == grpc.StatusCode.UNAUTHENTICATED
        assert await admin_status(instance.address, TEST_TOKEN) == grpc.StatusCode.OK
    log = (tmp_path / "venue.log").read_text()
    assert f"registered {DOC_NAME} (127.0.0.1:{port}) with the gateway at {gateway.grpc_address}" in log
    assert "AUTH IS OFF" not in log
    assert TEST_TOKEN not in log and TEST_TRADE_TOKEN not in log
    assert DOC_NAME not in await list_instances(gateway)  # stopped: unregistered


def test_the_gateway_alone_in_the_environment_refuses_to_start_naming_the_token(
    gateway: Gateway, tmp_path: Path
) -> None:
    env = {**fresh_shell_env(tmp_path), GATEWAY: gateway.grpc_address}
    done = subprocess.run(
        [sys.executable, "-m", "trademesh.core.cli", "venue", "sim", "--port", "0", "--metrics-port", "-1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"trademesh: {TOKEN}: not set, and {GATEWAY} is ({gateway.grpc_address})")
    assert done.stdout == ""  # never served


async def test_a_token_the_gateway_refuses_is_an_error_at_each_attempt_and_counted(
    gateway: Gateway, tmp_path: Path, module_database: str
) -> None:
    processes = Processes(tmp_path, module_database)
    try:
        sim = processes.sim(gateway, None, 0, "--metrics-port", "0", env={TOKEN: WRONG_TOKEN})
        metrics_port = int(sim.info["metrics_port"])

        async def refused_twice() -> dict[str, float] | None:
            page = await metrics_page(metrics_port)
            refusals = metric_samples(page, "trademesh_registration_refusals_total")
            return refusals if refusals.get('{code="UNAUTHENTICATED"}', 0) >= 2 else None

        refusals = await until(refused_twice, 30, 0.2, "two refused registrations")
        page = await metrics_page(metrics_port)
        assert metric_samples(page, "trademesh_registration_registered") == {"": 0.0}
        assert "sim" not in await list_instances(gateway)
        log = processes.log_path(sim).read_text()
        errors = [line for line in log.splitlines() if "refused to register sim" in line]
        assert len(errors) >= refusals['{code="UNAUTHENTICATED"}'] >= 2, log
        assert all("ERROR" in line and "UNAUTHENTICATED" in line and TOKEN in line for line in errors)
        assert WRONG_TOKEN not in log
    finally:
        await asyncio.wait_for(processes.stop_all(), 60)
