"""`trademesh up` as a user runs it on a fresh machine: no REDIS_URL, no DATABASE_URL, no token.

It must start embedded Redis and PostgreSQL and the whole mesh, show trades being recorded and
bars closing, restart a service killed under it, and stop everything on Ctrl-C. Its terminal is
calm (each service once with its address, no service's INFO line; those in <data-dir>/logs/up.log);
`--verbose` shows them.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import pytest
from google.protobuf.message import Message

from tests.integration.found_venue import check_a_venue_found
from tests.integration.support import MESH_CALL_TIMEOUT_S
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.core.platform.access.contracts import TARGET_HEADER
from trademesh.core.screener.screen_file import SCREENS_DIR
from trademesh.ledger.v1 import ledger_pb2 as lg
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.registry.v1 import registry_pb2
from trademesh.screener.v1 import screener_pb2 as sc
from trademesh.supervisor.v1 import supervisor_pb2 as sv

pytestmark = pytest.mark.integration
M = TypeVar("M", bound=Message)

_PROGRESS = re.compile(r"trades recorded ([\d,]+).*bars closed ([\d,]+)")
# A service's log record at INFO or DEBUG on up's output (trademesh.core.platform.logs.setup's text format).
_SERVICE_INFO = re.compile(r"^\S+\s+\| \d{4}-\d\d-\d\d [\d:,]+ (?:INFO|DEBUG) ")
_SERVICE_LINE = re.compile(r"^mesh\s+\| (\S+) (?:serving|standing by) on (\d+\.\d+\.\d+\.\d+:\d+) ")


class Output:
    """The mesh's stdout, line by line, read on a thread so a hung mesh cannot hang the test."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        stream = process.stdout
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        compiled = re.compile(pattern)
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                break
            self.lines.append(line)
            found = compiled.search(line)
            if found:
                return found
        tail = "\n".join(self.lines[-40:])
        raise AssertionError(f"no line matching {pattern!r} within {timeout_s} s; last lines:\n{tail}")

    def counted(self, pattern: str, timeout_s: float) -> re.Match[str]:
        """The latest progress line read if it matches `pattern`, else the next line that does: its
        counts only grow, so one already reached stays reached (waiting for the next line, every
        check of the chain cost a status interval)."""
        latest = next((line for line in reversed(self.lines) if _PROGRESS.search(line)), "")
        return re.search(pattern, latest) or self.wait_for(pattern, timeout_s)

    def progress_beyond(self, trades: int, bars: int, timeout_s: float) -> tuple[int, int]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = self.wait_for(_PROGRESS.pattern, deadline - time.monotonic())
            seen = (int(found[1].replace(",", "")), int(found[2].replace(",", "")))
            if seen[0] > trades and seen[1] > bars:
                return seen
        raise AssertionError(f"progress never passed {trades} trades and {bars} bars")


HTTP_TIMEOUT_S = MESH_CALL_TIMEOUT_S
SCREEN_CADENCE_S = 5


def _post(url: str, body: bytes, headers: dict[str, str]) -> bytes:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as answer:
        return bytes(answer.read())


def _grpc_web(
    studio_url: str, key: str, method: str, request: Message, answer: type[M], target: str | None = None
) -> M:
    """Log in as Studio does, then call `method` over gRPC-web (binary frames), on the instance
    named `target` when given."""
    login = json.loads(_post(f"{studio_url}api/login", json.dumps({"key": key}).encode(), {}))
    message = request.SerializeToString()
    headers = {"content-type": "application/grpc-web+proto", "authorization": f"Bearer {login['token']}"}
    if target is not None:
        headers[TARGET_HEADER] = target
    body = _post(f"{studio_url}{method}", b"\x00" + struct.pack(">I", len(message)) + message, headers)
    flag, length = body[0], struct.unpack(">I", body[1:5])[0]
    assert flag == 0, f"a trailer where a message should be: {body!r}"
    return answer.FromString(body[5 : 5 + length])


def _registered(studio_url: str, key: str) -> set[str]:
    answer = _grpc_web(
        studio_url, key, "trademesh.registry.v1.Registry/ListServices",
        registry_pb2.ListServicesRequest(), registry_pb2.ListServicesResponse,
    )  # fmt: skip
    return {instance.name for instance in answer.instances}


