"""The runs the hub started: each one `trademesh backtest --progress-json` in a process of its own
(its own core and memory; cancelling is ending it; forked from the hub's run server:
trademesh.core.backtest.hub.child), which reads the history, stores its run and
results (trademesh.core.backtest.store) and prints its progress as JSON lines. The hub keeps each run's
latest progress for its watchers, and marks in the store how a run it ended or lost ended.

The database URL reaches the child in its environment, never in a file or an argument.
A run's range is cut to the recorded history before it starts (trademesh.core.backtest.history_range;
the cut range goes to the child as --from/--to); the hub holds each of its runs' lease
(trademesh.core.backtest.store) until the run has ended, so a hub starting on the same database leaves
them alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import os
import shutil
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.core.backtest.config import BacktestConfig, backtest_config, read_options
from trademesh.core.backtest.history_range import clip_to_history, iso_seconds
from trademesh.core.backtest.hub.child import RunProcess, start_child
from trademesh.core.backtest.hub.convert import STATUS
from trademesh.core.backtest.store import BacktestStore, RunLease
from trademesh.core.backtest.summary import config_view, run_id
from trademesh.core.platform.config.env import DATABASE_URL
from trademesh.core.platform.errors import FailedPrecondition, NotFound, ResourceExhausted

__all__ = ["Run", "RunManager"]

log = logging.getLogger(__name__)

_STDERR_KEPT = 60
_END_WAIT_S = 10.0
_ENDED = frozenset({bt.RUN_STATUS_DONE, bt.RUN_STATUS_FAILED, bt.RUN_STATUS_CANCELLED})


@dataclass
class Run:
    run_id: str
    process: RunProcess
    progress: bt.Progress
    lease: RunLease
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    stderr: deque[str] = field(default_factory=lambda: deque(maxlen=_STDERR_KEPT))
    cancelled: bool = False

    def update(self, **values: object) -> None:
        for name, value in values.items():
            setattr(self.progress, name, value)
        self.changed.set()
        self.changed = asyncio.Event()


class RunManager:
    def __init__(self, store: BacktestStore, database_url: str, max_runs: int, work_dir: Path | None) -> None:
        self.store = store
        self.database_url = database_url
        self.max_runs = max_runs
        # The runs' option files; a folder of its own made here is removed at close().
        self._own_work = work_dir is None
        self._work = work_dir or Path(tempfile.mkdtemp(prefix="backtester-"))
        self.runs: dict[str, Run] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._starting = asyncio.Lock()
        self._configs = itertools.count(1)

    def active(self) -> list[Run]:
        return [r for r in self.runs.values() if r.progress.status not in _ENDED]

    async def start(self, config_text: str) -> tuple[str, str | None]:
        """Check the run's options (InvalidArgument naming the bad one), then start it; its id,
        and the notice of its range's cut to the recorded history (None: it runs as asked). One
        start at a time: its checks (room, the same run going on) hold until its run is counted."""
        async with self._starting:
            return await self._start(config_text)

    async def _start(self, config_text: str) -> tuple[str, str | None]:
        # A file of its own: a run started again is no new entry in self.runs, so their count
        # would name a file another start is about to write.
        path = self._work / f"run-{next(self._configs)}-{os.getpid()}.toml"
        path.write_text(config_text, encoding="utf-8")
        # The options came over the API, not in a file of the caller's: no error names this one.
        config = backtest_config(read_options(path), {"database_url": self.database_url})
        self._check_room()
        symbols = await asyncio.to_thread(_check_buildable, config)  # seconds (the model): not on the loop
        config, notice = await clip_to_history(config, symbols)
        identity = run_id(config)
        if identity in self.runs and self.runs[identity].progress.status not in _ENDED:
            raise FailedPrecondition(f"run {identity} (the same options) is running already")
        self._check_room()
        lease = await self.store.lease(identity)
        try:
            process = await self._spawn(identity, config, path, cut=notice is not None)
        except BaseException:
            await lease.release()
            raise
        progress = bt.Progress(
            run_id=identity, status=bt.RUN_STATUS_RUNNING, data_ns=config.start_ns, eta_s=-1
        )
        run = self.runs[identity] = Run(identity, process, progress, lease)
        task = asyncio.create_task(self._follow(run), name=f"backtest {identity}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        log.info(
            "backtester: run %s started (pid %d)%s", identity, process.pid, f": {notice}" if notice else ""
        )
        return identity, notice

    def _check_room(self) -> None:
        if len(self.active()) >= self.max_runs:
            raise ResourceExhausted(f"{self.max_runs} run(s) going on: wait for one to end, or cancel it")

    async def _spawn(self, identity: str, config: BacktestConfig, path: Path, cut: bool) -> RunProcess:
        # Recorded now (the child records it again at its start): a run that ends before its
        # child stored anything is still listed, with how it ended.
        await self.store.start(identity, config_view(config), config.start_ns, config.end_ns)
        # A cut range is on whole seconds: exact as ISO text, and the child's own cut keeps it.
        span = ["--from", iso_seconds(config.start_ns), "--to", iso_seconds(config.end_ns)] if cut else []
        return await start_child(
            ["backtest", "--config", str(path), *span, "--progress-json"],
            {**os.environ, DATABASE_URL: self.database_url},
        )

    async def cancel(self, identity: str) -> bool:
        run = self.runs.get(identity)
        if run is None or run.progress.status in _ENDED:
            if run is None:
                await self.store.result(identity)  # NotFound for an unknown run
            return False
        run.cancelled = True
        with contextlib.suppress(ProcessLookupError):
            run.process.terminate()
        return True

    async def watch(self, identity: str) -> AsyncIterator[bt.Progress]:
        """The run's progress now and at every change, until it has ended."""
        run = self.runs.get(identity)
        if run is None:
            yield await self._stored(identity)
            return
        while True:
            changed = run.changed
            progress = bt.Progress.FromString(run.progress.SerializeToString())
            yield progress
            # The status of what was sent: the run may have ended while the stream was sending
            # it (then `changed` is set, and the end goes out next), so not the run's status now.
            if progress.status in _ENDED:
                return
            await changed.wait()

    async def close(self) -> None:
        for run in self.active():
            run.cancelled = True
            with contextlib.suppress(ProcessLookupError):
                run.process.terminate()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=_END_WAIT_S)
        if self._own_work:  # each hub left one in the temporary directory (73 after a test run)
            shutil.rmtree(self._work, ignore_errors=True)

    # ---- following a child

    async def _follow(self, run: Run) -> None:
        try:
            await self._follow_process(run)
        finally:
            await run.lease.release()

    async def _follow_process(self, run: Run) -> None:
        errors = asyncio.create_task(_lines(run.process.stderr, run.stderr.append))
        await _lines(run.process.stdout, lambda line: _progress(run, line))
        code = await run.process.wait()
        await errors
        if code == 0 and not run.cancelled:
            run.update(status=bt.RUN_STATUS_DONE, fraction=1.0, eta_s=0.0)
            log.info("backtester: run %s done", run.run_id)
            return
        status, reason = self._end(run, code)
        # A child that failed before storing its run, or that stored its failure itself.
        with contextlib.suppress(NotFound, FailedPrecondition):
            await self.store.fail(run.run_id, reason, "cancelled" if run.cancelled else "failed")
        run.update(status=status, error=reason)
        log.warning("backtester: run %s ended: %s", run.run_id, reason)
        if status == bt.RUN_STATUS_FAILED and len(run.stderr) > 1:  # its traceback, for whoever mends it
            log.warning("backtester: run %s said:\n%s", run.run_id, "\n".join(run.stderr))

    @staticmethod
    def _end(run: Run, code: int) -> tuple[bt.RunStatus.ValueType, str]:
        if run.cancelled:
            return bt.RUN_STATUS_CANCELLED, "cancelled"
        said = [line for line in run.stderr if line.strip()]
        return bt.RUN_STATUS_FAILED, said[-1] if said else f"the run's process ended with code {code}"

    async def _stored(self, identity: str) -> bt.Progress:
        stored = await self.store.result(identity)
        status = STATUS.get(stored.status, bt.RUN_STATUS_UNSPECIFIED)
        done = 1.0 if status == bt.RUN_STATUS_DONE else 0.0
        return bt.Progress(
            run_id=identity, status=status, data_ns=stored.end_ns, fraction=done,
            events=stored.events or 0, eta_s=0, error=stored.error or "",
        )  # fmt: skip


def _check_buildable(config: BacktestConfig) -> list[str]:
    """The checks the run would make at its start (symbols, files), made before it starts; the
    symbols it reads. The engine is imported here, at the first start, not at the hub's: a hub
    serves its runs' results and refusals without it."""
    from trademesh.core.backtest.assemble import build, run_symbols

    build(config)
    return run_symbols(config)


async def _lines(stream: asyncio.StreamReader, take: Callable[[str], object]) -> None:
    while line := await stream.readline():
        take(line.decode(errors="replace").rstrip("\n"))


def _progress(run: Run, line: str) -> None:
    if not line.startswith("{"):
        return  # the summary's lines
    try:
        values = json.loads(line)["progress"]
    except (ValueError, KeyError, TypeError):
        return
    run.update(
        data_ns=int(values["data_ns"]), fraction=float(values["fraction"]), events=int(values["events"]),
        events_per_s=float(values["events_per_s"]), eta_s=float(values["eta_s"]),
    )  # fmt: skip
