"""The suite's fork server (tests/forked_services.py) starts a service as `python -m` would: its
arguments, environment, working directory, stderr and exit code are its own, its atexit hooks
run, and signals reach it. A one-shot command run through it (run_command) answers as an exec'd
one does, is killed at its deadline, and leaves nothing open."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import trademesh.core.platform.service.process
from tests import forked_services
from tests.integration.postgres_server import drops_settled
from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.service.process import start_service

PROBE = "tests.integration.forked_probe"


@pytest.fixture(autouse=True)
def forked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever TRADEMESH_TEST_FORK says, these tests are of the fork server."""
    monkeypatch.setattr(trademesh.core.platform.service.process, "launcher", forked_services.launch)


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


# ---- one-shot commands (forked_services.run_command)

COMMAND = "tests.integration.command_probe"


def _exec_d(monkeypatch: pytest.MonkeyPatch) -> None:
    """run_command exec's from here on, as with TRADEMESH_TEST_FORK=0."""
    monkeypatch.setattr(trademesh.core.platform.service.process, "launcher", None)


@pytest.mark.parametrize(
    "args", [["say", "0"], ["say", "3", "x y"], ["flood", "307200"], ["message"], ["signal"]], ids=" ".join
)
def test_a_forked_command_answers_exactly_as_an_exec_d_one(
    args: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**os.environ, "PROBE": "from the test"}
    forked = forked_services.run_command(args, env, timeout_s=60, module=COMMAND)
    _exec_d(monkeypatch)
    exec_d = forked_services.run_command(args, env, timeout_s=60, module=COMMAND)
    assert (forked.returncode, forked.stdout, forked.stderr) == (
        exec_d.returncode,
        exec_d.stdout,
        exec_d.stderr,
    )
    assert forked.args == exec_d.args == [sys.executable, "-m", COMMAND, *args]


def test_a_command_s_exit_code_streams_and_environment_are_its_own(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    done = forked_services.run_command(["say", "3", "x y"], {**os.environ, "PROBE": "p"}, module=COMMAND)
    first, crlf = done.stdout.splitlines()
    assert done.returncode == 3
    assert json.loads(first) == {"argv": ["say", "3", "x y"], "probe": "p", "cwd": str(tmp_path)}
    assert crlf == "out with CR LF" and done.stdout.endswith("\n")  # newlines as text mode gives them
    assert done.stderr == "said on stderr\nerr with CR LF\n"
    assert forked_services.run_command(["say", "0"], module=COMMAND).returncode == 0
    assert forked_services.run_command(["signal"], module=COMMAND).returncode == -signal.SIGTERM
    flood = forked_services.run_command(["flood", "307200"], module=COMMAND)  # both pipes past full
    assert flood.returncode == 0 and len(flood.stdout) == len(flood.stderr) == 307200


def test_a_command_past_its_deadline_is_killed_with_what_it_said() -> None:
    began = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired) as timed_out:
        forked_services.run_command(["hang"], timeout_s=5, module=COMMAND)
    assert time.monotonic() - began >= 5
    assert timed_out.value.timeout == 5 and isinstance(timed_out.value.stdout, bytes)
    pid = int(timed_out.value.stdout)
    assert not Path(f"/proc/{pid}").exists()  # killed, and reaped by its monitor before the raise


def test_commands_run_from_many_threads_at_once_each_get_their_own_answer() -> None:
    def say(n: int) -> tuple[int, list[str]]:
        done = forked_services.run_command(["say", str(n), f"thread {n}"], module=COMMAND)
        return done.returncode, json.loads(done.stdout.splitlines()[0])["argv"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(say, range(16)))
    assert answers == [(n, ["say", str(n), f"thread {n}"]) for n in range(16)]


def test_commands_leave_no_descriptor_open() -> None:
    forked_services.run_command(["say", "0"], module=COMMAND)  # the fork server started, if not yet
    # The earlier tests' databases drop on a thread of this process (its loop's and connections'
    # descriptors come and go): settled first, nothing else opens any here meanwhile.
    drops_settled()
    before = sorted(os.listdir("/proc/self/fd"))
    forked_services.run_command(["say", "1"], module=COMMAND)
    forked_services.run_command(["flood", "307200"], module=COMMAND)
    with pytest.raises(subprocess.TimeoutExpired):
        forked_services.run_command(["hang"], timeout_s=2, module=COMMAND)
    assert sorted(os.listdir("/proc/self/fd")) == before


def test_the_cli_itself_runs_forked_to_its_exit_code() -> None:
    listed = forked_services.run_command(["services"], timeout_s=60)
    assert listed.returncode == 0, listed.stderr
    assert "venue" in [line.split()[0] for line in listed.stdout.splitlines() if line[:1].isalpha()]
    refused = forked_services.run_command(
        ["bridge", "--port", "0"], {**os.environ, "TRADEMESH_LOG_LEVEL": "LOUD"}
    )
    assert refused.returncode == 2 and refused.stdout == ""
    assert "TRADEMESH_LOG_LEVEL: 'LOUD' is not one of" in refused.stderr
