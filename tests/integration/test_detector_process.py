"""The detector as a real process on a real sim venue: the example strategies warm up (the
venue's candles, then live data), become active, and their signals reach the bus (stream
`signals`) with their rules' attribution, and a real recorder stores them. Bad strategy input
stops the start with one line naming it."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest

from tests.forked_services import run_command
from tests.integration.gateway_support import Gateway, Processes, buf_curl, create_key
from tests.integration.mesh import WARM_HISTORY_S, bus_signals, redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import TEST_TOKEN, until
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.patch.v1 import patch_pb2 as patch_pb
from trademesh.patch.v1 import patch_pb2_grpc as patch_grpc
from trademesh.signal.v1 import signal_pb2 as sig

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)
__all__ = ["database_url", "redis_url"]  # fixtures

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
PATCH = "trademesh.patch.v1.Patch"
# buf exits with the gRPC code shifted left by three bits when the RPC itself fails.
NOT_FOUND_EXIT = 5 << 3
UNAUTHENTICATED_EXIT = 16 << 3
EXAMPLES = {"trend", "mean_reversion", "order_flow"}
# The demo's promise: signals within a minute of start (examples on 1s bars, warmed live).
SIGNALS_WITHIN_S = 90


async def _recorded(database: str) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database)
    try:
        exists = await connection.fetchval("SELECT to_regclass('signals') IS NOT NULL")
        return list(await connection.fetch("SELECT * FROM signals")) if exists else []
    finally:
        await connection.close()


@dataclass
class Mesh:
    processes: Processes
    gateway: Gateway
    detector: ServiceProcess
    detector_args: list[str]
    bus: str
    database: str

    def restart_detector(self) -> None:
        self.detector.terminate()
        self.detector = self.processes.mesh_service(
            self.gateway, "detector", *self.detector_args, redis_url=self.bus
        )


@pytest.fixture
async def mesh(tmp_path: Path, database_url: str, redis_url: str) -> AsyncIterator[Mesh]:
    """A gateway, a sim venue, a detector running the examples, and a recorder."""
    async with new_database(database_url, "detector") as database, redis_db(redis_url) as bus:
        processes = Processes(tmp_path, database)
        try:
            gateway = processes.gateway()
            # The sim opens with a minute of candles: the examples warm from GetCandles at once.
            sim = processes.sim(gateway, f"history_s = {WARM_HISTORY_S}\n")
            args = ["--venue", f"sim={sim.address}", "--database-url", database]
            detector = processes.mesh_service(gateway, "detector", *args, redis_url=bus)
            processes.mesh_service(gateway, "recorder", "--database-url", database, redis_url=bus)
            yield Mesh(processes, gateway, detector, args, bus, database)
        finally:
            await processes.stop_all()


async def test_the_examples_emit_attributed_signals_to_the_bus_and_the_recorder(mesh: Mesh) -> None:
    bus, database = mesh.bus, mesh.database

    async def some_signals() -> list[sig.Signal] | None:
        found = await bus_signals(bus)
        return found or None

    signals = await until(some_signals, SIGNALS_WITHIN_S, interval_s=0.5, what="a signal on the bus")
    for signal in signals:
        assert signal.strategy_id in EXAMPLES and signal.venue == "sim", signal
        assert signal.direction != sig.DIRECTION_UNSPECIFIED and signal.rules
        assert 0 <= Decimal(signal.conviction) <= 1
        assert Decimal(signal.score) >= Decimal(signal.threshold)
        fired = sum(Decimal(rule.weight) for rule in signal.rules if rule.fired)
        assert fired == Decimal(signal.score), "the score is the weight of the rules that fired"
        assert signal.ts_signal_ns >= signal.ts_event_ns > 0

    async def stored() -> list[asyncpg.Record] | None:
        rows = await _recorded(database)
        return rows if {r["signal_id"] for r in rows} >= {s.signal_id for s in signals} else None

    rows = {r["signal_id"]: r for r in await until(stored, 30, interval_s=0.5, what="the signals recorded")}
    for signal in signals:
        row = rows[signal.signal_id]
        assert (row["strategy_id"], row["symbol"], row["score"]) == (
            signal.strategy_id,
            signal.symbol,
            Decimal(signal.score),
        )


async def test_a_detector_without_venues_waits_for_the_sim_to_register_then_signals(
    tmp_path: Path, database_url: str, redis_url: str
) -> None:
    """No --venue: the examples wait for their venue; the sim registering with the gateway later
    starts them (warmed, fed), with nothing restarted."""
    async with new_database(database_url, "detector") as database, redis_db(redis_url) as bus:
        processes = Processes(tmp_path, database)
        try:
            gateway = processes.gateway()
            detector = processes.mesh_service(gateway, "detector", "--database-url", database, redis_url=bus)
            log = processes.log_path(detector)
            await until(lambda: _said(log, "not in the mesh: waits for it"), 30, what="the patches waiting")
            processes.sim(gateway, f"history_s = {WARM_HISTORY_S}\n")
            await until(lambda: _said(log, "venue sim joined the mesh"), 30, what="the sim found")
            found = await until(
                lambda: _some(bus_signals(bus)), SIGNALS_WITHIN_S, interval_s=0.5, what="a signal"
            )
            assert {s.venue for s in found} == {"sim"} and {s.strategy_id for s in found} <= EXAMPLES
        finally:
            await processes.stop_all()


async def _said(log: Path, text: str) -> bool | None:
    written = await asyncio.to_thread(log.read_text, errors="replace")
    return True if text in written else None


async def _some(found: Awaitable[list[sig.Signal]]) -> list[sig.Signal] | None:
    return (await found) or None


_HEAD = 'id = "x"\nvenues = ["sim"]\nsymbols = ["BTC/USDT"]\n'


def _start(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_command(
        ["detector", "--port", "0", *args], {**os.environ, "TRADEMESH_TOKEN": "t", **env}, timeout_s=60
    )


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (f'{_HEAD}cables = []\n[[modules]]\nid = "a"\ntype = "nope"\n', "nope"),
        (f"{_HEAD}mystery = 1\n", "mystery"),
        ("not toml [", "strategy.toml"),
    ],
)  # fmt: skip
async def test_a_bad_strategy_file_is_one_line_naming_it_and_exit_2(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "strategy.toml"
    path.write_text(content)
    done = await asyncio.to_thread(_start, ["--strategy", str(path), "--venue", "sim=127.0.0.1:1"], {})
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], done.stderr
    assert "Traceback" not in done.stderr


async def test_a_strategy_on_a_venue_not_given_is_one_line_naming_the_venue() -> None:
    done = await asyncio.to_thread(_start, ["--venue", "other=127.0.0.1:1"], {})
    assert done.returncode == 2, done.stderr
    assert "trades venue 'sim'" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def _buf_native(address: str, method: str) -> subprocess.CompletedProcess[str]:
    buf = Path(__file__).resolve().parents[2] / "node_modules" / ".bin" / "buf"
    command = [str(buf), "curl", "--protocol", "grpc", "--http2-prior-knowledge", "--timeout", "20s"]
    command += ["-H", f"Authorization: Bearer {TEST_TOKEN}", f"http://{address}/{method}"]
    return subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)


async def _active(mesh: Mesh, key: str) -> dict[str, Any] | None:
    done = await buf_curl(mesh.gateway, f"{PATCH}/ListPatches", key=key, target="detector")
    if done.returncode in (NOT_FOUND_EXIT, UNAUTHENTICATED_EXIT):
        return None  # (re)registering with the gateway
    assert done.returncode == 0, done.stderr
    patches = json.loads(done.stdout or "{}").get("patches", [])
    active = {p["patchId"]: p for p in patches if p["state"] == "PATCH_STATE_ACTIVE"}
    return active if len(active) == len(patches) == 4 else None


async def test_the_patch_api_through_the_gateway_and_edits_survive_a_restart(mesh: Mesh) -> None:
    """buf curl (gRPC-web, the schema of proto/) through the gateway to the registered detector:
    the catalog, the examples' patches active once warm; a parameter changed over native gRPC
    is still there, at the same version, after the detector restarts."""
    key = await create_key(mesh.database, "strategist")

    async def catalog() -> set[str] | None:
        done = await buf_curl(mesh.gateway, f"{PATCH}/GetCatalog", key=key, target="detector")
        if done.returncode in (NOT_FOUND_EXIT, UNAUTHENTICATED_EXIT):
            return None  # not registered with the gateway yet; the new key not in its cache yet
        assert done.returncode == 0, done.stderr
        return {m["type"] for m in json.loads(done.stdout)["modules"]}

    types = await until(catalog, 60, interval_s=0.5, what="the detector reachable through the gateway")
    assert {"ema", "rsi", "weighted_score", "trade_bars", "signal"} <= types
    await until(lambda: _active(mesh, key), 90, interval_s=1.0, what="the four example patches active")
    # An operator on the native port: buf curl finds the schema by server reflection alone.
    native = await asyncio.to_thread(_buf_native, mesh.detector.address, f"{PATCH}/ListPatches")
    assert native.returncode == 0, native.stderr
    assert len(json.loads(native.stdout)["patches"]) == 4
    trend = "trend/sim/BTC/USDT"
    async with grpc.aio.insecure_channel(mesh.detector.address) as channel:
        stub = patch_grpc.PatchStub(channel)
        await stub.PausePatch(patch_pb.PausePatchRequest(patch_id=trend), metadata=AUTH, timeout=10)
        period = {"period": patch_pb.ParamValue(int_value=8)}
        request = patch_pb.SetParamsRequest(patch_id=trend, module_id="fast", params=period)
        changed = await stub.SetParams(request, metadata=AUTH, timeout=10)
    version = changed.patch.version
    await asyncio.to_thread(mesh.restart_detector)
    async with grpc.aio.insecure_channel(mesh.detector.address) as channel:
        stub = patch_grpc.PatchStub(channel)
        got = (await stub.GetPatch(patch_pb.GetPatchRequest(patch_id=trend), metadata=AUTH, timeout=10)).patch
    fast = next(m for m in got.modules if m.module_id == "fast")
    assert fast.params["period"].int_value == 8 and got.version == version
    assert got.state == patch_pb.PATCH_STATE_PAUSED, "a paused patch stays paused"


async def test_two_detector_instances_are_separate_processes_each_with_its_own_patches(
    mesh: Mesh, tmp_path: Path
) -> None:
    """A second detector (--instance) with one strategy of its own registers under its name; the
    gateway routes to each by x-trademesh-target, and neither sees the other's patches. After
    the first restarts, its active patches are active again (warmed anew)."""
    strategy = tmp_path / "flow.toml"
    example = (Path(__file__).parents[2] / "trademesh/core/detector/strategies/order_flow.toml").read_text()
    strategy.write_text(example.replace('id = "order_flow"', 'id = "flow_b"'))
    args = [*mesh.detector_args, "--instance", "detector-b", "--strategy", str(strategy)]
    mesh.processes.mesh_service(mesh.gateway, "detector", *args, redis_url=mesh.bus)
    key = await create_key(mesh.database, "strategist")

    async def patches(target: str) -> set[str]:
        done = await buf_curl(mesh.gateway, f"{PATCH}/ListPatches", key=key, target=target)
        if done.returncode in (NOT_FOUND_EXIT, UNAUTHENTICATED_EXIT):
            return set()  # not registered with the gateway yet
        assert done.returncode == 0, done.stderr
        return {p["patchId"] for p in json.loads(done.stdout or "{}").get("patches", [])}

    async def listed() -> bool | None:
        return True if await patches("detector-b") else None

    await until(listed, 60, interval_s=1.0, what="detector-b registered with its patch")
    assert await patches("detector-b") == {"flow_b/sim/BTC/USDT"}
    assert "flow_b/sim/BTC/USDT" not in await patches("detector")
    await until(lambda: _active(mesh, key), 90, interval_s=1.0, what="the examples active")
    await asyncio.to_thread(mesh.restart_detector)
    await until(lambda: _active(mesh, key), 90, interval_s=1.0, what="the examples active after a restart")
