"""Overwatch's overview gathered once for every StreamOverview stream (issue 57, item 11): 200
subscribers cost about one gathering per --overview-every-s, counted by Overwatch's own
`trademesh_overwatch_overview_gatherings_total`, where each stream gathered for itself (200 a
period, 0.8 of a core); the gathering stops with the last subscriber. Real processes: a gateway
(the registry Overwatch reads the mesh from) and Overwatch, on a real Redis and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import grpc
import pytest

from tests.integration.gateway_support import Processes, module_database
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import TEST_TOKEN, metric_samples, metrics_page, until
from trademesh.core.platform.config.env import GATEWAY, REDIS_URL, TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.overwatch.v1 import overwatch_pb2_grpc as ow_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]
__all__ = ["database_url", "module_database", "redis_url"]  # fixtures

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
EVERY_S = 0.5
SUBSCRIBERS = 200
GATHERINGS = "trademesh_overwatch_overview_gatherings_total"
LISTENERS = "trademesh_overwatch_overview_listeners"


@pytest.fixture(scope="module")
async def overwatch(
    tmp_path_factory: pytest.TempPathFactory, module_database: str, redis_url: str
) -> AsyncIterator[ServiceProcess]:
    directory = tmp_path_factory.mktemp("overview-feed")
    processes = Processes(directory, module_database)
    async with redis_db(redis_url) as bus:
        try:
            gateway = await asyncio.to_thread(processes.gateway)
            env = {**os.environ, TOKEN: TEST_TOKEN, REDIS_URL: bus, GATEWAY: gateway.grpc_address}
            with (directory / "overwatch.log").open("w") as log:
                process = start_service(
                    ["overwatch", "--port", "0", "--metrics-port", "0", "--overview-every-s", str(EVERY_S)],
                    env=env, stderr=log, timeout_s=60,
                )  # fmt: skip
            try:
                yield process
            finally:
                await asyncio.to_thread(process.terminate)
        finally:
            await processes.stop_all()


async def _metric(process: ServiceProcess, name: str) -> float:
    samples = metric_samples(await metrics_page(int(process.info["metrics_port"])), name)
    return samples.get("", 0.0)


@dataclass
class Streams:
    """StreamOverview calls read on one channel: the overviews each has received."""

    received: list[int] = field(default_factory=list)
    newest_ns: int = 0

    async def read(self, stub: ow_grpc.OverwatchAsyncStub, n: int) -> None:
        async for message in stub.StreamOverview(ow.StreamOverviewRequest(), metadata=AUTH):
            self.received[n] += 1
            self.newest_ns = max(self.newest_ns, message.overview.ts_ns)

    async def all_past(self, counts: list[int], more: int) -> bool | None:
        return (
            True if all(now >= then + more for now, then in zip(self.received, counts, strict=True)) else None
        )


async def test_two_hundred_subscribers_share_one_gathering_each_period(overwatch: ServiceProcess) -> None:
    streams = Streams([0] * SUBSCRIBERS)
    async with grpc.aio.insecure_channel(overwatch.address) as channel:
        stub: ow_grpc.OverwatchAsyncStub = ow_grpc.OverwatchStub(channel)
        tasks = [asyncio.create_task(streams.read(stub, n)) for n in range(SUBSCRIBERS)]
        try:
            await until(
                lambda: streams.all_past([0] * SUBSCRIBERS, 1), 60, what="each stream's first overview"
            )
            assert not any(task.done() for task in tasks), [t for t in tasks if t.done()][:1]
            before, counts, began = (
                await _metric(overwatch, GATHERINGS),
                list(streams.received),
                time.monotonic(),
            )
            # Every stream gets newer overviews: each period's one, whoever else listens.
            await until(lambda: streams.all_past(counts, 4), 30, what="four more overviews on every stream")
            gathered, elapsed = await _metric(overwatch, GATHERINGS) - before, time.monotonic() - began
            assert await _metric(overwatch, LISTENERS) == SUBSCRIBERS
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    # About one gathering a period (one more for the reads' edges), not one per subscriber a period.
    assert 4 <= gathered <= elapsed / EVERY_S + 2, (gathered, elapsed)

    async def nobody_listens() -> bool | None:
        return True if await _metric(overwatch, LISTENERS) == 0 else None

    await until(nobody_listens, 15, what="every stream's end seen by Overwatch")
    stopped = await _metric(overwatch, GATHERINGS)
    watched_until = time.monotonic() + 3 * EVERY_S
    while time.monotonic() < watched_until:  # nobody listens: no gathering for three periods
        assert await _metric(overwatch, GATHERINGS) <= stopped + 1  # one in flight when the last left
        await asyncio.sleep(0.1)
