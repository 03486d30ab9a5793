"""The suite's fork server (tests/forked_services.py) starts a service as `python -m` would: its
arguments, environment, working directory, stderr and exit code are its own, its atexit hooks
run, and signals reach it."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import core.foundations.process
from core.foundations.errors import Unavailable
from core.foundations.process import start_service
from tests import forked_services

PROBE = "tests.integration.forked_probe"


@pytest.fixture(autouse=True)
def forked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever TRADEMESH_TEST_FORK says, these tests are of the fork server."""
    monkeypatch.setattr(core.foundations.process, "launcher", forked_services.launch)


def test_a_forked_service_has_its_own_arguments_environment_directory_and_stderr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        service = start_service(["serve", "x y"], env={"PROBE": "from the test"}, stderr=stderr, module=PROBE)
        try:
            assert service.info["probe"] == "from the test"
            assert service.info["cwd"] == str(tmp_path)
            assert service.info["argv"] == ["serve", "x y"]
            assert service.process.pid != os.getpid() and service.process.poll() is None
        finally:
            code = service.terminate()
    assert code == 0
    assert "probe atexit ran" in log.read_text()


def test_its_exit_code_and_a_kill_are_seen_as_a_child_s() -> None:
    ended = start_service(["exit", "3"], module=PROBE)  # prints its serving line, then exits 3
    assert ended.process.wait(10) == 3
    killed = start_service(["serve"], module=PROBE)
    killed.process.kill()
    assert killed.process.wait(10) == -signal.SIGKILL
    assert killed.process.poll() == -signal.SIGKILL


def test_a_service_that_fails_before_serving_is_reported_with_its_exit_code() -> None:
    with pytest.raises(Unavailable, match="exited with 2 before serving"):
        start_service(["venue", "no-such-venue"], timeout_s=30)
