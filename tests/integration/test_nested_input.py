"""Deeply nested TOML sent to the services that parse it (issue 57 item 7): a strategy file in
CreatePatch on a real detector, a policy set in UpdatePolicies on a real inspector, and the same
files given at start. Each is INVALID_ARGUMENT naming the field (or one line and exit 2 at
start), never INTERNAL with a traceback of thousands of lines; the service answers on."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import grpc
import pytest

from tests.forked_services import run_command
from tests.integration.gateway_support import Processes
from tests.integration.inspector_mesh import AUTH, inspector_mesh
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S
from trademesh.core.platform.parsing import MAX_DEPTH
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.patch.v1 import patch_pb2_grpc as pb_grpc
from trademesh.risk.v1 import inspector_pb2 as rk

pytestmark = pytest.mark.integration
__all__ = ["database_url", "redis_url"]  # fixtures

TREND = Path("trademesh/core/detector/strategies/trend.toml").read_text()
NESTED = f"nested deeper than {MAX_DEPTH} levels"
# Each a RecursionError in tomllib, or (dotted keys) in whatever walked the table next.
DEEP = {
    "arrays": "x = " + "[" * 3000 + "]" * 3000 + "\n",
    "inline tables": "x = " + "{a = " * 3000 + "1" + "}" * 3000 + "\n",
    "dotted keys": ".".join(["k"] * 3000) + " = 1\n",
}


@pytest.mark.parametrize("deep", DEEP.values(), ids=DEEP.keys())
async def test_a_deeply_nested_strategy_in_create_patch_is_invalid_argument_and_the_detector_serves_on(
    tmp_path: Path, database_url: str, redis_url: str, deep: str
) -> None:
    async with new_database(database_url, "nested") as database, redis_db(redis_url) as bus:
        processes = Processes(tmp_path, database)
        try:
            gateway = processes.gateway()
            detector = processes.mesh_service(gateway, "detector", "--database-url", database, redis_url=bus)
            async with grpc.aio.insecure_channel(detector.address) as channel:
                stub = pb_grpc.PatchStub(channel)
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    request = pb.CreatePatchRequest(strategy_toml=deep + TREND)
                    await stub.CreatePatch(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)
                assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
                [(field, why)] = bad_request_violations(caught.value)
                assert field == "strategy_toml.file" and NESTED in why
                made = await stub.CreatePatch(
                    pb.CreatePatchRequest(strategy_toml=TREND.replace('id = "trend"', 'id = "t2"', 1)),
                    metadata=AUTH,
                    timeout=CALL_TIMEOUT_S,
                )
                assert made.patch.patch_id.startswith("t2")
            assert "Traceback" not in processes.log_path(detector).read_text()
        finally:
            await processes.stop_all()


async def test_deeply_nested_policies_in_update_policies_are_invalid_argument_and_kept_unchanged(
    tmp_path: Path, redis_url: str
) -> None:
    async with inspector_mesh(tmp_path, redis_url, policies='[orders]\nmax_notional = "100"\n') as mesh:
        for deep in DEEP.values():
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await mesh.stub.UpdatePolicies(
                    rk.UpdatePoliciesRequest(toml=deep, reason="test"), metadata=AUTH, timeout=CALL_TIMEOUT_S
                )
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
            [(field, why)] = bad_request_violations(caught.value)
            assert field == "policies" and NESTED in why
        current = await mesh.stub.GetPolicies(rk.GetPoliciesRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
        assert 'max_notional = "100"' in current.toml
        assert "Traceback" not in mesh.log()


def _start(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TRADEMESH_TOKEN": "t", "TRADEMESH_SUPERVISOR_API_KEY": "tmk_x"}
    return run_command(args, env, timeout_s=60)


DEEP_JSON = "[" * 5000 + "]" * 5000


@pytest.mark.parametrize(
    ("command", "content"),
    [
        (["detector", "--port", "0", "--venue", "sim=127.0.0.1:1", "--strategy"], DEEP["arrays"]),
        (["inspector", "--port", "0", "--venue", "sim=127.0.0.1:1", "--policies"], DEEP["inline tables"]),
        (["supervisor", "--port", "0", "--bounds"], DEEP["dotted keys"]),
        (["venue", "sim", "--port", "0", "--config"], DEEP["arrays"]),
        (["advisor", "--port", "0", "--calibration"], DEEP_JSON),
    ],
    ids=["detector strategy", "inspector policies", "supervisor bounds", "sim config", "advisor calibration"],
)
async def test_a_deeply_nested_file_at_start_is_one_line_and_exit_2(
    tmp_path: Path, command: list[str], content: str
) -> None:
    path = tmp_path / "deep"
    path.write_text(content)
    done = await asyncio.to_thread(_start, [*command, str(path)])
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and NESTED in lines[0], done.stderr
