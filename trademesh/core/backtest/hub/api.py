"""The hub's gRPC API (trademesh.backtest.v1.Backtest). Bad input is INVALID_ARGUMENT with a
field violation per bad field (trademesh.core.platform.rpc's edge maps trademesh.core.platform.errors); an
unknown run is NOT_FOUND."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Protocol

from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.backtest.v1 import backtest_pb2_grpc as bt_grpc
from trademesh.core.backtest.hub.convert import config_text, result_to_pb, summary_to_pb
from trademesh.core.backtest.hub.runs import RunManager
from trademesh.core.backtest.hub.strategies import StrategyFiles
from trademesh.core.backtest.store import BacktestStore
from trademesh.core.platform.errors import FieldViolation, InvalidArgument, shown
from trademesh.core.platform.rpc.context import Context
from trademesh.core.platform.rpc.server import Service

__all__ = ["SERVICE_NAME", "BacktestServicer", "BacktesterState", "backtest_service"]

SERVICE_NAME = bt.DESCRIPTOR.services_by_name["Backtest"].full_name
_MAX_RUNS_LISTED = 500
_RUN_ID = 64


class BacktesterState(Protocol):
    @property
    def store(self) -> BacktestStore: ...

    @property
    def manager(self) -> RunManager: ...

    strategies: StrategyFiles


def _run_id(value: str) -> str:
    if not value or len(value) > _RUN_ID:
        raise InvalidArgument.field("run_id", f"{shown(value)} is not a run id")
    return value


def _in_options(violation: FieldViolation) -> FieldViolation:
    name = violation.field
    field = name if name.startswith("options.") else f"options.{_OPTION_NAMES.get(name, name)}"
    return FieldViolation(field, violation.description)


# The config file's names that differ from the request's (docs/backtest.md, "Options").
_OPTION_NAMES = {"from": "start_ns", "to": "end_ns"}


class BacktestServicer(bt_grpc.BacktestServicer):
    def __init__(self, state: BacktesterState) -> None:
        self.state = state

    async def StartBacktest(
        self,
        request: bt.StartBacktestRequest,
        context: Context[bt.StartBacktestRequest, bt.StartBacktestResponse],
    ) -> bt.StartBacktestResponse:
        # The strategy files are read and parsed: on a thread, never on the loop that serves.
        text = await asyncio.to_thread(config_text, request.options, self.state.strategies)
        try:
            run_id, notice = await self.state.manager.start(text)
        except InvalidArgument as exc:  # the config file's fields are the request's options'
            raise InvalidArgument([_in_options(v) for v in exc.violations]) from None
        return bt.StartBacktestResponse(run_id=run_id, notice=notice or "")

    async def WatchProgress(
        self,
        request: bt.WatchProgressRequest,
        context: Context[bt.WatchProgressRequest, bt.WatchProgressResponse],
    ) -> AsyncIterator[bt.WatchProgressResponse]:
        async for progress in self.state.manager.watch(_run_id(request.run_id)):
            yield bt.WatchProgressResponse(progress=progress)

    async def GetResult(
        self, request: bt.GetResultRequest, context: Context[bt.GetResultRequest, bt.GetResultResponse]
    ) -> bt.GetResultResponse:
        return result_to_pb(await self.state.store.result(_run_id(request.run_id)))

    async def ListRuns(
        self, request: bt.ListRunsRequest, context: Context[bt.ListRunsRequest, bt.ListRunsResponse]
    ) -> bt.ListRunsResponse:
        if request.limit > _MAX_RUNS_LISTED:
            raise InvalidArgument.field("limit", f"{request.limit} is more than {_MAX_RUNS_LISTED}")
        runs = await self.state.store.runs(request.limit or 50)
        return bt.ListRunsResponse(runs=[summary_to_pb(r) for r in runs])

    async def CancelBacktest(
        self,
        request: bt.CancelBacktestRequest,
        context: Context[bt.CancelBacktestRequest, bt.CancelBacktestResponse],
    ) -> bt.CancelBacktestResponse:
        return bt.CancelBacktestResponse(cancelled=await self.state.manager.cancel(_run_id(request.run_id)))

    async def ListStrategies(
        self,
        request: bt.ListStrategiesRequest,
        context: Context[bt.ListStrategiesRequest, bt.ListStrategiesResponse],
    ) -> bt.ListStrategiesResponse:
        files = await asyncio.to_thread(self.state.strategies.all)  # each file parsed: off the loop
        return bt.ListStrategiesResponse(
            strategies=[
                bt.StrategyInfo(name=f.name, description=f.description, symbols=f.symbols) for f in files
            ]
        )


def backtest_service(state: BacktesterState) -> Service:
    """The Backtest service for trademesh.core.platform.rpc.server.create_server."""
    return Service(SERVICE_NAME, BacktestServicer(state), bt_grpc.add_BacktestServicer_to_server)
