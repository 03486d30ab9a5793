"""The backtest hub as a real process on a real PostgreSQL holding history the real recorder
wrote: a run started over gRPC goes on in a child process, its progress streams to the end, its
results are stored and served; a run can be cancelled; bad options are field violations."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from tests.integration.postgres_server import database_url, new_database
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN
from tests.integration.test_backtest_cli import SPEC, record
from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.backtest.v1 import backtest_pb2_grpc as bt_grpc
from trademesh.core.platform.config.env import DATABASE_URL, TOKEN
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.core.platform.service.process import ServiceProcess, start_service

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL and processes
__all__ = ["database_url"]  # the fixture, for pytest

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
END_NS = SPEC.start_ns + SPEC.steps * SPEC.step_ns
RUN_S = 180
# A StartBacktest: the options' model checked, then (a fresh hub's first) the run server started,
# importing the run's modules. 3-5 s on a quiet machine; a whole run's load on a slow one (load
# 25-30, CPython at a third of its usual speed) took one past 60.
START_S = 150
ROOM = 2  # the shared hub's --max-runs


@pytest.fixture(scope="module")
async def history(database_url: str) -> AsyncIterator[str]:
    """The walk as the real recorder wrote it (its tables made, then the events), once: each
    hub's database is a copy, made in a tenth of a second where writing it took seconds."""
    async with new_database(database_url, "bthistory") as url:
        await record(url)
        yield url


@pytest.fixture
async def database(database_url: str, history: str) -> AsyncIterator[str]:
    """This test's own database holding the history: no other test's runs in it."""
    async with new_database(database_url, "rec", copy_of=history) as url:
        yield url


@dataclass
class Hub:
    """The module's hub and the runs its tests started on it (its database holds no other)."""

    stub: bt_grpc.BacktestAsyncStub
    started: set[str] = field(default_factory=set)

    async def start(self, **changes: object) -> bt.StartBacktestResponse:
        answer = await self.stub.StartBacktest(
            bt.StartBacktestRequest(options=options(**changes)), metadata=AUTH, timeout=START_S
        )
        self.started.add(answer.run_id)
        return answer


@pytest.fixture(scope="module")
async def shared_hub(
    database_url: str, history: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Hub]:
    """One hub (room for two runs) on one copy of the history for the module's tests but the
    one of two hubs: each hub's start, and the engine it imports at its first run's check,
    were paid per test (seven hubs, 216 s of a loaded suite's run for the module)."""
    async with (
        new_database(database_url, "rec", copy_of=history) as url,
        _hub_stub(url, tmp_path_factory.mktemp("hub"), "--max-runs", str(ROOM)) as stub,
    ):
        yield Hub(stub)


