"""A mesh for the services that are the gateway's clients (the Telegram bot, the Supervisor):
a real gateway, the sim, a detector running the example strategies and an inspector (and a
ledger when asked) as processes registering with it, and a key for the client; read back from
the services themselves (the detector's patches, the inspector's state)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import grpc

from tests.integration.gateway_support import at_once, both, new_key
from tests.integration.mesh import WARM_HISTORY_S, MeshProcesses, redis_db, sim_config, venue_link
from tests.integration.postgres_server import new_database
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN
from trademesh.core.platform.config.env import DATABASE_URL, GATEWAY, REDIS_URL, SESSION_SECRET, TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.patch.v1 import patch_pb2_grpc as pb_grpc
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc

__all__ = ["AUTH", "ClientMesh", "client_mesh"]

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)


@dataclass
class ClientMesh:
    directory: Path
    database: str
    redis: str
    gateway: ServiceProcess
    detector: ServiceProcess
    inspector: ServiceProcess
    key: str

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway.port}"

    async def set_patches(self, strategy: str, paused: bool, market: str = "") -> None:
        """Every patch of `strategy` (or its one on `market`, e.g. sim/BTC/USDT) paused or
        activated at the detector itself (by hand); one already so is left as it is (a test that
        failed midway leaves it so for the module's next: a second pause is refused)."""
        wanted = pb.PATCH_STATE_PAUSED if paused else pb.PATCH_STATE_ACTIVE
        async with grpc.aio.insecure_channel(self.detector.address) as channel:
            stub = pb_grpc.PatchStub(channel)
            listed = await stub.ListPatches(pb.ListPatchesRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
            for patch in (p for p in listed.patches if p.patch_id.startswith(f"{strategy}/{market}")):
                if patch.state == wanted:
                    continue
                if paused:
                    await stub.PausePatch(pb.PausePatchRequest(patch_id=patch.patch_id), metadata=AUTH,
                                          timeout=CALL_TIMEOUT_S)  # fmt: skip
                else:
                    await stub.ActivatePatch(pb.ActivatePatchRequest(patch_id=patch.patch_id), metadata=AUTH,
                                             timeout=CALL_TIMEOUT_S)  # fmt: skip

    async def patch_states(self, strategy: str) -> set[int]:
        async with grpc.aio.insecure_channel(self.detector.address) as channel:
            listed = await pb_grpc.PatchStub(channel).ListPatches(
                pb.ListPatchesRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
            )
        return {p.state for p in listed.patches if p.patch_id.startswith(f"{strategy}/")}

    async def risk_state(self) -> int:
        async with grpc.aio.insecure_channel(self.inspector.address) as channel:
            got = await rk_grpc.InspectorStub(channel).GetRiskState(
                rk.GetRiskStateRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
            )
        return got.state


def _gateway(directory: Path, redis: str, database: str) -> ServiceProcess:
    log = (directory / "gateway.log").open("w")
    args = [
        "gateway",
        "--port",
        "0",
        "--grpc-port",
        "0",
        "--heartbeat-interval-s",
        "1",
        "--registry-ttl-s",
        "5",
    ]
    env = {TOKEN: TEST_TOKEN, DATABASE_URL: database, REDIS_URL: redis,
           SESSION_SECRET: "client-mesh-session-secret-0123456789abcdef"}  # fmt: skip
    return start_service(args, env=env, stderr=log, timeout_s=60)


@contextlib.asynccontextmanager
async def client_mesh(
    directory: Path, redis_url: str, database_url: str, scopes: Sequence[str], ledger: bool = False
) -> AsyncIterator[ClientMesh]:
    """The mesh, and a key `client` holding `scopes`. Each step starts what it can at once (each
    start waits for its serving line on a thread of its own): the gateway with the database's key,
    then the venue (registering with the gateway), then its followers together."""
    async with contextlib.AsyncExitStack() as stack:
        database = await stack.enter_async_context(new_database(database_url, "clients"))
        redis = await stack.enter_async_context(redis_db(redis_url))
        processes = MeshProcesses(directory, redis, database)
        stack.push_async_callback(processes.stop_all)

        def start_gateway() -> ServiceProcess:  # ended by the stack even when the key fails
            gateway = _gateway(directory, redis, database)
            stack.callback(gateway.terminate)
            return gateway

        gateway, key = await both(start_gateway, functools.partial(new_key, database, "client", scopes))
        processes.env[GATEWAY] = f"127.0.0.1:{gateway.info['grpc_port']}"
        config = sim_config(directory, trades_per_s=5, book_updates_per_s=10, history_s=WARM_HISTORY_S)
        venue = await asyncio.to_thread(processes.start, "venue", "sim", "--config", str(config))
        followers = ("detector", "inspector", "ledger") if ledger else ("detector", "inspector")
        started = await at_once(
            *(
                functools.partial(processes.start, name, *venue_link(name, venue.address))
                for name in followers
            )
        )
        yield ClientMesh(directory, database, redis, gateway, started[0], started[1], key)
