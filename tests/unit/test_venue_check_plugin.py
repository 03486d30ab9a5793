"""The kit's pytest plug-in, in a pytest of its own (a process, as another repository runs it):
named with -p, inert without --venue-address, one test per check with it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import trademesh.core.venue_check.checks  # noqa: F401  (registers the checks)
from trademesh.core.venue_check.registry import CHECKS

# Another repository's tests: one of its own. The plug-in is named, as that repository names it.
_TESTS = "def test_its_own() -> None:\n    assert 1 + 1 == 2\n"
_PLUGIN = ["-p", "trademesh.core.venue_check.pytest_plugin"]


def _pytest(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (directory / "pytest.ini").write_text("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    (directory / "test_theirs.py").write_text(_TESTS)
    environment = {**os.environ, "TRADEMESH_TOKEN": "t-mesh", "TRADEMESH_TRADE_TOKEN": "t-trade"}
    # Without this environment's Hypothesis plug-in (this suite's, no venue repository's need),
    # whose import is two thirds of such a pytest's start; the others it autoloads stay.
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q"]
    command += [*_PLUGIN, *args]
    return subprocess.run(
        command, cwd=directory, env=environment, capture_output=True, text=True, timeout=120
    )


def test_no_pytest11_entry_point_makes_pytest_rewrite_trademesh(pytestconfig: pytest.Config) -> None:
    """Not an entry point: with one, pytest marks every module of the distribution (trademesh)
    for assert rewriting in every run of the environment, this one included."""
    assert pytestconfig.pluginmanager.get_plugin("trademesh_venue_check") is None
    hook = next(h for h in sys.meta_path if type(h).__name__ == "AssertionRewritingHook")
    assert "trademesh" not in set(hook._must_rewrite)  # type: ignore[attr-defined]


def test_without_a_venue_address_the_plugin_adds_no_test(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "--collect-only")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "test_theirs.py::test_its_own" in done.stdout
    assert "venue-check" not in done.stdout and "1 test collected" in done.stdout


def test_with_a_venue_address_each_check_is_a_test(tmp_path: Path) -> None:
    done = _pytest(tmp_path, "--collect-only", "--venue-address", "127.0.0.1:1")
    assert done.returncode == 0, done.stdout + done.stderr
    collected = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("venue-check[")]
    assert collected == [f"venue-check[{name}]" for name in CHECKS]


def test_where_no_venue_answers_each_selected_check_fails_with_the_one_line_reason(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{probe.getsockname()[1]}"
    done = _pytest(tmp_path, "--venue-address", address, "-k", "health or drain or its_own")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "2 failed, 1 passed" in done.stdout, done.stdout
    why = f"the kit could not run: nothing listens at {address} (connection refused)"
    assert f"health: {why}" in done.stdout and f"drain: {why}" in done.stdout
    assert "Traceback" not in done.stdout