def _check_trace(studio_url: str, key: str) -> None:
    chain = ["signal", "decision", "intent", "risk_check", "order", "fill", "transfer"]
    deadline = time.monotonic() + 120
    while True:
        page = _grpc_web(
            studio_url, key, "trademesh.ledger.v1.Ledger/ListTransfers",
            lg.ListTransfersRequest(page_size=200, newest_first=True), lg.ListTransfersResponse,
        )  # fmt: skip
        linked = [t for t in page.transfers if t.links.signal_id and t.links.fill_id]
        if linked:
            found = _grpc_web(
                studio_url, key, "trademesh.ledger.v1.Ledger/Trace", lg.TraceRequest(id=linked[0].id),
                lg.TraceResponse,
            )  # fmt: skip
            kinds = [step.kind for step in found.steps]
            # In order (the recorder may still be writing the newest steps: then look again).
            if [k for k in chain if k in kinds] == chain:
                assert sorted(set(kinds), key=chain.index) == chain, kinds
                assert found.kind == "transfer" and found.steps[0].id == linked[0].links.signal_id
                return
        assert time.monotonic() < deadline, f"no whole chain traced: {linked[:1]}"
        time.sleep(0.5)


def _check_regimes(studio_url: str, key: str) -> None:
    """Overwatch reads the bar service's 1m bars of the sim (its backfilled history first): the
    board through the gateway holds the sim's markets, each with the bars it has read."""
    deadline = time.monotonic() + 90  # a 1m stream is found within 5 s of its first bar
    while True:
        board = _grpc_web(
            studio_url, key, "trademesh.overwatch.v1.Overwatch/GetBoard",
            ow.GetBoardRequest(filter=ow.MarketFilter(venues=["sim"])), ow.GetBoardResponse,
        ).board  # fmt: skip
        if board.markets and all(m.bars > 0 for m in board.markets):
            assert {m.venue for m in board.markets} == {"sim"}
            assert all(m.regime != ow.REGIME_UNSPECIFIED for m in board.markets), board
            return
        assert time.monotonic() < deadline, f"no sim market on Overwatch's board: {board}"
        time.sleep(0.5)


def _screens(up_dir: Path) -> Path:
    """The shipped sim-movers screen, evaluated every SCREEN_CADENCE_S (`up --screens`), not at
    whole minutes: its first ranked result came one or two minutes after the Screener served."""
    screens = up_dir / "screens"
    screens.mkdir()
    text = (SCREENS_DIR / "sim-movers.toml").read_text()
    assert "\ncadence_s = 60\n" in text, "the shipped sim-movers screen's cadence changed"
    faster = text.replace("\ncadence_s = 60\n", f"\ncadence_s = {SCREEN_CADENCE_S}\n")
    (screens / "sim-movers.toml").write_text(faster)
    return screens


