"""The backtest hub as a real process on a real PostgreSQL holding history the real recorder
wrote: a run started over gRPC goes on in a child process, its progress streams to the end, its
results are stored and served; a run can be cancelled; bad options are field violations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from core.env import DATABASE_URL, TOKEN
from core.process import ServiceProcess, start_service
from core.rpc.status import bad_request_violations
from tests.integration.postgres_server import database_url, fresh_database
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN
from tests.integration.test_backtest_cli import SPEC, record
from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.backtest.v1 import backtest_pb2_grpc as bt_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL and processes
__all__ = ["database_url", "fresh_database"]  # the fixtures, for pytest

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
END_NS = SPEC.start_ns + SPEC.steps * SPEC.step_ns
RUN_S = 180


@pytest.fixture
async def hub(fresh_database: str, tmp_path: Path) -> AsyncIterator[bt_grpc.BacktestAsyncStub]:
    await record(fresh_database)
    with (tmp_path / "backtester.log").open("w") as log:
        process: ServiceProcess = start_service(
            ["backtester", "--port", "0", "--metrics-port", "-1"],
            env={TOKEN: TEST_TOKEN, DATABASE_URL: fresh_database}, stderr=log,
        )  # fmt: skip
    try:
        async with grpc.aio.insecure_channel(process.address) as channel:
            yield bt_grpc.BacktestStub(channel)
    finally:
        await asyncio.to_thread(process.terminate)


def options(**changes: object) -> bt.BacktestOptions:
    values: dict[str, object] = {
        "strategies": ["trend"], "symbols": ["BTC/USDT"], "start_ns": SPEC.start_ns, "end_ns": END_NS,
        "sample_s": "60",
    }  # fmt: skip
    values.update(changes)
    return bt.BacktestOptions(**values)  # type: ignore[arg-type]


async def progress_to_end(stub: bt_grpc.BacktestAsyncStub, run_id: str) -> list[bt.Progress]:
    seen: list[bt.Progress] = []
    call = stub.WatchProgress(bt.WatchProgressRequest(run_id=run_id), metadata=AUTH, timeout=RUN_S)
    async for answer in call:
        seen.append(answer.progress)
    return seen


async def test_a_run_streams_its_progress_then_its_results_are_served(hub: bt_grpc.BacktestAsyncStub) -> None:
    strategies = await hub.ListStrategies(bt.ListStrategiesRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    assert {"trend", "mean_reversion", "order_flow"} <= {s.name for s in strategies.strategies}
    started = await hub.StartBacktest(bt.StartBacktestRequest(options=options()), metadata=AUTH, timeout=60)
    seen = await progress_to_end(hub, started.run_id)
    assert seen[0].status == bt.RUN_STATUS_RUNNING and seen[-1].status == bt.RUN_STATUS_DONE, seen[-1]
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    result = await hub.GetResult(
        bt.GetResultRequest(run_id=started.run_id), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    assert result.run.status == bt.RUN_STATUS_DONE and list(result.run.options.strategies) == ["trend"]
    assert (result.run.options.latency, result.run.options.llm) == ("model", "off")  # the defaults
    assert {m.strategy for m in result.metrics} >= {"trend", "total"}
    assert result.fills and result.curves[0].strategy == "total" and result.curves[0].points
    runs = await hub.ListRuns(bt.ListRunsRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    assert [r.run_id for r in runs.runs] == [started.run_id] and runs.runs[0].total.trades >= 0
    # Watching a run that has ended gives its end at once.
    (again,) = await progress_to_end(hub, started.run_id)
    assert again.status == bt.RUN_STATUS_DONE


async def test_a_cancelled_run_ends_cancelled(hub: bt_grpc.BacktestAsyncStub) -> None:
    started = await hub.StartBacktest(bt.StartBacktestRequest(options=options()), metadata=AUTH, timeout=60)
    cancelled = await hub.CancelBacktest(
        bt.CancelBacktestRequest(run_id=started.run_id), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    assert cancelled.cancelled
    seen = await progress_to_end(hub, started.run_id)
    assert seen[-1].status == bt.RUN_STATUS_CANCELLED
    answer = await hub.CancelBacktest(
        bt.CancelBacktestRequest(run_id=started.run_id), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    assert not answer.cancelled  # it has ended


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"strategies": []}, "options.strategies"),
        ({"strategies": ["nope"]}, "options.strategies"),
        ({"end_ns": 0}, "options.end_ns"),
        ({"order_latency_ms": "soon"}, "options.order_latency_ms"),
        ({"symbols": ["DOGE/USDT"]}, "options.symbols"),
        ({"end_ns": SPEC.start_ns}, "options.end_ns"),
        ({"latency": "live"}, "options.latency"),
        ({"latency": "Recorded"}, "options.latency"),
    ],
)
async def test_bad_options_are_field_violations(
    hub: bt_grpc.BacktestAsyncStub, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await hub.StartBacktest(
            bt.StartBacktestRequest(options=options(**changes)), metadata=AUTH, timeout=60
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in [name for name, _ in bad_request_violations(caught.value)]


async def test_an_unknown_run_is_not_found(hub: bt_grpc.BacktestAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await hub.GetResult(bt.GetResultRequest(run_id="0" * 16), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
