"""Text PostgreSQL cannot store, and read keys past what a timestamp holds, sent to the real
services that store text (issue 37, items 18 and 19): a gateway, a sim, a detector, a ledger,
an advisor and the backtest hub, each its own process on one database and one bus.

A NUL in any string of any request is INVALID_ARGUMENT naming the field, at every service's
edge; one the request's own text does not hold (a TOML escape in a strategy file) is refused
where the file is read. A patch refused so leaves the detector saving every later change. The
ledger answers GetPnl to the end of time and a trace of a NUL id without INTERNAL, and no
service logs a traceback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest

from tests.integration.gateway_support import Gateway, Processes, at_once
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from trademesh.advisor.v1 import service_pb2 as adv
from trademesh.advisor.v1 import service_pb2_grpc as adv_grpc
from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.backtest.v1 import backtest_pb2_grpc as bt_grpc
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.ledger.v1 import ledger_pb2_grpc as lg_grpc
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.patch.v1 import patch_pb2_grpc as pb_grpc
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.registry.v1 import registry_pb2_grpc as reg_grpc
from trademesh.signal.v1 import signal_pb2 as sig

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # six processes
__all__ = ["database_url", "redis_url"]  # fixtures

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
INT64_MAX = 2**63 - 1
TREND = Path("trademesh/core/detector/strategies/trend.toml").read_text()
WAIT_S = 60.0


@dataclass
class Mesh:
    processes: Processes
    gateway: Gateway
    detector: ServiceProcess
    ledger: ServiceProcess
    advisor: ServiceProcess
    backtester: ServiceProcess
    database: str
    channels: dict[str, grpc.aio.Channel]

    def channel(self, name: str) -> grpc.aio.Channel:
        if name not in self.channels:
            address = self.gateway.grpc_address if name == "gateway" else getattr(self, name).address
            self.channels[name] = grpc.aio.insecure_channel(address)
        return self.channels[name]

    def logs(self) -> str:
        return "".join(path.read_text() for path in self.processes.directory.glob("*.log"))


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> AsyncIterator[Mesh]:
    directory = tmp_path_factory.mktemp("unstorable")
    async with new_database(database_url, "unstorable") as database, redis_db(redis_url) as bus:
        processes = Processes(directory, database)
        channels: dict[str, grpc.aio.Channel] = {}
        try:
            gateway = processes.gateway()
            sim = processes.sim(gateway)
            venue = ("--venue", f"sim={sim.address}")
            stores = ("--database-url", database)
            models = ("--model-dir", str(directory / "models"))

            def service(name: str, *args: str) -> Callable[[], ServiceProcess]:
                return lambda: processes.mesh_service(gateway, name, *args, *stores, redis_url=bus)

            detector, ledger, advisor, backtester = await at_once(
                service("detector", *venue), service("ledger", *venue), service("advisor", *venue, *models),
                service("backtester"),
            )  # fmt: skip
            yield Mesh(processes, gateway, detector, ledger, advisor, backtester, database, channels)
        finally:
            for channel in channels.values():
                await channel.close()
            await processes.stop_all()


Call = Callable[[Mesh], Awaitable[Any]]


def _patch(mesh: Mesh) -> pb_grpc.PatchAsyncStub:
    return pb_grpc.PatchStub(mesh.channel("detector"))


def _ledger(mesh: Mesh) -> lg_grpc.LedgerAsyncStub:
    return lg_grpc.LedgerStub(mesh.channel("ledger"))


def _signal(**fields: Any) -> sig.Signal:
    values: dict[str, Any] = {
        "venue": "sim", "symbol": "BTC/USDT", "direction": sig.DIRECTION_LONG, "conviction": "0.8",
        "score": "2", "threshold": "1", "strategy_id": "trend",
    }  # fmt: skip
    values.update(fields)
    return sig.Signal(**values)


def _options(**fields: Any) -> bt.BacktestOptions:
    values: dict[str, Any] = {
        "strategies": ["trend"], "symbols": ["BTC/USDT"], "start_ns": 1_700_000_000 * 10**9,
        "end_ns": 1_700_000_060 * 10**9,
    }  # fmt: skip
    values.update(fields)
    return bt.BacktestOptions(**values)


CASES: list[tuple[str, Call, str]] = [
    (
        "detector: a patch's name",
        lambda m: _patch(m).CreatePatch(
            pb.CreatePatchRequest(patch_id="nul-name", name="Break\x00out"),
            metadata=AUTH,
            timeout=CALL_TIMEOUT_S,
        ),
        "name",
    ),
    (
        "detector: a module's text parameter",
        lambda m: _patch(m).AddModule(
            pb.AddModuleRequest(
                patch_id="nul-name",
                module_id="c",
                type="compare",
                params={"op": pb.ParamValue(text_value=">\x00")},
            ),
            metadata=AUTH,
            timeout=CALL_TIMEOUT_S,
        ),
        "params['op'].text_value",
    ),
    (
        "detector: a strategy file's escaped NUL",
        lambda m: _patch(m).CreatePatch(
            pb.CreatePatchRequest(
                strategy_toml=TREND.replace('description = "', 'description = "\\u0000', 1)
            ),
            metadata=AUTH,
            timeout=CALL_TIMEOUT_S,
        ),
        "strategy_toml.description",
    ),
    (
        "ledger: a trace id",
        lambda m: _ledger(m).Trace(lg.TraceRequest(id="fill\x00"), metadata=AUTH, timeout=CALL_TIMEOUT_S),
        "id",
    ),
    (
        "ledger: a strategy filter",
        lambda m: _ledger(m).GetPnl(
            lg.GetPnlRequest(strategy_id="t\x00"), metadata=AUTH, timeout=CALL_TIMEOUT_S
        ),
        "strategy_id",
    ),
    (
        "advisor: a published signal's strategy",
        lambda m: adv_grpc.AdvisorStub(m.channel("advisor")).Decide(
            adv.DecideRequest(signal=_signal(strategy_id="tr\x00end"), publish=True),
            metadata=AUTH,
            timeout=CALL_TIMEOUT_S,
        ),
        "signal.strategy_id",
    ),
    (
        "backtester: a run's venue",
        lambda m: bt_grpc.BacktestStub(m.channel("backtester")).StartBacktest(
            bt.StartBacktestRequest(options=_options(venue="s\x00m")), metadata=AUTH, timeout=60
        ),
        "options.venue",
    ),
    (
        "gateway: a registered name",
        lambda m: reg_grpc.RegistryStub(m.channel("gateway")).Register(
            reg.RegisterRequest(
                name="app\x00", kind=reg.KIND_CORE, address="127.0.0.1:1", services=["x.v1.X"]
            ),
            metadata=AUTH,
            timeout=CALL_TIMEOUT_S,
        ),
        "name",
    ),
]


@pytest.mark.parametrize(("call", "field"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
async def test_a_nul_in_text_a_service_would_store_is_invalid_argument_naming_the_field(
    mesh: Mesh, call: Call, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call(mesh)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, caught.value.details()
    assert [name for name, _ in bad_request_violations(caught.value)] == [field]
    assert "Traceback" not in mesh.logs()


async def _stored_patches(database: str) -> set[str]:
    connection = await asyncpg.connect(database)
    try:
        return {row["patch_id"] for row in await connection.fetch("SELECT patch_id FROM detector_patches")}
    finally:
        await connection.close()


async def test_a_patch_refused_for_its_text_leaves_every_later_change_saved(mesh: Mesh) -> None:
    stub = _patch(mesh)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreatePatch(
            pb.CreatePatchRequest(patch_id="wedge", name="a\x00b"), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    for patch_id in ("after-1", "after-2"):
        await stub.CreatePatch(
            pb.CreatePatchRequest(patch_id=patch_id, name="fine"), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
    await stub.AddModule(
        pb.AddModuleRequest(patch_id="after-1", module_id="t", type="trades"),
        metadata=AUTH,
        timeout=CALL_TIMEOUT_S,
    )

    async def saved() -> set[str] | None:
        found = await _stored_patches(mesh.database)
        return found if {"after-1", "after-2"} <= found else None

    assert "wedge" not in await until(saved, WAIT_S, what="the later patches saved")


@pytest.mark.parametrize(
    "request_",
    [
        lg.GetPnlRequest(until_ns=INT64_MAX),
        lg.GetPnlRequest(since_ns=INT64_MAX - 1, until_ns=INT64_MAX),
        lg.GetPnlRequest(since_ns=1, until_ns=INT64_MAX, bucket_ns=INT64_MAX),
        lg.GetPnlRequest(since_ns=INT64_MAX),
    ],
    ids=["until the end", "the last nanosecond", "one bucket", "since the end"],
)
async def test_pnl_to_the_end_of_time_is_answered_without_internal(
    mesh: Mesh, request_: lg.GetPnlRequest
) -> None:
    try:
        answer = await _ledger(mesh).GetPnl(request_, metadata=AUTH, timeout=CALL_TIMEOUT_S)
    except grpc.aio.AioRpcError as exc:
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, (exc.code(), exc.details())
        assert bad_request_violations(exc), exc.details()
    else:
        assert not answer.strategies  # no books yet
    assert "Traceback" not in mesh.logs()


@pytest.mark.parametrize(
    "request_",
    [
        lg.ListTransfersRequest(until_ns=INT64_MAX),
        lg.ListTransfersRequest(since_ns=INT64_MAX),
        lg.ListTransfersRequest(since_ns=INT64_MAX - 1, until_ns=INT64_MAX, newest_first=True),
    ],
    ids=["until the end", "since the end", "the last nanosecond"],
)
async def test_transfers_to_the_end_of_time_are_answered_without_internal(
    mesh: Mesh, request_: lg.ListTransfersRequest
) -> None:
    answer = await _ledger(mesh).ListTransfers(request_, metadata=AUTH, timeout=CALL_TIMEOUT_S)
    assert all(t.ts_ns < INT64_MAX for t in answer.transfers)
    assert "Traceback" not in mesh.logs()