@pytest.fixture
async def hub(shared_hub: Hub) -> AsyncIterator[Hub]:
    """The shared hub, with no run going on when the test starts or ends: a run a failing test
    left going is cancelled and waited for, so it takes no other test's room."""
    yield shared_hub
    runs = await shared_hub.stub.ListRuns(bt.ListRunsRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    for run in runs.runs:
        if run.status == bt.RUN_STATUS_RUNNING:
            await shared_hub.stub.CancelBacktest(
                bt.CancelBacktestRequest(run_id=run.run_id), metadata=AUTH, timeout=CALL_TIMEOUT_S
            )
            await progress_to_end(shared_hub.stub, run.run_id)


@contextlib.asynccontextmanager
async def _hub_stub(database: str, directory: Path, *args: str) -> AsyncIterator[bt_grpc.BacktestAsyncStub]:
    with (directory / "backtester.log").open("w") as log:
        process: ServiceProcess = start_service(
            ["backtester", "--port", "0", "--metrics-port", "-1", *args],
            env={TOKEN: TEST_TOKEN, DATABASE_URL: database}, stderr=log,
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


async def test_a_run_streams_its_progress_then_its_results_are_served(hub: Hub) -> None:
    stub = hub.stub
    strategies = await stub.ListStrategies(bt.ListStrategiesRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    assert {"trend", "mean_reversion", "order_flow"} <= {s.name for s in strategies.strategies}
    started = await hub.start()
    seen = await progress_to_end(stub, started.run_id)
    assert seen[0].status == bt.RUN_STATUS_RUNNING and seen[-1].status == bt.RUN_STATUS_DONE, seen[-1]
    fractions = [p.fraction for p in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    result = await stub.GetResult(
        bt.GetResultRequest(run_id=started.run_id), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    assert result.run.status == bt.RUN_STATUS_DONE and list(result.run.options.strategies) == ["trend"]
    assert (result.run.options.latency, result.run.options.llm) == ("model", "off")  # the defaults
    assert {m.strategy for m in result.metrics} >= {"trend", "total"}
    assert result.fills and result.curves[0].strategy == "total" and result.curves[0].points
    # Listed among the runs of the hub's database: every run the module's tests started, no other.
    runs = await stub.ListRuns(bt.ListRunsRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    listed = {r.run_id: r for r in runs.runs}
    assert set(listed) == hub.started and listed[started.run_id].total.trades >= 0
    # Watching a run that has ended gives its end at once.
    (again,) = await progress_to_end(stub, started.run_id)
    assert again.status == bt.RUN_STATUS_DONE


async def test_a_cancelled_run_ends_cancelled(hub: Hub) -> None:
    started = await hub.start(sample_s="59")  # each test's options its own: a run of its own
    cancelled = await hub.stub.CancelBacktest(
        bt.CancelBacktestRequest(run_id=started.run_id), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    assert cancelled.cancelled
    seen = await progress_to_end(hub.stub, started.run_id)
    assert seen[-1].status == bt.RUN_STATUS_CANCELLED
    answer = await hub.stub.CancelBacktest(
        bt.CancelBacktestRequest(run_id=started.run_id), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    assert not answer.cancelled  # it has ended


async def test_starts_at_once_take_no_more_runs_than_the_hub_has_room_for(hub: Hub) -> None:
    """The room (--max-runs) was checked before the start's awaits and taken after them: starts
    at once all passed the check, and each went on as a run."""
    answers = await asyncio.gather(
        *(hub.start(sample_s=str(70 + i)) for i in range(ROOM + 3)), return_exceptions=True
    )
    started = [a for a in answers if isinstance(a, bt.StartBacktestResponse)]
    refused = [a for a in answers if isinstance(a, grpc.aio.AioRpcError)]
    assert len(started) == ROOM, answers
    assert [e.code() for e in refused] == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 3, refused
    for run in started:  # the room given back before the next test
        await hub.stub.CancelBacktest(bt.CancelBacktestRequest(run_id=run.run_id), metadata=AUTH, timeout=10)
        await progress_to_end(hub.stub, run.run_id)


async def test_a_run_started_again_beside_another_runs_its_own_options(hub: Hub) -> None:
    """A run's options went to a file numbered by the runs the hub knew: a run started again
    added none, so the next new run wrote over the file the run started again had not yet read,
    and its child ran the other's options (its own run left running in the store forever)."""
    short: dict[str, object] = {"end_ns": SPEC.start_ns + 120 * 1_000_000_000}
    again = (await hub.start(**short)).run_id
    await progress_to_end(hub.stub, again)
    runs = [(await hub.start(**changes)).run_id for changes in (short, {"sample_s": "30", **short})]
    assert runs[0] == again != runs[1]
    for run in runs:
        assert (await progress_to_end(hub.stub, run))[-1].status == bt.RUN_STATUS_DONE
        result = await hub.stub.GetResult(
            bt.GetResultRequest(run_id=run), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
        assert result.run.status == bt.RUN_STATUS_DONE, (run, result.run)


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
        ({"bars": "2m"}, "options.bars"),  # not a timeframe the mesh knows
        # A character past U+FFFF, or a control character: the option's own field, never the
        # hub's file (issue 37, item 24).
        ({"timeframe": "1s\U0001f600"}, "options.timeframe"),
        ({"llm": "off\U0001f600"}, "options.llm"),
        ({"starting_equity": "1\x01"}, "options.starting_equity"),
    ],
)
async def test_bad_options_are_field_violations(hub: Hub, changes: dict[str, object], field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await hub.start(**changes)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = bad_request_violations(caught.value)
    assert field in [name for name, _ in violations], violations
    assert not any("backtester-" in why or ".toml" in why for _, why in violations), violations


async def test_an_unknown_run_is_not_found(hub: Hub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await hub.stub.GetResult(bt.GetResultRequest(run_id="0" * 16), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND


YEAR_NS = 365 * 24 * 3600 * 10**9
SECOND_NS = 10**9


async def test_a_range_past_the_recorded_history_is_cut_to_it_with_a_notice(hub: Hub) -> None:
    """1970-2070 over 20 minutes of history ran a century of ticks (issue 37, item 22): the
    range runs cut to the whole seconds around the recorded events, and the answer says so."""
    started = await hub.start(start_ns=SECOND_NS, end_ns=100 * YEAR_NS, sample_s="58")
    assert "cut to the recorded history" in started.notice, started.notice
    seen = await progress_to_end(hub.stub, started.run_id)
    assert seen[-1].status == bt.RUN_STATUS_DONE, seen[-1]
    result = await hub.stub.GetResult(
        bt.GetResultRequest(run_id=started.run_id), metadata=AUTH, timeout=CALL_TIMEOUT_S
    )
    ran = result.run.options
    assert SPEC.start_ns <= ran.start_ns < ran.end_ns <= END_NS, (ran.start_ns, ran.end_ns)
    assert ran.start_ns % SECOND_NS == 0 and ran.end_ns % SECOND_NS == 0


async def test_a_range_the_recorded_history_holds_nothing_of_is_refused(hub: Hub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await hub.start(start_ns=END_NS + 3600 * SECOND_NS, end_ns=END_NS + 7200 * SECOND_NS)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [(field, why)] = bad_request_violations(caught.value)
    assert field == "options.start_ns" and "holds no event" in why, why


def _children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # gone meanwhile
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


async def test_a_second_hub_on_the_same_database_leaves_the_first_hubs_run_alone(
    database: str, tmp_path: Path
) -> None:
    """A hub starting marks failed the runs a stopped hub left running; a hub sharing the
    database marked the other hub's live run FAILED (issue 37, item 22). The first hub's run
    is held still (its child stopped) while the second hub starts: it stays running, then
    ends done."""
    first = _hub(database, tmp_path / "first.log")
    second: ServiceProcess | None = None
    child: int | None = None
    try:
        async with grpc.aio.insecure_channel(first.address) as channel:
            stub = bt_grpc.BacktestStub(channel)
            started = await stub.StartBacktest(
                bt.StartBacktestRequest(options=options()), metadata=AUTH, timeout=START_S
            )
            # The run's process: forked from the hub's run server (its child), not the hub's own.
            [child] = [run for server in _children(first.process.pid) for run in _children(server)]
            os.kill(child, signal.SIGSTOP)
            second = _hub(database, tmp_path / "second.log")  # ready: its start-up is done
            async with grpc.aio.insecure_channel(second.address) as other:
                runs = await bt_grpc.BacktestStub(other).ListRuns(
                    bt.ListRunsRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
                )
            assert [(r.run_id, r.status) for r in runs.runs] == [(started.run_id, bt.RUN_STATUS_RUNNING)]
            os.kill(child, signal.SIGCONT)
            child = None
            seen = await progress_to_end(stub, started.run_id)
            assert seen[-1].status == bt.RUN_STATUS_DONE, seen[-1]
    finally:
        if child is not None:
            os.kill(child, signal.SIGCONT)
        for process in (second, first):
            if process is not None:
                await asyncio.to_thread(process.terminate)


def _hub(database: str, log_path: Path) -> ServiceProcess:
    with log_path.open("w") as log:
        return start_service(
            ["backtester", "--port", "0", "--metrics-port", "-1"],
            env={TOKEN: TEST_TOKEN, DATABASE_URL: database}, stderr=log,
        )  # fmt: skip
