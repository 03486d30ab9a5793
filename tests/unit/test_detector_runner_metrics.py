"""The shell's metrics: each timestamp released observes its hot-path latency (venue stamp of
its newest and oldest events, and the feed's receipt, to the end of the evaluation) and counts
the events fed, the evaluations and the signals."""

from __future__ import annotations

import asyncio

import pytest
from prometheus_client import REGISTRY

from tests.detector_support import BASE_NS, SlowTimer, engine, market_trade
from trademesh.core.detector.engine.catalog import Catalog
from trademesh.core.detector.engine.engine import Engine, EngineConfig
from trademesh.core.detector.engine.outputs import Evaluation
from trademesh.core.detector.runner import PatchRunner

MS = 1_000_000
NOW = BASE_NS + 60 * 1_000_000_000


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def _samples() -> dict[str, float]:
    newest, oldest = {"event": "newest"}, {"event": "oldest"}
    return {
        "newest_count": _sample("trademesh_detector_hot_path_seconds_count", newest),
        "newest_sum": _sample("trademesh_detector_hot_path_seconds_sum", newest),
        "oldest_sum": _sample("trademesh_detector_hot_path_seconds_sum", oldest),
        "processing_count": _sample("trademesh_detector_processing_seconds_count"),
        "processing_sum": _sample("trademesh_detector_processing_seconds_sum"),
        "events": _sample("trademesh_detector_events_total"),
        "evaluations": _sample("trademesh_detector_evaluations_total"),
        "signals": _sample("trademesh_detector_signals_total"),
        "slow_steps": _sample("trademesh_detector_slow_module_steps_total"),
    }


def _runner(
    emitted: list[Evaluation],
    hold_ns: int = 0,
    tick_hz: float = 10.0,
    signaled: asyncio.Event | None = None,
    core: Engine | None = None,
) -> PatchRunner:
    """A patch that signals on the first trade with a positive price; the clock stands still."""
    core = engine() if core is None else core
    patch = core.create_patch("p", "s", BASE_NS, venue="v", symbol="BTC-USDT")
    patch.add_module("t", "trades", {}, BASE_NS)
    patch.add_module("f", "trade_fields", {}, BASE_NS)
    patch.add_module("up", "compare", {"op": ">", "value": 0.0}, BASE_NS)
    patch.add_module("score", "weighted_score", {"threshold": 1.0}, BASE_NS)
    patch.add_module("emit", "signal", {}, BASE_NS)
    for cable in (
        "t.trade -> f.trade",
        "f.price -> up.a",
        "up.out -> score.rule_1",
        "score.signal -> emit.signal",
    ):
        patch.connect(cable, BASE_NS)
    patch.activate(BASE_NS)

    async def emit(evaluation: Evaluation) -> None:
        emitted.append(evaluation)
        if signaled is not None and evaluation.signals:
            signaled.set()

    return PatchRunner(core, emit, clock=lambda: NOW, hold_ns=hold_ns, tick_hz=tick_hz)


def _two_batches(runner: PatchRunner) -> None:
    runner.deliver(
        "v",
        [
            market_trade(NOW - 20 * MS, 100.0, trade_id="1", recv_ns=NOW - 9 * MS),
            market_trade(NOW - 19 * MS, 101.0, trade_id="2", recv_ns=NOW - 4 * MS),
        ],
        NOW - 1 * MS,
    )
    runner.deliver("v", [market_trade(NOW - 18 * MS, 102.0, trade_id="3")])  # no stamps: not observed


async def test_a_burst_observes_each_batch_latency_and_counts_events_evaluations_and_signals() -> None:
    emitted: list[Evaluation] = []
    runner = _runner(emitted)
    before = _samples()
    _two_batches(runner)
    await runner.release(NOW)
    after = _samples()
    delta = {key: after[key] - before[key] for key in after}

    assert sum(len(e.signals) for e in emitted) == 1
    assert delta["newest_count"] == 1 and delta["processing_count"] == 1
    assert abs(delta["newest_sum"] - 0.004) < 1e-9
    assert abs(delta["oldest_sum"] - 0.009) < 1e-9
    assert abs(delta["processing_sum"] - 0.001) < 1e-9
    assert delta["events"] == 3
    assert delta["evaluations"] == 1  # both batches in one burst: one evaluation
    assert delta["signals"] == 1


async def test_with_a_hold_each_timestamp_observes_its_latency_and_is_evaluated() -> None:
    emitted: list[Evaluation] = []
    runner = _runner(emitted, hold_ns=5 * MS)
    before = _samples()
    _two_batches(runner)
    await runner.release(NOW - 5 * MS)
    after = _samples()
    delta = {key: after[key] - before[key] for key in after}

    assert sum(len(e.signals) for e in emitted) == 1
    assert delta["newest_count"] == 2 and delta["processing_count"] == 2
    assert abs(delta["newest_sum"] - 0.013) < 1e-9  # 9 ms and 4 ms
    assert abs(delta["oldest_sum"] - 0.013) < 1e-9
    assert abs(delta["processing_sum"] - 0.002) < 1e-9
    assert delta["events"] == 3
    assert delta["evaluations"] == 3  # one per timestamp, as in a backtest
    assert delta["signals"] == 1


@pytest.mark.parametrize("hold_ns", [0, 5 * MS])
async def test_the_loop_wakes_when_a_batch_arrives_not_at_the_next_tick(hold_ns: int) -> None:
    signaled = asyncio.Event()
    runner = _runner([], hold_ns, tick_hz=0.1, signaled=signaled)  # the next tick 10 s away
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    try:
        await asyncio.sleep(0.05)
        runner.deliver("v", [market_trade(NOW - 20 * MS, 100.0, trade_id="1")], NOW - 1 * MS)
        await asyncio.wait_for(signaled.wait(), 5)  # well before the tick's 10 s
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)


async def test_module_steps_over_their_budget_are_counted_as_missed_deadlines() -> None:
    emitted: list[Evaluation] = []
    slow = Engine(Catalog.builtin(), SlowTimer(), EngineConfig(module_budget_ns=1 * MS))
    runner = _runner(emitted, core=slow)
    before = _samples()
    _two_batches(runner)
    await runner.release(NOW)
    missed = _samples()["slow_steps"] - before["slow_steps"]

    assert missed == sum(len(e.slow) for e in emitted) and missed > 0


async def test_module_steps_within_their_budget_are_not_counted() -> None:
    runner = _runner([])
    before = _samples()
    _two_batches(runner)
    await runner.release(NOW)
    assert _samples()["slow_steps"] == before["slow_steps"]
