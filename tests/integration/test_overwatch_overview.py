"""Overwatch's overview (StreamOverview, docs/overwatch.md): the mesh at a glance each second,
from a real gateway's registry and the services it lists (the sim, a detector running the example
strategies, an inspector; no ledger here), with Overwatch as a process registering with that
gateway. Every part is checked against what the service itself answers."""

from __future__ import annotations

import contextlib
import itertools
import os
from collections.abc import AsyncIterator

import grpc
import pytest

from tests.integration.client_mesh import AUTH, ClientMesh, client_mesh
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from trademesh.core.platform.config.env import GATEWAY, REDIS_URL, TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.overwatch.v1 import overwatch_pb2_grpc as ow_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["database_url", "redis_url"]  # fixtures


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, redis_url: str, database_url: str
) -> AsyncIterator[tuple[ClientMesh, ServiceProcess]]:
    directory = tmp_path_factory.mktemp("overview")
    async with client_mesh(directory, redis_url, database_url, ["read"]) as services:
        env = {**os.environ, TOKEN: TEST_TOKEN, REDIS_URL: services.redis,
               GATEWAY: f"127.0.0.1:{services.gateway.info['grpc_port']}"}  # fmt: skip
        log = (directory / "overwatch.log").open("w")
        overwatch = start_service(
            ["overwatch", "--port", "0", "--metrics-port", "-1", "--overview-every-s", "0.5"],
            env=env, stderr=log, timeout_s=60,
        )  # fmt: skip
        try:
            yield services, overwatch
        finally:
            overwatch.terminate()


async def _overviews(overwatch: ServiceProcess, count: int) -> list[ow.Overview]:
    async with grpc.aio.insecure_channel(overwatch.address) as channel:
        stub: ow_grpc.OverwatchAsyncStub = ow_grpc.OverwatchStub(channel)
        call = stub.StreamOverview(ow.StreamOverviewRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S * 5)
        found = []
        with contextlib.suppress(grpc.aio.AioRpcError):
            async for message in call:
                found.append(message.overview)
                if len(found) == count:
                    call.cancel()
                    break
    return found


async def test_the_overview_says_the_services_risk_and_strategies_as_they_answer(
    mesh: tuple[ClientMesh, ServiceProcess],
) -> None:
    services, overwatch = mesh

    async def whole() -> ow.Overview | None:  # every service registered with the gateway
        [overview] = await _overviews(overwatch, 1)
        live = {s.name for s in overview.services}
        return overview if {"sim", "detector", "inspector"} <= live and overview.strategies else None

    overview = await until(whole, 60, 0.5, "an overview with the detector's strategies")
    assert overview.unavailable == ["ledger"], overview.unavailable  # none runs: said, not guessed
    assert overview.risk.state == "active" and overview.risk.equity
    names = {s.strategy_id: s for s in overview.strategies}
    assert "trend" in names and names["trend"].state == "active" and names["trend"].patches >= 1
    assert names["trend"].realised_pnl == ""  # the ledger's part is unavailable: left empty
    # The detector's own answer, part for part.
    assert await services.patch_states("trend") and overview.board.as_of_ns > 0


async def test_the_overview_comes_again_at_its_interval(mesh: tuple[ClientMesh, ServiceProcess]) -> None:
    _, overwatch = mesh
    three = await _overviews(overwatch, 3)
    assert len(three) == 3
    gaps = [(b.ts_ns - a.ts_ns) / 1e9 for a, b in itertools.pairwise(three)]
    assert all(gap >= 0.45 for gap in gaps), gaps  # no sooner than its interval (0.5 s)