def _check_screens(studio_url: str, key: str) -> None:
    """The Screener ranks the sim's markets by the shipped sim-movers screen, on the bars the bar
    service backfills: its latest result through the gateway."""
    deadline = time.monotonic() + 90  # a few cadences, on a loaded machine
    while True:
        got = _grpc_web(
            studio_url, key, "trademesh.screener.v1.Screener/GetResults",
            sc.GetResultsRequest(screen="sim-movers"), sc.GetResultsResponse,
        )  # fmt: skip
        if got.HasField("result") and got.result.ranked:
            assert got.result.venue == "sim" and got.result.ranked[0].rank == 1, got.result
            return
        assert time.monotonic() < deadline, f"no ranked result of sim-movers: {got}"
        time.sleep(0.5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _end_group(process: subprocess.Popen[str]) -> None:
    """Whatever is left of the mesh: `up` and every process it started share its process group."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)  # Ctrl-C: up stops its services in order
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(60)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


@pytest.fixture
def up_dir() -> Iterator[Path]:
    """Where `up` runs and keeps its data: not under pytest's temp root, which any pytest starting
    meanwhile (the other worker's, another run's) makes private again, while the embedded
    PostgreSQL runs as a system user of its own (pgserver) that must reach its data."""
    directory = Path(tempfile.mkdtemp(prefix="trademesh-up-"))
    try:
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _start_up(up_dir: Path, *more: str) -> subprocess.Popen[str]:
    unset = ("REDIS_URL", "DATABASE_URL", "TRADEMESH_TOKEN", "TRADEMESH_TRADE_TOKEN")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    args = ["up", "--free-ports", "--data-dir", str(up_dir / "data"), "--status-every", "2", *more]
    return subprocess.Popen(
        [sys.executable, "-m", "trademesh.core.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=up_dir,
        start_new_session=True,  # its own process group, so a failed test can end all of it
    )


@pytest.mark.slow  # the whole mesh, a kill and a restart: not in the fast tier
# 90 s on a machine of the usual speed; one at a third of it, under a whole run, passed the
# suite's 300 s (its waits are each bounded on their own).
@pytest.mark.timeout(600)
def test_up_on_a_fresh_machine_records_restarts_and_stops(up_dir: Path) -> None:
    process = _start_up(up_dir, "--screens", str(_screens(up_dir)))
    try:
        _check_up(process, up_dir / "data")
    finally:
        _end_group(process)


@pytest.mark.slow  # embedded Redis and PostgreSQL and the gateway
@pytest.mark.timeout(300)
def test_up_verbose_shows_the_services_log_lines(up_dir: Path) -> None:
    """`up --verbose`: the services' INFO lines on the terminal, as in the log file; a Ctrl-C
    while the mesh starts stops it once the service starting is up (no further one starts)."""
    process = _start_up(up_dir, "--verbose")
    try:
        out = Output(process)
        log = out.wait_for(r"every service's full log here and in (\S+)$", 60)[1]
        out.wait_for(r"^gateway\s+\| \S+ \S+ INFO gateway ", 120)
        process.send_signal(signal.SIGINT)
        out.wait_for(r"mesh\s+\| stopped", 120)
        assert process.wait(30) == 0
        assert not [line for line in out.lines if line.startswith("sim ")], "a service started after Ctrl-C"
        assert re.search(r"^gateway\s+\| \S+ \S+ INFO gateway ", Path(log).read_text(), re.M)
    finally:
        _end_group(process)


def _service_info(lines: list[str]) -> list[str]:
    return [line for line in lines if _SERVICE_INFO.match(line)]


def _check_calm(lines: list[str], data: Path, services: set[str]) -> None:
    """Up's terminal names each service once with its address, shows no service's INFO line, and
    says where the log file is; the file holds every service's INFO lines."""
    assert not _service_info(lines), "a service's INFO line on the terminal"
    named = Counter(m[1] for m in map(_SERVICE_LINE.match, lines) if m)
    assert set(named) == services and set(named.values()) == {1}, named
    path = data / "logs" / "up.log"
    assert any(f"every service's full log in {path} (--verbose: here too)" in line for line in lines)
    log = path.read_text()
    for name in services:
        assert re.search(rf"^{name}\s+\| \S+ \S+ INFO ", log, re.M), f"no INFO line of {name} in {path}"


def _in_background(check: Callable[[], None]) -> Future[None]:
    """`check` run on a thread of its own; the future's result re-raises what it raised."""
    pool = ThreadPoolExecutor(1, thread_name_prefix="check")
    try:
        return pool.submit(check)
    finally:
        pool.shutdown(wait=False)


def _check_a_venue_found(lines: list[str], data: Path, studio_url: str, key: str) -> None:
    """found_venue's check, through the gateway as Studio calls it."""

    def status(name: str) -> admin.GetStatusResponse:
        method, request = "trademesh.admin.v1.Admin/GetStatus", admin.GetStatusRequest()
        return _grpc_web(studio_url, key, method, request, admin.GetStatusResponse, target=name)

    check_a_venue_found(lines, data, lambda: _registered(studio_url, key), status)


def _check_up(process: subprocess.Popen[str], data: Path) -> None:
    out = Output(process)
    out.wait_for(r"embedded redis and postgresql", 60)
    out.wait_for(r"all services healthy", 240)  # a deadline against a hang: 14 s of it the sim alone, loaded
    pids = {
        m[1]: int(m[2]) for m in (re.search(r"(\w+) serving on \S+ \(pid (\d+)\)", x) for x in out.lines) if m
    }
    assert set(pids) == {
        "gateway",
        "sim",
        "ingest",
        "recorder",
        "bars",
        "bridge",
        "detector",
        "advisor",
        "backtester",
        "inspector",
        "ledger",
        "overwatch",
        "supervisor",
        "screener",
    }
    _check_calm(out.lines, data, set(pids))
    studio_url = out.wait_for(r"Studio: (http://\S+/) \(log in with the key in (\S+)\)", 10)[1]
    key = (data / "api-key").read_text().strip()
    with urllib.request.urlopen(studio_url, timeout=HTTP_TIMEOUT_S) as page:  # Studio, built by ./dev
        assert "<title>trademesh Studio</title>" in page.read().decode()
    # Each service registers in the background once it serves: give the last one a moment.
    expected = {
        "gateway", "sim", "ingest", "recorder", "bars", "bridge", "detector", "advisor", "inspector",
        "ledger", "backtester", "overwatch", "supervisor", "screener",
    }  # fmt: skip
    deadline = time.monotonic() + 15
    while (registered := _registered(studio_url, key)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    assert registered == expected
    # The Supervisor proposes (its own key, made by up), reached through the gateway.
    supervisor = _grpc_web(
        studio_url,
        key,
        "trademesh.supervisor.v1.Supervisor/GetState",
        sv.GetStateRequest(),
        sv.GetStateResponse,
    )
    assert supervisor.mode == sv.MODE_PROPOSE and "[supervisor]" in supervisor.bounds_toml
    trades, bars = out.progress_beyond(0, 0, 60)
    _check_regimes(studio_url, key)
    # Meanwhile, a venue started by hand, registering with the gateway: followed with nothing
    # restarted (its two starts and waits overlap the chain's, which wait on the mesh alone).
    venue_found = _in_background(lambda: _check_a_venue_found(list(out.lines), data, studio_url, key))
    # The detector's example strategies warm up from the demo market's history and signal within
    # a minute.
    out.counted(r"signals recorded [1-9]", 90)
    # The advisor decides on each (the deterministic synthesis: no LLM endpoint here), on 1m bars
    # the bar service backfills from that history, with the 1m model, counting the demo market's
    # fees: most decisions are intents. The window of a fresh mesh is all backfilled bars (its
    # quality score -0.25), so a thin best level at the decision's moment (-0.3) blocks it: the
    # demo market's makers keep that to 6-10% of the time (trademesh/venues/sim/demo.toml), and the
    # decisions come every 10-20 s, so two minutes hold several.
    out.counted(r"decisions recorded [1-9]", 60)
    out.counted(r"intents recorded [1-9]", 120)
    # The inspector checks each intent: a risk event per verdict on the bus.
    out.counted(r"risk events [1-9]", 60)
    # The orders it placed fill on the sim and the ledger posts the fills as balanced transfers:
    # the chain end to end, a fill's transfer traced back through its order, the inspector's
    # check, the advisor's intent and decision to the detector's signal. The books verify
    # (every balance recomputed from the transfers).
    out.counted(r"transfers posted [1-9]", 60)
    _check_trace(studio_url, key)
    verified = _grpc_web(
        studio_url, key, "trademesh.ledger.v1.Ledger/Verify", lg.VerifyRequest(), lg.VerifyResponse
    )
    assert verified.ok and verified.transfers > 0, verified
    venue_found.result()  # its own waits are bounded: this re-raises what it failed on

    os.kill(pids["recorder"], signal.SIGKILL)
    out.wait_for(r"recorder\s+\| \[supervisor\] exited with -9; restarting", 30)
    restarted = out.wait_for(r"recorder\s+\| \[supervisor\] restarted .*\(pid (\d+)\)", 60)
    pids["recorder"] = int(restarted[1])
    out.progress_beyond(trades, bars, 60)
    # Last before the stop: the Screener ranks at multiples of the screen's cadence (a backtest
    # scans at the same instants), its first ranked result a few cadences after it serves.
    _check_screens(studio_url, key)

    process.send_signal(signal.SIGINT)
    assert process.wait(60) == 0
    out.wait_for(r"mesh\s+\| stopped", 10)
    assert not [name for name, pid in pids.items() if _alive(pid)], "a service outlived the mesh"
    assert not _service_info(out.lines), "a service's INFO line on the terminal"
    printed = "\n".join(out.lines)
    for secret in ("token", "trade-token", "api-key", "session-secret", "supervisor-key"):
        path = data / secret
        assert path.stat().st_mode & 0o777 == 0o600, f"{secret} is readable by others"
        assert path.read_text().strip() not in printed, f"the {secret} was printed"


def test_up_refuses_a_bad_status_interval(tmp_path: Path) -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "trademesh.core.cli",
            "up",
            "--status-every",
            "0",
            "--data-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "status-every" in result.stderr and "must be positive, got 0" in result.stderr
