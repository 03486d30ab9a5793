"""What the benchmarks share: the machine's description, a sim venue child process, stopping a
child, CPU meters, percentiles, tables and result files, and the scratch stores a bench runs on (a
claimed and flushed Redis database, a PostgreSQL database of its own). Benchmarks only talk to
127.0.0.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import json
import os
import platform
import secrets
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

from trademesh.core.platform.config.env import TOKEN, TRADE_TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service

__all__ = [
    "CHANNEL_OPTIONS",
    "HOST",
    "RESULTS_DIR",
    "CpuMeter",
    "CpuMeters",
    "Script",
    "Server",
    "Stoppable",
    "SystemCpu",
    "Venue",
    "claimed_redis_db",
    "command_line",
    "database_at",
    "drop_database",
    "flushed_redis",
    "machine",
    "median",
    "now_iso",
    "percentile",
    "print_table",
    "record_profile",
    "redis_db_url",
    "require_local",
    "scratch_database",
    "source_version",
    "start_script",
    "start_venue",
    "stop_process",
    "workdir",
    "write_result",
]

HOST = "127.0.0.1"
_LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
RESULTS_DIR = Path(__file__).resolve().parent / "results"
# Batches of many events, and cancel-all answers listing every order, exceed gRPC's 4 MiB default.
CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _ram_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return 0.0


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def source_version() -> dict[str, Any]:
    """The commit measured, and whether the working tree differed from it (read-only git calls)."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        try:
            done = subprocess.run(
                ["git", "--no-optional-locks", *args], cwd=root, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return ""
        return done.stdout.strip() if done.returncode == 0 else ""

    commit = git("rev-parse", "--short", "HEAD")
    if commit == "" and (root / ".source-commit").exists():
        # A `git archive` export measured apart from a working tree others are editing.
        return {"commit": (root / ".source-commit").read_text().strip(), "export": str(root)}
    changed = [
        line.split(maxsplit=1)[-1]
        for line in git("status", "--porcelain", "--untracked-files=no").splitlines()
    ]
    return {"commit": commit or "unknown", "uncommitted_changes": changed}


def machine() -> dict[str, Any]:
    from google.protobuf.internal import api_implementation

    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_gib": _ram_gib(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "grpcio": _version("grpcio"),
        "protobuf": f"{_version('protobuf')} ({api_implementation.Type()})",
        "uvloop": _version("uvloop"),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "source": source_version(),
    }


def now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class Server(Protocol):
    """A server process the benchmarks call: where it listens and what to send with each call."""

    @property
    def address(self) -> str: ...

    @property
    def pid(self) -> int: ...

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]: ...

    def stop(self) -> int: ...


@dataclass
class Venue:
    """A sim venue child process on 127.0.0.1, its log file and the bearer metadata to send."""

    service: ServiceProcess
    log_path: Path
    metadata: tuple[tuple[str, str], ...]
    # The venue's secrets, for a mesh service started beside it (the inspector holds both).
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def pid(self) -> int:
        return self.service.process.pid

    @property
    def address(self) -> str:
        return f"{HOST}:{self.service.port}"

    def log_lines(self, needle: str) -> list[str]:
        return [line.rstrip() for line in self.log_path.read_text().splitlines() if needle in line]

    def stop(self) -> int:
        return self.service.terminate()


def start_venue(config_toml: str, workdir: Path, auth: bool) -> Venue:
    """Start `trademesh venue sim` on a free port with this config; stderr goes to a log file.

    With auth: the mesh token and the trading credential set, and the trading credential sent (the
    inspector's view: good for every RPC, and the only one PlaceOrder takes)."""
    config = workdir / "sim.toml"
    config.write_text(config_toml)
    log_path = workdir / "venue.log"
    token = secrets.token_hex(16) if auth else ""
    trade_token = secrets.token_hex(16) if auth else ""
    with log_path.open("w") as log:
        service = start_service(
            ["venue", "sim", "--host", HOST, "--port", "0", "--metrics-port", "-1", "--config", str(config)],
            env={TOKEN: token, TRADE_TOKEN: trade_token},
            stderr=log,
        )
    metadata_ = (("authorization", f"Bearer {trade_token}"),) if auth else ()
    return Venue(service, log_path, metadata_, {TOKEN: token, TRADE_TOKEN: trade_token})


@dataclass
class Script:
    """A Python script run as a child process that printed {"event": "serving", "port": N}."""

    process: subprocess.Popen[str]
    port: int
    metadata: tuple[tuple[str, str], ...] = ()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def stop(self) -> int:
        return stop_process(self.process)


