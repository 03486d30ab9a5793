"""The backtest hub's request lists (issue 57, item 8), with a real hub process on a real
PostgreSQL holding history the real recorder wrote: a strategy named 10,000 times is one
strategy, started at once, and the hub answers its health checks all the while (each name was
resolved on its loop, every strategy file parsed per name: 1,000 names kept it silent for 25 s,
10,000 for four minutes); a run's lists past their bounds are refused naming the field."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.integration.postgres_server import database_url, new_database
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN
from tests.integration.test_backtest_cli import record
from tests.integration.test_backtester_process import AUTH, options, progress_to_end
from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.backtest.v1 import backtest_pb2_grpc as bt_grpc
from trademesh.core.backtest.hub.convert import MAX_RUN_STRATEGIES, MAX_RUN_SYMBOLS
from trademesh.core.platform.config.env import DATABASE_URL, TOKEN
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.core.platform.service.process import start_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL and processes
__all__ = ["database_url"]  # the fixture, for pytest

# A start's checks (a fresh hub's first imports the engine): 3-5 s on a quiet machine; the 10,000
# names took four minutes of the loop before.
START_S = 90.0
# The most a health check may wait while a start is checked: the loop serves between the start's
# steps (the engine's import and the run's build go on a thread).
HEALTH_S = 3.0


@pytest.fixture(scope="module")
async def address(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A hub's address, on a database of its own holding the history."""
    async with new_database(database_url, "btlists") as url:
        await record(url)
        with (tmp_path_factory.mktemp("hub") / "backtester.log").open("w") as log:
            process = start_service(
                ["backtester", "--port", "0", "--metrics-port", "-1"],
                env={TOKEN: TEST_TOKEN, DATABASE_URL: url}, stderr=log,
            )  # fmt: skip
        try:
            yield process.address
        finally:
            await asyncio.to_thread(process.terminate)


@pytest.fixture
async def channel(address: str) -> AsyncIterator[grpc.aio.Channel]:
    async with grpc.aio.insecure_channel(address) as opened:
        yield opened


class Health:
    """Health checks of the hub, one after another, each under HEALTH_S; the slowest answer."""

    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.stub = health_pb2_grpc.HealthStub(channel)
        self.slowest_s = 0.0
        self.answered = 0

    async def probe(self) -> None:
        while True:
            began = time.monotonic()
            answer = await self.stub.Check(health_pb2.HealthCheckRequest(), timeout=HEALTH_S)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING
            self.slowest_s = max(self.slowest_s, time.monotonic() - began)
            self.answered += 1
            await asyncio.sleep(0.05)


async def test_a_strategy_named_ten_thousand_times_is_one_and_the_hub_answers_meanwhile(
    channel: grpc.aio.Channel,
) -> None:
    hub: bt_grpc.BacktestAsyncStub = bt_grpc.BacktestStub(channel)
    health = Health(channel)
    probing = asyncio.create_task(health.probe())
    try:
        began = time.monotonic()
        request = bt.StartBacktestRequest(options=options(strategies=["trend"] * 10_000))
        started = await hub.StartBacktest(request, metadata=AUTH, timeout=START_S)
        took_s = time.monotonic() - began
        assert not probing.done(), probing  # a health check failed or waited past HEALTH_S
    finally:
        probing.cancel()
    assert health.answered > 0 and health.slowest_s < HEALTH_S, (health.slowest_s, took_s)
    result = await hub.GetResult(
        bt.GetResultRequest(run_id=started.run_id), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    assert list(result.run.options.strategies) == ["trend"]
    await hub.CancelBacktest(
        bt.CancelBacktestRequest(run_id=started.run_id), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    await progress_to_end(hub, started.run_id)


@pytest.mark.parametrize(
    ("field", "values", "limit"),
    [
        ("strategies", [f"s{n}" for n in range(MAX_RUN_STRATEGIES + 1)], MAX_RUN_STRATEGIES),
        ("symbols", [f"C{n}/USDT" for n in range(MAX_RUN_SYMBOLS + 1)], MAX_RUN_SYMBOLS),
    ],
)
async def test_a_run_past_a_list_bound_is_refused_naming_the_field(
    channel: grpc.aio.Channel, field: str, values: list[str], limit: int
) -> None:
    hub: bt_grpc.BacktestAsyncStub = bt_grpc.BacktestStub(channel)
    request = bt.StartBacktestRequest(options=options(**{field: values}))
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await hub.StartBacktest(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(named, why)] = bad_request_violations(refused.value)
    assert named == f"options.{field}" and f"at most {limit}" in why, why
