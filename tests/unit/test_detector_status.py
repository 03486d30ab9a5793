"""The strategy status the detector streams (Patch/StreamStrategyStatus, served by a real gRPC
server over the shell's real PatchRunner): a module slower than its budget is reported once, as a
timing over its budget, not also as an error; and only while it is slow (one-second windows)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field

import grpc
import pytest

from tests.detector_support import BASE_NS, SlowTimer, market_trade
from trademesh.core.detector.api import PatchActivity, patch_service
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine, EngineConfig
from trademesh.core.detector.engine.outputs import EmittedSignal, Evaluation
from trademesh.core.detector.patch_journal import PatchJournal, Pulse
from trademesh.core.detector.runner import PatchRunner
from trademesh.core.platform.rpc.server import ServerOptions, create_server
from trademesh.patch.v1 import patch_pb2 as pb
from trademesh.patch.v1 import patch_pb2_grpc as pb_grpc

MS = 1_000_000
NOW = BASE_NS + 60 * 1_000_000_000
MODULES = ["emit", "f", "score", "t", "up"]


class Clock:
    """The runner's monotonic clock (its one-second windows), moved by the test; its wall
    clock moves with it."""

    def __init__(self) -> None:
        self.s = 1000.0

    def __call__(self) -> float:
        return self.s


@dataclass
class State:
    """The shell's side (trademesh.core.detector.app.Detector's), around the real PatchRunner."""

    engine: Engine
    runner: PatchRunner
    journal: PatchJournal = field(default_factory=PatchJournal)
    recent_signals: deque[EmittedSignal] = field(default_factory=lambda: deque(maxlen=10))

    @property
    def pulse(self) -> Pulse:
        return self.journal.pulse

    def now_ns(self) -> int:
        return NOW

    def status(self) -> Mapping[str, PatchActivity]:
        return {patch_id: stats.activity() for patch_id, stats in self.runner.stats.items()}

    async def warm_up(self, patch_id: str) -> None:
        return None

    async def check_market(self, venue: str, symbol: str) -> None:
        return None


def _engine() -> Engine:
    core = Engine(Catalog.builtin(), SlowTimer(), EngineConfig(module_budget_ns=1 * MS))
    patch = core.create_patch("p", "s", BASE_NS, venue="v", symbol="BTC-USDT")
    modules: list[tuple[str, str, dict[str, object]]] = [
        ("t", "trades", {}),
        ("f", "trade_fields", {}),
        ("up", "compare", {"op": ">", "value": 0.0}),
        ("score", "weighted_score", {"threshold": 1.0}),
        ("emit", "signal", {}),
    ]
    for module_id, type_name, params in modules:
        patch.add_module(module_id, type_name, params, BASE_NS)
    for cable in [
        "t.trade -> f.trade",
        "f.price -> up.a",
        "up.out -> score.rule_1",
        "score.signal -> emit.signal",
    ]:
        patch.connect(cable, BASE_NS)
    patch.activate(BASE_NS)
    return core


@dataclass
class Running:
    runner: PatchRunner
    clock: Clock
    emitted: list[Evaluation]
    stub: pb_grpc.PatchAsyncStub


@pytest.fixture
async def running() -> AsyncIterator[Running]:
    emitted: list[Evaluation] = []

    async def emit(evaluation: Evaluation) -> None:
        emitted.append(evaluation)

    clock = Clock()
    core = _engine()
    wall = lambda: NOW + int((clock.s - 1000.0) * 1e9)  # noqa: E731
    runner = PatchRunner(core, emit, clock=wall, tick_hz=100.0, monotonic=clock)
    served = await create_server([patch_service(State(core, runner))], ServerOptions())
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{served.port}") as channel:
            yield Running(runner, clock, emitted, pb_grpc.PatchStub(channel))
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
        await served.server.stop(None)


async def _status(stub: pb_grpc.PatchAsyncStub) -> pb.StrategyStatus:
    call = stub.StreamStrategyStatus(pb.StreamStrategyStatusRequest(patch_ids=["p"]), timeout=5)
    try:
        reply = await call.read()
    finally:
        call.cancel()
    assert isinstance(reply, pb.StreamStrategyStatusResponse)
    (status,) = reply.statuses
    return status


async def _roll(running: Running) -> None:
    """A second and a half pass on the runner's clocks; the ticks they bring (emitted, then the
    window is closed in the same step of the loop) close the window."""
    ticked = len(running.emitted)
    running.clock.s += 1.5
    for _ in range(200):
        await asyncio.sleep(0.01)
        if len(running.emitted) > ticked:
            return
    raise AssertionError("the runner did not tick")


async def test_a_slow_module_is_reported_once_as_a_timing_over_its_budget(running: Running) -> None:
    running.runner.deliver("v", [market_trade(NOW - 5 * MS, 100.0, trade_id="1")])
    for _ in range(200):
        if running.emitted:
            break
        await asyncio.sleep(0.01)
    assert running.emitted and running.emitted[0].slow, "every step took 3 ms against a 1 ms budget"
    await _roll(running)

    status = await _status(running.stub)

    named = [t.module_id for t in status.timings] + [e.module_id for e in status.errors]
    assert sorted(named) == MODULES, f"each slow module once: {named}"
    assert list(status.errors) == []
    for timing in status.timings:
        assert timing.over_budget
        assert timing.mean_us == pytest.approx(3000.0)
        assert timing.max_us == pytest.approx(3000.0)


async def test_a_module_no_longer_slow_leaves_the_status_after_a_quiet_window(running: Running) -> None:
    running.runner.deliver("v", [market_trade(NOW - 5 * MS, 100.0, trade_id="1")])
    for _ in range(200):
        if running.emitted:
            break
        await asyncio.sleep(0.01)
    await _roll(running)
    assert len((await _status(running.stub)).timings) == len(MODULES)

    await _roll(running)  # a window with no evaluation, so no slow step

    assert list((await _status(running.stub)).timings) == []
