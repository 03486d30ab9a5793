"""A pytest plugin: how the tests share pytest-xdist's workers (`./dev test`: `--dist loadscope`).

Tests go to the workers one by one, except groups, which go whole to one worker, so that
what their tests share is set up once, as in a serial run:

- the tests of a package that use a package-scoped fixture (Studio's mesh and browser, for
  every browser test): one group per package;
- the tests of a module that use a module-scoped fixture (a gateway, a bridge): one group per
  module;
- the tests that read a shared replay venue (`replay_sessions`, tests/integration/replay.py):
  one group, whose worker owns the shared venues (one per capture);
- the tests marked `exclusive` (outside a package group): one group, scheduled last (below).

The groups go out longest first (the longest work first keeps the workers' ends together):
a group's length is the sum of its tests' wall seconds as tests/durations.json says them (a
run's measurement: `TRADEMESH_TEST_CPU=/tmp/cpu ./dev test`, then
`.venv/bin/python -m tests.cpu_report /tmp/cpu --durations tests/durations.json`), a test it
does not list counting _UNLISTED_S (a new or quick test). Counting tests instead left the
suite's longest lone tests (a whole `trademesh up`, 90 s) to start late and end the run alone.
The exclusive group goes last, and only once every other test has ended: it then holds an otherwise
idle machine, and no worker waits at the gate with tests still to run. Spread over the run, each
exclusive test made every worker wait for the longest test running beside it (up to the parity
test's two minutes) with the gate closed: 20-30 s setups of trivial tests in a 3-worker run.

Only a worker, which collects, can tell a test's fixtures; only the controller schedules. So
each worker writes {test id: group} to a file the controller named (in `workerinput`), and the
controller's scheduler (loadscope's, with that file as its notion of scope) reads it.

A test marked `exclusive` (it measures a rate the machine must give it whole) runs while no
other test runs: every test holds a shared lock on a file of the run, an exclusive test an
exclusive one; a gate lock in front keeps new tests from starting while one waits. A worker
keeps the exclusive lock from one exclusive test to the next (a group of them runs as one block),
so the run waits for the other worker once per block, not once per test. The browser tests are
not exclusive: their waits on what the page shows allow for the other worker's load (30 s).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any

import pytest

__all__ = ["DURATIONS", "EXCLUSIVE", "group_of", "measured_seconds", "run_order"]

# The fixture that holds the shared replay venues (tests/integration/replay.py).
_SHARED_REPLAYS = "replay_sessions"
EXCLUSIVE = "exclusive"  # the group of the tests marked so
DURATIONS = Path(__file__).with_name("durations.json")  # measured: see the module's docstring
_UNLISTED_S = 0.5  # what a test the file does not list counts (most take less)
_RUN_DIR = "trademesh_run_dir"  # key in workerinput: the controller's directory for this run
_GROUPS = "groups.json"
_run_dir_key = pytest.StashKey[Path]()


def group_of(item: pytest.Item) -> str | None:
    """The group a test runs in, or None when it may run anywhere."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    if _SHARED_REPLAYS in info.names_closure:
        return "replay-shared"
    scopes = {d.scope for name in info.names_closure for d in info.name2fixturedefs.get(name, ())}
    if "package" in scopes:
        return item.nodeid.rsplit("/", 1)[0]
    if item.get_closest_marker(EXCLUSIVE) is not None:
        return EXCLUSIVE
    if "module" in scopes:
        return item.nodeid.split("::")[0]
    return None


def run_order(
    ids: list[str], groups: dict[str, str], seconds: Mapping[str, float] | None = None
) -> list[str]:
    """The order the controller hands the tests out in: groups (a lone test is its own) longest
    first by `seconds` (a test's wall seconds; _UNLISTED_S when not listed), the exclusive group
    last; a group's tests together, in their collected order."""
    known = seconds or {}
    of = [groups.get(test_id, test_id) for test_id in ids]
    length: dict[str, float] = {}
    first_seen: dict[str, int] = {}
    for index, (test_id, group) in enumerate(zip(ids, of, strict=True)):
        length[group] = length.get(group, 0.0) + known.get(test_id, _UNLISTED_S)
        first_seen.setdefault(group, index)
    order = sorted(range(len(ids)), key=lambda i: (of[i] == EXCLUSIVE, -length[of[i]], first_seen[of[i]], i))
    return [ids[i] for i in order]


