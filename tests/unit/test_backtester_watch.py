"""The backtest hub's progress stream (trademesh.core.backtest.hub.runs.RunManager.watch) ends with the run's
end, even when the run ends while the stream is sending an earlier state: a cancel 22 ms after
the start did that in a suite run, and the stream ended on RUNNING."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.core.backtest.hub.runs import Run, RunManager


def _manager(tmp_path: Path) -> tuple[RunManager, Run]:
    store: Any = None  # a watch of a run the hub follows reads no store
    manager = RunManager(store, "", max_runs=1, work_dir=tmp_path)
    process: Any = None
    lease: Any = None  # a watch holds no lease
    run = Run("r1", process, bt.Progress(run_id="r1", status=bt.RUN_STATUS_RUNNING), lease)
    manager.runs["r1"] = run
    return manager, run


async def test_a_run_ending_while_its_state_is_sent_still_sends_its_end(tmp_path: Path) -> None:
    manager, run = _manager(tmp_path)
    stream = manager.watch("r1")
    first = await stream.__anext__()  # the stream is now sending this state
    run.update(status=bt.RUN_STATUS_CANCELLED, error="cancelled")
    rest = [progress async for progress in stream]
    assert first.status == bt.RUN_STATUS_RUNNING
    assert [(p.status, p.error) for p in rest] == [(bt.RUN_STATUS_CANCELLED, "cancelled")]


async def test_every_change_is_sent_then_the_end(tmp_path: Path) -> None:
    manager, run = _manager(tmp_path)
    stream = manager.watch("r1")
    seen = [await stream.__anext__()]
    for fraction in (0.25, 0.5):
        run.update(fraction=fraction)
        seen.append(await stream.__anext__())
    run.update(status=bt.RUN_STATUS_DONE, fraction=1.0)
    seen += [progress async for progress in stream]
    assert [(p.status, p.fraction) for p in seen] == [
        (bt.RUN_STATUS_RUNNING, 0.0),
        (bt.RUN_STATUS_RUNNING, 0.25),
        (bt.RUN_STATUS_RUNNING, 0.5),
        (bt.RUN_STATUS_DONE, 1.0),
    ]