class Stoppable(Protocol):
    """What stop_process uses of a child (a subprocess.Popen, a service's ChildProcess)."""

    def terminate(self) -> None: ...

    def kill(self) -> None: ...

    def wait(self, timeout: float | None = None) -> int: ...


def stop_process(process: Stoppable, timeout_s: float = 10.0, kill_wait_s: float | None = 10.0) -> int:
    """SIGTERM, wait up to `timeout_s`; SIGKILL when it has not stopped by then, and wait up to
    `kill_wait_s` (None: for as long as it takes). The exit code. A child that already exited
    is only reaped: Popen.terminate signals no process it has seen end."""
    process.terminate()
    try:
        return process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        return process.wait(kill_wait_s)


def start_script(path: Path, timeout_s: float = 30.0) -> Script:
    process = subprocess.Popen([sys.executable, str(path)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout_s)
    line = process.stdout.readline() if ready else ""
    if not line.startswith("{"):
        process.kill()
        raise RuntimeError(f"{path} did not report serving within {timeout_s} s (got {line!r})")
    return Script(process, int(json.loads(line)["port"]))


def workdir() -> Path:
    return Path(tempfile.mkdtemp(prefix="trademesh-bench-"))


class CpuMeter:
    """CPU time of a process (user + system) from /proc, as a share of one core between reads."""

    def __init__(self, pid: int | None = None) -> None:
        self._path = Path(f"/proc/{pid if pid is not None else os.getpid()}/stat")
        self._tick_s = 1 / os.sysconf("SC_CLK_TCK")
        self._last = self._read()

    def _read(self) -> tuple[float, float]:
        try:
            fields = self._path.read_text().rsplit(")", 1)[1].split()
            cpu_s = (int(fields[11]) + int(fields[12])) * self._tick_s
        except (OSError, IndexError, ValueError):
            cpu_s = float("nan")
        return time.monotonic(), cpu_s

    def percent(self) -> float:
        """Percent of one core used since the previous call (or since creation)."""
        (t0, c0), (t1, c1) = self._last, self._read()
        self._last = (t1, c1)
        return 100.0 * (c1 - c0) / (t1 - t0) if t1 > t0 else float("nan")


class SystemCpu:
    """Busy CPU time of the whole machine from /proc/stat, as a share of one core (200% = 2 cores)."""

    def __init__(self) -> None:
        self._last = self._read()

    @staticmethod
    def _read() -> tuple[int, int]:
        try:
            fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        except (OSError, ValueError):
            return 0, 0
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields) - idle, sum(fields)

    def percent(self) -> float:
        (b0, t0), (b1, t1) = self._last, self._read()
        self._last = (b1, t1)
        cores = os.cpu_count() or 1
        return 100.0 * cores * (b1 - b0) / (t1 - t0) if t1 > t0 else float("nan")


class CpuMeters:
    """CPU shares over one measurement: the server, this client, and everything else on the machine."""

    def __init__(self, server_pid: int) -> None:
        self._server, self._client, self._machine = CpuMeter(server_pid), CpuMeter(), SystemCpu()

    def read(self) -> dict[str, float]:
        server, client, machine = self._server.percent(), self._client.percent(), self._machine.percent()
        return {"server": server, "client": client, "machine": machine, "others": machine - server - client}