def measured_seconds(path: Path = DURATIONS) -> dict[str, float]:
    """tests/durations.json: {test id: wall seconds}; empty when it is missing or unreadable (the
    order is then by counts of tests, as good as nothing is known)."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): float(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _run_dir(config: pytest.Config) -> Path | None:
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is not None and _RUN_DIR in workerinput:
        return Path(workerinput[_RUN_DIR])
    return None


# ---- the controller


def pytest_configure(config: pytest.Config) -> None:
    if config.pluginmanager.hasplugin("xdist") and config.getoption("numprocesses", None):
        config.stash[_run_dir_key] = Path(tempfile.mkdtemp(prefix="trademesh-tests-"))
        config.option.loadscopereorder = False  # the workers' collection is in run_order already


def pytest_unconfigure(config: pytest.Config) -> None:
    run_dir = config.stash.get(_run_dir_key, None)
    if run_dir is not None:
        shutil.rmtree(run_dir, ignore_errors=True)


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    node.workerinput[_RUN_DIR] = str(node.config.stash[_run_dir_key])


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    groups_file = config.stash[_run_dir_key] / _GROUPS

    class GroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        _groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self._groups is None:  # written by the workers before they report their collection
                self._groups = json.loads(groups_file.read_text()) if groups_file.exists() else {}
            return self._groups.get(nodeid, nodeid)

        def _reschedule(self, node: Any) -> None:
            """A worker xdist started in place of a crashed one gets tests once its collection is
            in. Any worker's collection reschedules every worker, and loadscope counted the crashed
            ones' collections as the new ones': a second replacement still collecting was handed
            tests (KeyError, an INTERNALERROR that ended a fresh clone's run with no report)."""
            if node in self.registered_collections:
                super()._reschedule(node)

        def _assign_work_unit(self, node: Any) -> None:
            """The exclusive group (last in the queue) goes out only once the other tests have
            ended but each worker's last: handed out while others still had tests queued, their
            workers sat at the gate for the whole block (40 s each in a run of the suite). A
            worker runs its last test only when told what follows (pytest's teardown needs the
            next item), so that one is left to it: the gate lets it end before the block."""
            if next(iter(self.workqueue)) == EXCLUSIVE and any(
                self._pending_of(work) > 1 for work in self.assigned_work.values()
            ):
                return  # the worker whose second-last test ends last takes it
            try:
                super()._assign_work_unit(node)
            except OSError:
                # Its channel is closed: the worker died and xdist has not said so yet (two
                # crashed at once: the first's remove_node hands its tests to the second). The
                # unit stays in its assigned work, and its errordown, which follows, puts it back
                # in the queue (an INTERNALERROR ended a fresh clone's run of test_workers).
                return
            if not self.workqueue:  # all handed out: the others run their last test and end
                for other in self.nodes:
                    if other is not node and not other.shutting_down:
                        with contextlib.suppress(OSError):  # died meanwhile: as above
                            other.shutdown()

    return GroupScheduling(config, log)


# ---- a worker


@pytest.hookimpl(trylast=True)  # after -k/-m deselection: the ids the controller gets
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run_dir = _run_dir(config)
    if run_dir is None:
        return
    groups = {item.nodeid: group for item in items if (group := group_of(item)) is not None}
    ordered = run_order([i.nodeid for i in items], groups, measured_seconds())
    position = {test_id: n for n, test_id in enumerate(ordered)}
    items.sort(key=lambda item: position[item.nodeid])
    written = run_dir / f"{_GROUPS}.{os.getpid()}"
    written.write_text(json.dumps(groups))
    written.replace(run_dir / _GROUPS)  # whole or not at all; every worker writes the same


class _Hold:
    """The exclusive lock this worker keeps from one exclusive test to the next, so that a run of
    them (the browser tests, one group) waits for the other worker's test once, not per test."""

    files: tuple[IO[str], IO[str]] | None = None

    @classmethod
    def release(cls) -> None:
        if cls.files is not None:
            for file in cls.files:
                file.close()  # closing releases its lock
            cls.files = None


def pytest_sessionfinish() -> None:
    _Hold.release()


@pytest.fixture(autouse=True)
def _machine_share(request: pytest.FixtureRequest) -> Iterator[None]:
    run_dir = _run_dir(request.config)
    if run_dir is None:  # one process: nothing runs beside the test
        yield
        return
    exclusive = request.node.get_closest_marker("exclusive") is not None
    if exclusive and _Hold.files is not None:
        yield  # held since the previous test, an exclusive one too
        return
    _Hold.release()
    gate, lock = (run_dir / "machine.gate").open("a"), (run_dir / "machine.lock").open("a")
    fcntl.flock(gate, fcntl.LOCK_EX)
    fcntl.flock(lock, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
    if exclusive:
        _Hold.files = (gate, lock)  # released by the next test that is not, or the session's end
        yield
        return
    fcntl.flock(gate, fcntl.LOCK_UN)
    try:
        yield
    finally:
        lock.close()
        gate.close()
