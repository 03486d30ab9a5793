"""How the suite shares pytest-xdist's two workers (tests/workers.py), checked on a small run of
its own: a module-scoped fixture's tests stay in one worker and set it up once, the others are
spread over both, an exclusive test runs while no other does, and a package's exclusive tests
run as one block.

(xdist's own `loadgroup` stopped grouping anything under pytest 9, silently: this would say so.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # runs pytest sessions of its own

ROOT = Path(__file__).resolve().parents[2]

INNER = {
    "conftest.py": 'pytest_plugins = ["tests.workers"]\n',
    "test_grouped.py": """
        import pytest
        from record import record

        @pytest.fixture(scope="module")
        def shared():
            record("setup", "shared")
            return "shared"

        @pytest.mark.parametrize("i", range(6))
        def test_uses_the_module_fixture(shared, i):
            record("ran", f"grouped-{i}", seconds=0.2)
    """,
    "test_free.py": """
        import pytest
        from record import record

        @pytest.mark.parametrize("i", range(8))
        def test_free(i):
            record("ran", f"free-{i}", seconds=0.3)

        @pytest.mark.exclusive
        def test_alone():
            record("ran", "alone", seconds=1.0)
    """,
    "pkg/__init__.py": "",
    "pkg/conftest.py": """
        import pytest
        from record import record

        @pytest.fixture(scope="package")
        def whole_package():
            record("setup", "package")
            return "package"
    """,
    "pkg/test_first.py": """
        import pytest
        from record import record

        @pytest.mark.exclusive
        @pytest.mark.parametrize("i", range(3))
        def test_first(whole_package, i):
            record("ran", f"package-a{i}", seconds=0.2)
    """,
    "pkg/test_second.py": """
        import pytest
        from record import record

        @pytest.mark.exclusive
        @pytest.mark.parametrize("i", range(3))
        def test_second(whole_package, i):
            record("ran", f"package-b{i}", seconds=0.2)
    """,
    "record.py": """
        import json, os, time

        def record(kind, name, seconds=0.0):
            start = time.monotonic()
            time.sleep(seconds)
            line = {"kind": kind, "name": name, "worker": os.environ.get("PYTEST_XDIST_WORKER"),
                    "start": start, "end": time.monotonic()}
            with open(os.environ["RECORD_FILE"], "a") as f:
                f.write(json.dumps(line) + "\\n")
    """,
}


def run_inner(directory: Path) -> list[dict[str, Any]]:
    for name, text in INNER.items():
        (directory / name).parent.mkdir(exist_ok=True)
        (directory / name).write_text(textwrap.dedent(text))
    records = directory / "records.jsonl"
    command = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadscope", "-p", "no:cacheprovider"]
    command += ["-o", "markers=exclusive", "--rootdir", str(directory), "-q", str(directory)]
    command += ["--basetemp", str(directory / "tmp")]  # not pytest's shared temp root
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{directory}", "RECORD_FILE": str(records)}
    done = subprocess.run(command, cwd=directory, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return [json.loads(line) for line in records.read_text().splitlines()]


def overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two tests ran at the same time (monotonic clocks are one clock across processes)."""
    return bool(a["start"] < b["end"] and b["start"] < a["end"])


def test_grouped_tests_share_a_worker_and_an_exclusive_one_runs_alone_after_the_rest(tmp_path: Path) -> None:
    records = run_inner(tmp_path)
    ran = [r for r in records if r["kind"] == "ran"]
    assert len(ran) == 6 + 8 + 1 + 6
    setups = [r["name"] for r in records if r["kind"] == "setup"]
    assert sorted(setups) == ["package", "shared"], f"a shared fixture was set up twice: {setups}"
    assert len({r["worker"] for r in ran if r["name"].startswith("grouped-")}) == 1
    assert {r["worker"] for r in ran} == {"gw0", "gw1"}, "the free tests were not spread"
    (alone,) = [r for r in ran if r["name"] == "alone"]
    overlapping = [
        r["name"] for r in ran if r is not alone and r["start"] < alone["end"] and r["end"] > alone["start"]
    ]
    assert not overlapping, f"ran beside the exclusive test: {overlapping}"
    # Handed out only once every other test has ended: no worker waits at the gate for it with
    # tests of its own still to run.
    rest = [r for r in ran if r is not alone and not r["name"].startswith("package-")]
    assert alone["start"] >= max(r["end"] for r in rest), "the exclusive test began before the rest ended"


def test_a_packages_exclusive_tests_share_a_worker_and_run_as_one_block(tmp_path: Path) -> None:
    """A package-scoped fixture's tests (the browser tests' mesh) go whole to one worker; run
    exclusive, nothing else runs from the first of them to the last: one wait, not one per test."""
    ran = [r for r in run_inner(tmp_path) if r["kind"] == "ran"]
    block = [r for r in ran if r["name"].startswith("package-")]
    assert len(block) == 6 and len({r["worker"] for r in block}) == 1
    first, last = min(r["start"] for r in block), max(r["end"] for r in block)
    beside = [r["name"] for r in ran if r not in block and r["start"] < last and r["end"] > first]
    assert not beside, f"ran while the package's exclusive tests held the machine: {beside}"


CRASHING = {
    "conftest.py": """
        import os, time
        from pathlib import Path
        import pytest
        pytest_plugins = ["tests.workers"]
        WORKER = os.environ.get("PYTEST_XDIST_WORKER")

        def wait_for(name, seconds):
            deadline = time.monotonic() + seconds
            while not Path(name).exists() and time.monotonic() < deadline:
                time.sleep(0.05)

        @pytest.hookimpl(trylast=True)  # after xdist's own: the controller has this worker
        def pytest_sessionstart(session):
            Path(f"{WORKER}.ready").touch()

        # The order a loaded machine gave by chance: the second replacement is up, still
        # collecting, when the first reports its collection (and every worker is rescheduled).
        # (The first runs tests only once the second has reported too: the second waits 10 s.)
        @pytest.hookimpl(tryfirst=True)  # before xdist's own, which reports the collection
        def pytest_collection_finish(session):
            if WORKER == "gw2":
                wait_for("gw3.ready", 60)
            elif WORKER == "gw3":
                wait_for("gw2.running", 10)

        def pytest_runtest_logstart(nodeid):
            Path(f"{WORKER}.running").touch()
    """,
    "test_crashing.py": """
        import os
        import pytest

        @pytest.mark.parametrize("i", range(12))
        def test_the_first_workers_crash(i):
            if os.environ["PYTEST_XDIST_WORKER"] in ("gw0", "gw1"):
                os._exit(1)
    """,
}


def test_replacements_of_crashed_workers_run_the_rest(tmp_path: Path) -> None:
    """Both workers crash; xdist starts two in their place, and the one that collects later is
    handed tests only once it has: before, the first one's collection had the scheduler hand the
    other tests at once (KeyError: an INTERNALERROR, the run ended without its report)."""
    for name, text in CRASHING.items():
        (tmp_path / name).write_text(textwrap.dedent(text))
    command = [sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadscope", "-p", "no:cacheprovider"]
    command += ["--rootdir", str(tmp_path), "-q", "-rf", str(tmp_path), "--basetemp", str(tmp_path / "tmp")]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{tmp_path}"}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    out = done.stdout + done.stderr
    assert "INTERNALERROR" not in out, out
    assert "2 failed, 12 passed" in out, out  # the crashes reported; every test ran (those two again)
