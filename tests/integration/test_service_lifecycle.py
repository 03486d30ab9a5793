"""trademesh.core.platform.service.lifecycle, the one lifecycle, on a tiny service in its own process
(lifecycle_app)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from trademesh.registry.v1 import registry_pb2 as pb
from trademesh.registry.v1 import registry_pb2_grpc as pb_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
AUTH = (("authorization", "Bearer t"),)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(port: int, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.lifecycle_app", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def port() -> Iterator[int]:
    yield _free_port()


async def _health(channel: grpc.aio.Channel) -> int:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=2)
    return int(reply.status)


async def _until_answering(channel: grpc.aio.Channel, timeout_s: float = 20.0) -> int:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return await _health(channel)
        except grpc.aio.AioRpcError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def test_a_starting_service_says_not_serving_and_refuses_calls_until_ready(port: int) -> None:
    process = _start(port, "--start-delay-s", "3")
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert await _until_answering(channel) == NOT_SERVING
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await pb_grpc.RegistryStub(channel).ListServices(
                    pb.ListServicesRequest(), metadata=AUTH, timeout=2
                )
            assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "starting" in (refused.value.details() or "")
            line = await asyncio.to_thread(_serving_line, process)
            assert line["event"] == "serving" and line["port"] == port and line["service"] == "lifecycle"
            assert await _health(channel) == SERVING
            await pb_grpc.RegistryStub(channel).ListServices(
                pb.ListServicesRequest(), metadata=AUTH, timeout=2
            )
    finally:
        process.kill()
        process.wait(10)


def _serving_line(process: subprocess.Popen[str]) -> dict[str, object]:
    assert process.stdout is not None
    for text in process.stdout:
        if text.startswith("{"):
            found: dict[str, object] = json.loads(text)
            return found
    raise AssertionError(f"exited with {process.wait()} before serving")


async def test_sigterm_runs_the_stopping_hooks_not_serving_then_stops_the_work_and_exits_zero(
    port: int,
) -> None:
    process = _start(port)
    try:
        await asyncio.to_thread(_serving_line, process)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
            assert (await watch.read()).status == SERVING
            process.send_signal(signal.SIGTERM)
            assert (await asyncio.wait_for(watch.read(), 5)).status == NOT_SERVING
        out, err = await asyncio.to_thread(process.communicate, timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert out.splitlines()[-2:] == ["stopping hook", "work stopped"]


async def test_sigusr1_writes_where_each_task_waits_to_the_log_and_the_service_serves_on(port: int) -> None:
    process = _start(port)
    try:
        await asyncio.to_thread(_serving_line, process)
        process.send_signal(signal.SIGUSR1)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            assert await _health(channel) == SERVING  # the dump stopped nothing
        process.send_signal(signal.SIGTERM)
        _, err = await asyncio.to_thread(process.communicate, timeout=20)
    finally:
        process.kill()
    assert process.returncode == 0, err
    dump = err[err.index("lifecycle: SIGUSR1") :]
    assert "asyncio tasks ----" in dump
    assert "lifecycle_app.py" in dump and "in run" in dump  # the work, waiting for its stop


def test_our_error_before_ready_ends_the_process_with_one_line_and_exit_2(port: int) -> None:
    process = _start(port, "--fail", "ours", "--fail-when", "before")
    out, err = process.communicate(timeout=30)
    assert process.returncode == 2
    assert err.strip().splitlines() == ["trademesh: cannot start: failed before ready on purpose"]
    assert '"serving"' not in out


def test_a_bug_after_ready_is_logged_with_its_traceback_and_exits_1(port: int) -> None:
    process = _start(port, "--fail", "bug", "--fail-when", "after")
    out, err = process.communicate(timeout=30)
    assert process.returncode == 1
    assert '"serving"' in out
    assert "stopped by an error: a bug after ready" in err and "Traceback" in err


def test_with_json_logs_every_stderr_line_is_a_json_record_of_the_service(port: int) -> None:
    process = _start(port, "--fail", "bug", "--fail-when", "after", env={"TRADEMESH_LOG_FORMAT": "json"})
    _, err = process.communicate(timeout=30)
    records = [json.loads(line) for line in err.splitlines()]
    assert records and all(r["service"] == "lifecycle" for r in records)
    failure = next(r for r in records if r["level"] == "ERROR")
    assert "a bug after ready" in failure["message"] and "RuntimeError" in failure["exception"]