async def record_profile(pid: int, out: Path, seconds: float) -> str:
    """py-spy (installed in the venv, not a project dependency) samples a process into a raw profile."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    command = [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
               "--format", "raw", "--rate", "200", "--output", str(out)]  # fmt: skip
    try:
        process = await asyncio.create_subprocess_exec(
            *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
        )
    except OSError as exc:
        return f"py-spy not started: {exc}"
    _, err = await asyncio.wait_for(process.communicate(), seconds + 30)
    if process.returncode == 0:
        return f"py-spy profile: {out}"
    # py-spy 0.4 sometimes dies with SIGSEGV sampling a busy grpc process; the run's figures stand.
    lines = [line for line in err.decode().splitlines() if line.strip() and not line.startswith("py-spy>")]
    return f"py-spy failed (exit {process.returncode}) {' / '.join(lines[-2:])}".strip()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return float(ordered[rank - 1])


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def print_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    for index, row in enumerate(cells):
        print("  ".join(value.rjust(width) for value, width in zip(row, widths, strict=True)))
        if index == 0:
            print("  ".join("-" * width for width in widths))


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_result(name: str, payload: dict[str, Any]) -> Path:
    """Overwrite bench/results/<name>.json with this run (the latest run is the one kept)."""
    RESULTS_DIR.mkdir(exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def command_line() -> str:
    return " ".join([".venv/bin/python", *sys.argv])


# The test suite's claims of Redis databases (tests/integration/mesh.py): db 0's hash {db: pid}. A
# test run flushes the databases it claims (1-13) and skips one a live process holds; a bench that
# flushes its database claims it the same way, so neither flushes the other's mid-run.
_DB_CLAIMS = "trademesh:test-redis-dbs"


@contextlib.contextmanager
def claimed_redis_db(db: int, claims_url: str = f"redis://{HOST}:6379/0") -> Iterator[None]:
    """Hold Redis database `db` for this process while the block runs; exit with a message naming
    the holder when another live process (a test run, another bench) has it. The claims are kept
    where `claims_url` points (db 0 of the Redis, as the test runs keep theirs)."""
    import redis

    client = redis.Redis.from_url(claims_url)
    try:
        if not client.hsetnx(_DB_CLAIMS, str(db), os.getpid()):
            owner = int(client.hget(_DB_CLAIMS, str(db)) or 0)
            if owner != os.getpid() and Path(f"/proc/{owner}").exists():
                held = f"Redis database {db} is held by process {owner} (a test run?)"
                sys.exit(f"{held}: choose another --redis-db")
            client.hset(_DB_CLAIMS, str(db), os.getpid())
        yield
    finally:
        if int(client.hget(_DB_CLAIMS, str(db)) or 0) == os.getpid():
            client.hdel(_DB_CLAIMS, str(db))
        client.close()


def require_local(url: str, what: str, bench: str) -> None:
    """Exit naming `bench` unless `url` (of Redis or PostgreSQL, `what`) is on this machine: a
    bench flushes and drops what it made, and measures the server's CPU from /proc."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme != "unix" and parts.hostname not in _LOCAL_HOSTS:
        raise SystemExit(f"{bench}: {what} must be on 127.0.0.1, not {parts.hostname!r}")


def redis_db_url(url: str, db: int) -> str:
    """The same Redis, logical database `db` (a unix socket URL names it in the query, its path
    being the socket's)."""
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "unix":
        query = urllib.parse.parse_qs(parts.query) | {"db": [str(db)]}
        return parts._replace(query=urllib.parse.urlencode(query, doseq=True)).geturl()
    return parts._replace(path=f"/{db}").geturl()


@contextlib.asynccontextmanager
async def flushed_redis(client: Any) -> AsyncIterator[Any]:
    """`client` (a redis.asyncio client) with its database emptied before the block and after it,
    then closed: a bench starts on an empty bus and leaves none of its entries behind. Claim the
    database first (claimed_redis_db), so that it is no one else's being flushed."""
    try:
        await client.flushdb()
        yield client
    finally:
        # A Redis gone by now must not hide what ended the block; the next run flushes anyway.
        with contextlib.suppress(Exception):
            await client.flushdb()
        await client.aclose()


# PostgreSQL cuts a longer identifier short: the database made would not be the one the URL names.
_MAX_IDENTIFIER_BYTES = 63


def _quoted(name: str) -> str:
    """`name` as a PostgreSQL identifier, whatever its characters (a prefix is the caller's)."""
    return '"' + name.replace('"', '""') + '"'


def database_at(server_url: str, name: str) -> str:
    """The URL of database `name` on the server of `server_url` (same user, host, options)."""
    return urllib.parse.urlunsplit(urllib.parse.urlsplit(server_url)._replace(path=f"/{name}"))


@contextlib.asynccontextmanager
async def scratch_database(
    server_url: str, prefix: str, *, timeout_s: float = 60.0, keep: bool = False
) -> AsyncIterator[str]:
    """The URL of a new, empty database <prefix>_<random> on the server at `server_url` (a URL
    of one of its databases), dropped on exit however the block ends; with `keep`, left there
    and its name printed. `timeout_s` bounds each connection to the server (asyncpg's default)."""
    import asyncpg

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    if len(name.encode()) > _MAX_IDENTIFIER_BYTES:
        raise ValueError(f"database name {name!r} is longer than {_MAX_IDENTIFIER_BYTES} bytes")
    admin = await asyncpg.connect(server_url, timeout=timeout_s)
    try:
        await admin.execute(f"CREATE DATABASE {_quoted(name)}")
    finally:
        await admin.close()
    try:
        yield database_at(server_url, name)
    finally:
        if keep:
            print(f"kept database {name}")
        else:
            await drop_database(server_url, name, timeout_s=timeout_s)


async def drop_database(server_url: str, name: str, *, timeout_s: float = 60.0) -> None:
    """Drop database `name` on the server of `server_url`, if there, with the sessions still on it."""
    import asyncpg

    admin = await asyncpg.connect(server_url, timeout=timeout_s)
    try:
        await admin.execute(f"DROP DATABASE IF EXISTS {_quoted(name)} WITH (FORCE)")
    finally:
        await admin.close()
