"""Where a sweep's trials run: `LocalRunner`, a process per core of this machine
(concurrent.futures); `DaskRunner`, the workers of a Dask distributed cluster (a scheduler's
address), or a local cluster of its own when none is given. A trial is CPU-bound Python, so
each runs in its own process, one at a time per process.

Both are context managers (the pool or the cluster lives across the batches of a
walk-forward) and give the results in the trials' order; a trial's error is raised as it was
raised in the worker (the other trials are cancelled).
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from types import TracebackType
from typing import Any, Protocol

from trademesh.core.backtest.sweep import TrialResult
from trademesh.core.backtest.sweep_config import ENGINES, MAX_WORKERS
from trademesh.core.backtest.trial import Trial, run_trial
from trademesh.core.platform.errors import FailedPrecondition, InvalidArgument

__all__ = ["DaskRunner", "LocalRunner", "OnDone", "TrialRunner", "runner_for"]

_PRELOAD = "trademesh.core.backtest.preload"  # the trial's modules and the models' classes
OnDone = Callable[[TrialResult], None]  # each result as it comes back (progress)


class TrialRunner(Protocol):
    def __enter__(self) -> TrialRunner: ...

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...

    def run(self, trials: Sequence[Trial], on_done: OnDone | None = None) -> list[TrialResult]: ...


def _workers(workers: int | None) -> int:
    count = workers if workers is not None else (os.cpu_count() or 1)
    if not 1 <= count <= MAX_WORKERS:
        raise InvalidArgument.field("workers", f"{count} is out of range: 1 to {MAX_WORKERS}")
    return count


def _set_env(env: Mapping[str, str]) -> None:
    os.environ.update(env)


class LocalRunner:
    """`workers` processes (default: one per core), forked from a fresh server process that
    imported the backtest and the advisor's models' classes once (forkserver, trademesh.core.backtest.preload:
    nothing of this process's threads or event loop is inherited, and no worker pays the
    imports); `env` set in each (e.g. DATABASE_URL)."""

    def __init__(self, workers: int | None = None, env: Mapping[str, str] | None = None) -> None:
        self.workers = _workers(workers)
        self.env = dict(env or {})
        self._pool: ProcessPoolExecutor | None = None

    def __enter__(self) -> LocalRunner:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([_PRELOAD])  # imported once, then forked
        self._pool = ProcessPoolExecutor(
            max_workers=self.workers, mp_context=context, initializer=_set_env, initargs=(self.env,)
        )
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def run(self, trials: Sequence[Trial], on_done: OnDone | None = None) -> list[TrialResult]:
        if self._pool is None:
            raise FailedPrecondition("the runner is not started (use it in a with block)")
        futures: list[Future[TrialResult]] = [self._pool.submit(run_trial, t) for t in trials]
        try:
            for future in as_completed(futures):
                result = future.result()  # a trial's error, raised as the worker raised it
                if on_done is not None:
                    on_done(result)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
        return [future.result() for future in futures]


class DaskRunner:
    """The trials as tasks of a Dask cluster: the scheduler at `address` (its workers started
    with `dask worker <address> --nworkers -1 --nthreads 1`, in their own environment), else a
    local cluster of `workers` processes of one thread each with `env` set, started here and
    closed at the end (forked as LocalRunner's are: `_local_cluster`)."""

    def __init__(
        self, address: str | None = None, workers: int | None = None, env: Mapping[str, str] | None = None
    ) -> None:
        self.address = address or None
        self.workers = _workers(workers)
        self.env = dict(env or {})
        self._client: Any = None
        self._cluster: Any = None

    def __enter__(self) -> DaskRunner:
        from distributed import Client

        if self.address is None:
            self._cluster = _local_cluster(self.workers, self.env)
            self._client = Client(self._cluster)  # type: ignore[no-untyped-call]
        else:
            try:
                self._client = Client(self.address, timeout=30)  # type: ignore[no-untyped-call]
            except OSError as exc:
                raise FailedPrecondition(f"no Dask scheduler at {self.address}: {exc}") from None
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def run(self, trials: Sequence[Trial], on_done: OnDone | None = None) -> list[TrialResult]:
        from distributed import as_completed

        if self._client is None:
            raise FailedPrecondition("the runner is not started (use it in a with block)")
        futures = self._client.map(run_trial, list(trials), pure=False)
        try:
            for future in as_completed(futures):  # type: ignore[no-untyped-call]
                result = future.result()  # a trial's error, raised as the worker raised it
                if on_done is not None:
                    on_done(result)
        except BaseException:
            self._client.cancel(futures)
            raise
        results: list[TrialResult] = self._client.gather(futures)
        return results


def _local_cluster(workers: int, env: Mapping[str, str]) -> Any:
    """A Dask local cluster whose workers are forked from a server that imported the trial's
    modules and Dask's once (multiprocessing's forkserver, as LocalRunner's), not spawned each to
    import them: 2.6 CPU s and seconds of wall per worker. Workers the nanny restarts later
    are spawned (Dask's default): the method is set while the cluster starts its workers."""
    import dask
    from distributed import LocalCluster
    from distributed.utils import get_mp_context

    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        # Dask names its own preload at its first call (Dask's modules and numpy, pandas when
        # installed): ours after it, so that the server imports what a trial needs instead.
        get_mp_context()  # type: ignore[no-untyped-call]
        multiprocessing.get_context("forkserver").set_forkserver_preload(["distributed", _PRELOAD])
        return LocalCluster(  # type: ignore[no-untyped-call]
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None, env=dict(env)
        )


def runner_for(
    engine: str, workers: int | None = None, address: str | None = None, env: Mapping[str, str] | None = None
) -> TrialRunner:
    """The engine's runner; `env` reaches the processes started here (not a remote cluster's)."""
    if engine == "local":
        if address:
            raise InvalidArgument.field("address", "is for --engine dask (a scheduler's address)")
        return LocalRunner(workers, env)
    if engine == "dask":
        return DaskRunner(address, workers, env)
    raise InvalidArgument.field("engine", f"{engine!r} is not one of {', '.join(ENGINES)}")
