"""The market-data bus end to end (issue 4): sim -> ingest -> Redis Streams -> recorder (PostgreSQL),
with bars and bridge running, against raw XADD and raw COPY baselines measured in the same run.

Per repeat, each part with fresh processes (Redis db FLUSHDB'd, tables truncated in between):

(a) End to end, per configured rate: sim venue process(es) (one per --per-sim-max events/s, each
    with its own symbols and bus name: sim, sim2, ...), then ingest, recorder, bars and bridge,
    and one LiveData subscriber reading everything from the bridge. After --warmup s, a steady
    window of --duration s: committed events/s = rows of every table whose recorded_at falls in
    the window, divided by the window; the venues' own rate (Admin/GetStatus) over the same
    window; the recorder's bus lag (XINFO GROUPS lag + pending) at the window's start and end;
    CPU of every process.
    Drain: sim + ingest only (no consumer) until the bus holds --drain-events events; sim and
    ingest are stopped; the recorder then starts alone and drains the backlog: its own ceiling,
    without the sim's cost.
(b) Latency venue receive -> recorder commit, from the window's rows: recorded_at - ts_recv_ns
    (every rate; the goal is set at 10,000 events/s).
(c) Baselines: pipelined XADD (trademesh.core.platform.bus.publisher, ingest's own writer, nothing
    else) of entries captured from the bus in (a), in events/s; asyncpg COPY of trade rows into a
    scratch table with the columns and types of `trades` (without and with its primary key), in
    rows/s.

    .venv/bin/python bench/bus_pipeline.py --rates 10000,30000,60000,100000 --duration 20 --repeats 3

Only 127.0.0.1: Redis at $REDIS_URL (else 127.0.0.1:6379), logical db --redis-db (14), FLUSHDB'd;
PostgreSQL at $DATABASE_URL (else postgres@127.0.0.1:5432), a fresh database bench_bus_<random>,
dropped at the end. Every loop is bounded; every process started is stopped (also on Ctrl-C,
SIGTERM or an exception).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import datetime
import hashlib
import json
import math
import os
import queue
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from array import array
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import asyncpg
import grpc
import uvloop

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.bus.publisher import Publisher, Retention
from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.config.env import DATABASE_URL, REDIS_URL, TOKEN, database_url, read_secret
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.livedata.v1 import livedata_pb2_grpc as lv_grpc
from trademesh.marketdata.v1 import marketdata_pb2 as md

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
import durable_floor
import venue_stream

HOST = common.HOST
_DEFAULT_REDIS = "redis://127.0.0.1:6379"
# The second, third... sim quote their symbols in another asset: no natural key can collide.
_QUOTES = ("USDT", "USDC", "EUR", "GBP")
_INGESTED = (md.CHANNEL_TRADES, md.CHANNEL_BOOK, md.CHANNEL_TICKERS)  # ingest's default channels
_MARKET_TABLES = ("trades", "book_events", "tickers")
_ALL_TABLES = ("trades", "book_events", "tickers", "candles", "notices", "bars")
_ALL_KINDS = (lv.KIND_TRADES, lv.KIND_BOOK, lv.KIND_TICKERS, lv.KIND_CANDLES, lv.KIND_BARS, lv.KIND_NOTICES)
_SERVICES = ("ingest", "recorder", "bars", "bridge")
_CALL_TIMEOUT_S = 10.0
_STATUS_TIMEOUT_S = 30.0
_START_TIMEOUT_S = 60.0  # two busy cores: a service's imports alone can take seconds
# The shared PostgreSQL processes whose work our inserts cause (the rest serve other databases).
_PG_AUX = ("walwriter", "checkpointer", "background writer")

# What this benchmark runs: a digest of each package's sources, taken at the start and the end of a
# run (other engineers edit the working tree; a service started later loads what is there then).
_MEASURED = (
    "trademesh/core/platform/bus",
    "trademesh/core/ingest",
    "trademesh/core/recorder",
    "trademesh/core/bars",
    "trademesh/core/bridge",
    "trademesh/venues/sim",
    "trademesh/venues/runtime",
)


def source_digests() -> dict[str, str]:
    root = Path(__file__).resolve().parent.parent
    out = {}
    for folder in _MEASURED:
        digest = hashlib.sha256()
        for path in sorted((root / folder).rglob("*")):
            if path.is_file() and path.suffix in (".py", ".sql"):
                digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
        out[folder] = digest.hexdigest()[:12]
    return out


# ---------------------------------------------------------------- child processes


@dataclass
class Child:
    """A trademesh service started by this script: `python -m trademesh.core.cli ...`, stderr in a log
    file."""

    name: str
    process: subprocess.Popen[str]
    log_path: Path
    port: int = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def stop(self, timeout_s: float = 15.0) -> int:
        """SIGTERM, wait; SIGKILL when it does not stop in time. The exit code."""
        return common.stop_process(self.process, timeout_s, timeout_s)

    def log_lines(self, needle: str) -> list[str]:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return []
        return [line.rstrip() for line in text.splitlines() if needle in line]


def _pump(stream: IO[str], lines: queue.Queue[str | None]) -> None:
    for line in stream:  # keeps draining after the serving line, so the child never blocks on stdout
        lines.put(line)
    lines.put(None)


def _serving_port(process: subprocess.Popen[str], lines: queue.Queue[str | None], timeout_s: float) -> int:
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if line is None:
            raise RuntimeError(f"exited with {process.wait()} before serving")
        info = json.loads(line) if line.startswith("{") else {}
        if info.get("event") == "serving":
            return int(info["port"])
    raise RuntimeError(f"did not report serving within {timeout_s} s")


class Children:
    """Every process this script started, registered before it is waited for: all get stopped."""

    def __init__(self) -> None:
        self._alive: list[Child] = []
        self._lock = threading.Lock()

    def spawn(self, name: str, args: Sequence[str], env: dict[str, str], workdir: Path) -> Child:
        log_path = workdir / f"{name}.log"
        with log_path.open("w") as log:
            # A bench script (bench/encoded_venue.py) runs as itself, a service as `trademesh ...`.
            program = (
                [sys.executable] if args[0].endswith(".py") else [sys.executable, "-m", "trademesh.core.cli"]
            )
            process = subprocess.Popen(
                [*program, *args],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                env={**os.environ, **env},
            )
        child = Child(name, process, log_path)
        with self._lock:
            self._alive.append(child)
        assert process.stdout is not None
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
        try:
            child.port = _serving_port(process, lines, _START_TIMEOUT_S)
        except RuntimeError as exc:
            raise RuntimeError(f"{name} ({' '.join(args[:2])}) {exc}; its log: {log_path}") from None
        return child

    async def start(
        self, specs: Sequence[tuple[str, list[str]]], env: dict[str, str], workdir: Path
    ) -> list[Child]:
        """Start these (name, args) at once; each waits for its own serving line in a thread."""
        jobs = [asyncio.to_thread(self.spawn, name, args, env, workdir) for name, args in specs]
        return list(await asyncio.gather(*jobs))

    async def stop(self, children: Sequence[Child]) -> dict[str, int]:
        codes = await asyncio.gather(*(asyncio.to_thread(child.stop) for child in children))
        with self._lock:
            self._alive = [c for c in self._alive if c not in children]
        return {child.name: code for child, code in zip(children, codes, strict=True)}

    def stop_all(self) -> None:
        with self._lock:
            alive, self._alive = self._alive, []
        for child in alive:
            with contextlib.suppress(Exception):
                child.stop(5.0)


# ---------------------------------------------------------------- Redis, PostgreSQL, settings


@dataclass
class Setup:
    """Where everything runs, and what every service gets in its environment."""

    args: argparse.Namespace
    redis_url: str
    db_url: str
    token: str
    workdir: Path
    children: Children
    redis: Any = None  # redis.asyncio.Redis on the bench db
    db: Any = None  # an asyncpg connection to the bench database
    redis_pid: int = 0
    captures: dict[int, list[tuple[str, bytes]]] = field(default_factory=dict)
    part: str = "setup"  # the part running now: its processes' configs and logs go in workdir/part

    @property
    def part_dir(self) -> Path:
        path = self.workdir / self.part
        path.mkdir(exist_ok=True)
        return path

    @property
    def db_name(self) -> str:
        return urllib.parse.urlsplit(self.db_url).path.lstrip("/")

    @property
    def env(self) -> dict[str, str]:
        return {REDIS_URL: self.redis_url, DATABASE_URL: self.db_url, TOKEN: self.token}

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),) if self.token else ()


@contextlib.asynccontextmanager
async def opened_setup(args: argparse.Namespace, children: Children) -> AsyncIterator[Setup]:
    """The bench's new PostgreSQL database and its flushed Redis database, a connection to each;
    on exit the connections closed, Redis flushed and the database dropped (kept with --keep-db)."""
    redis_base = read_secret(REDIS_URL) or _DEFAULT_REDIS
    server_url = database_url()
    common.require_local(redis_base, "Redis", "bus_pipeline")
    common.require_local(server_url, "PostgreSQL", "bus_pipeline")
    redis_url = common.redis_db_url(redis_base, args.redis_db)
    token = secrets.token_hex(16) if args.auth else ""
    workdir = common.workdir()
    scratch = common.scratch_database(server_url, "bench_bus", timeout_s=_CALL_TIMEOUT_S, keep=args.keep_db)
    async with scratch as db_url, common.flushed_redis(open_redis(redis_url, read_timeout_s=30)) as redis:
        setup = Setup(args, redis_url, db_url, token, workdir, children, redis)
        setup.redis_pid = int((await redis.info("server"))["process_id"])
        setup.db = await asyncpg.connect(db_url, timeout=_CALL_TIMEOUT_S, command_timeout=300)
        try:
            yield setup
        finally:
            await setup.db.close()


async def reset(setup: Setup) -> None:
    """An empty bus and empty tables (the recorder's migrations stay) before the next part."""
    await setup.redis.flushdb()
    present = await setup.db.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY($1::text[])",
        list(_ALL_TABLES),
    )
    if present:
        await setup.db.execute(f"TRUNCATE {', '.join(r['tablename'] for r in present)}")


async def pg_pids(setup: Setup) -> dict[str, list[int]]:
    """postgres: our database's backends (not this script's own connection); pg shared: the
    cluster's WAL writer, checkpointer and background writer, which serve every database on it."""
    rows = await setup.db.fetch(
        "SELECT pid, datname = $1 AS ours FROM pg_stat_activity"
        " WHERE (datname = $1 AND pid <> pg_backend_pid()) OR backend_type = ANY($2::text[])",
        setup.db_name,
        list(_PG_AUX),
    )
    return {
        "postgres": [int(r["pid"]) for r in rows if r["ours"]],
        "pg shared": [int(r["pid"]) for r in rows if not r["ours"]],
    }


# ---------------------------------------------------------------- CPU


def _cpu_s(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return float("nan")


class CpuGroups:
    """CPU of named groups of processes between start and read, in % of one core (200 % = both)."""

    def __init__(self, groups: dict[str, list[int]]) -> None:
        self.groups = {**groups, "bench": [os.getpid()]}
        self._machine = common.SystemCpu()
        self._start = time.monotonic()
        self._cpu = {name: [_cpu_s(pid) for pid in pids] for name, pids in self.groups.items()}

    def read(self) -> dict[str, float]:
        elapsed = time.monotonic() - self._start
        shares = {}
        for name, pids in self.groups.items():
            used = [_cpu_s(pid) - before for pid, before in zip(pids, self._cpu[name], strict=True)]
            shares[name] = 100.0 * sum(u for u in used if u == u) / elapsed if elapsed > 0 else math.nan
        machine = self._machine.percent()
        shares["machine"] = machine
        shares["others"] = machine - sum(v for k, v in shares.items() if k != "machine")
        return shares


# ---------------------------------------------------------------- sims, services, the bus


def _sim_toml(rate: int, index: int, args: argparse.Namespace) -> str:
    text = venue_stream.sim_config(rate, args.symbols, args.tick_interval_ms)
    return text.replace('/USDT"', f'/{_QUOTES[index]}"') if index else text


def _sim_count(rate: int, per_sim_max: int, load: str = "sim") -> int:
    if load == "encoded":  # one venue serves any rate: it only hands encoded bytes on
        return 1
    return min(len(_QUOTES), max(1, math.ceil(rate / per_sim_max)))


def _encoded(setup: Setup, rate: int, events: int, subscribers: int) -> list[str]:
    """bench/encoded_venue.py's serve arguments: a recording of the sim at `rate` with at least
    `events` events, made once per (config, size) and kept in the system's temporary directory."""
    text = _sim_toml(rate, 0, setup.args)
    key = hashlib.sha256(f"{text}{events}".encode()).hexdigest()[:12]
    recording = Path(tempfile.gettempdir()) / f"trademesh-encoded-{key}.pickle"
    config = setup.part_dir / "encoded.toml"
    config.write_text(text)
    script = str(Path(__file__).resolve().parent / "encoded_venue.py")
    if not recording.exists():
        partial = recording.with_suffix(".partial")
        command = [sys.executable, script, "record", "--config", str(config), "--events", str(events)]
        subprocess.run([*command, "--out", str(partial)], check=True, stdout=subprocess.DEVNULL)
        partial.rename(recording)
    serve = [script, "serve", "--recording", str(recording), "--rate", str(rate)]
    return [*serve, "--subscribers", str(subscribers), *_sim_args(config)]


def _sim_args(config: Path) -> list[str]:
    """`trademesh venue sim` on a free port with this config."""
    return ["venue", "sim", "--host", HOST, "--port", "0", "--metrics-port", "-1", "--config", str(config)]


async def start_sims(
    setup: Setup, rate: int, count: int, events: int = 0, subscribers: int = 1
) -> list[Child]:
    """The venues: sims making `rate` events/s between them, or (--load encoded) one venue serving a
    recording of at least `events` events at that rate once `subscribers` streams are open."""
    if setup.args.load == "encoded":
        args = await asyncio.to_thread(_encoded, setup, rate, events, subscribers)
        return await setup.children.start([(_bus_name(0), args)], setup.env, setup.part_dir)
    specs = []
    for index in range(count):
        config = setup.part_dir / f"sim{index + 1}.toml"
        config.write_text(_sim_toml(rate // count, index, setup.args))
        specs.append((_bus_name(index), _sim_args(config)))
    return await setup.children.start(specs, setup.env, setup.part_dir)


def _bus_name(index: int) -> str:
    return "sim" if index == 0 else f"sim{index + 1}"


_FOLLOW_VENUES = ("ingest", "bars")  # the services that read the venues themselves (--venue)


async def start_services(setup: Setup, names: Sequence[str], sims: Sequence[Child]) -> dict[str, Child]:
    venues = [f"--venue={sim.name}={sim.address}" for sim in sims]
    common_args = ["--host", HOST, "--port", "0", "--metrics-port", "-1"]
    specs = [
        (n, [n, *common_args, *(venues if n in _FOLLOW_VENUES else ()), *_own_args(setup, n)]) for n in names
    ]
    started = await setup.children.start(specs, setup.env, setup.part_dir)
    return {child.name: child for child in started}


def _own_args(setup: Setup, name: str) -> list[str]:
    linger = {"recorder": setup.args.recorder_linger_ms, "bridge": setup.args.bridge_linger_ms}.get(name)
    return ["--linger-ms", str(linger)] if linger is not None else []


async def venue_events(setup: Setup, sims: Sequence[Child]) -> int | None:
    """Events the sims made on the channels ingest follows (Admin/GetStatus events_total); None
    when a sim does not answer in time (a saturated sim can take seconds to)."""
    total = 0
    for sim in sims:
        async with grpc.aio.insecure_channel(sim.address) as channel:
            try:
                status = await admin_grpc.AdminStub(channel).GetStatus(
                    admin.GetStatusRequest(), metadata=setup.metadata or None, timeout=_STATUS_TIMEOUT_S
                )
            except grpc.aio.AioRpcError as exc:
                print(f"  {sim.name} GetStatus: {exc.code().name}; its rate is unknown for this window")
                return None
        total += sum(s.events_total for s in status.streams if s.channel in _INGESTED)
    return total


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


async def bus_streams(redis: Any, pattern: str = "md.*") -> list[str]:
    return sorted({_text(name) async for name in redis.scan_iter(match=pattern, count=1000, _type="STREAM")})


async def bus_state(redis: Any) -> dict[str, Any]:
    """Per stream: entries added and each group's lag and pending; totals per group (md.* and bars.*)."""
    streams: dict[str, Any] = {}
    groups: dict[str, dict[str, int]] = {}
    for stream in await bus_streams(redis, "md.*") + await bus_streams(redis, "bars.*"):
        info = await redis.xinfo_stream(stream)
        mine = {}
        for group in await redis.xinfo_groups(stream):
            name, lag, pending = _text(group["name"]), group.get("lag"), int(group["pending"])
            mine[name] = {"lag": lag, "pending": pending}
            total = groups.setdefault(name, {"lag": 0, "pending": 0, "lag_unknown": 0})
            total["pending"] += pending
            if lag is None:
                total["lag_unknown"] += 1
            else:
                total["lag"] += int(lag)
        streams[stream] = {
            "entries_added": int(info["entries-added"]),
            "length": int(info["length"]),
            "groups": mine,
        }
    market_added = sum(s["entries_added"] for name, s in streams.items() if name.startswith("md."))
    return {"streams": streams, "groups": groups, "market_entries_added": market_added}


async def capture_entries(
    redis: Any, before: dict[str, Any], after: dict[str, Any], total: int
) -> list[tuple[str, bytes]]:
    """The latest entries of every md.* stream, in proportion to what each got in the window."""
    added = {
        name: s["entries_added"] - before["streams"].get(name, {}).get("entries_added", 0)
        for name, s in after["streams"].items()
        if name.startswith("md.")
    }
    whole = sum(added.values()) or 1
    captured: list[tuple[str, bytes]] = []
    for stream, count in added.items():
        wanted = max(1, round(total * count / whole)) if count else 0
        for _, fields in await redis.xrevrange(stream, count=wanted) if wanted else []:
            captured.append((stream, fields[b"d"]))
    return captured


# ---------------------------------------------------------------- the LiveData subscriber


class LiveReader:
    """One LiveData subscriber of everything. Counts what arrives inside the window and the latency
    of each message's first (oldest) event, venue stamp to receipt."""

    def __init__(self) -> None:
        self.window_ns = (0, 0)
        self.events = 0
        self.events_total = 0
        self.messages = 0
        self.gaps = 0  # messages that open with a GAP notice: the bridge conflated this subscriber
        self.latencies_ns: array[int] = array("q")
        self.error: str | None = None

    async def run(self, address: str, metadata: tuple[tuple[str, str], ...]) -> None:
        request = lv.SubscribeRequest(kinds=_ALL_KINDS, overflow_policy=md.OVERFLOW_POLICY_CONFLATE)
        async with grpc.aio.insecure_channel(address, options=common.CHANNEL_OPTIONS) as channel:
            call: Any = lv_grpc.LiveDataStub(channel).Subscribe(request, metadata=metadata or None)
            try:
                async for response in call:
                    self._add(response)
            except grpc.aio.AioRpcError as exc:
                if exc.code() != grpc.StatusCode.CANCELLED:
                    self.error = f"{exc.code().name}: {exc.details()}"

    def _add(self, response: lv.SubscribeResponse) -> None:
        now_ns = time.time_ns()
        events = response.events
        count = len(events) + len(response.bars)
        self.events_total += count
        self.messages += 1
        if self.messages > 1 and events and events[0].notice.kind == md.NOTICE_KIND_GAP:
            self.gaps += 1
        start, end = self.window_ns
        if start <= now_ns < end:
            self.events += count
            if events:
                self.latencies_ns.append(now_ns - events[0].ts_recv_ns)

    def summary(self, seconds: float) -> dict[str, Any]:
        latencies_ms = [ns / 1e6 for ns in self.latencies_ns]
        return {
            "events_per_s": self.events / seconds,
            "messages": self.messages,
            "gap_messages": self.gaps,
            "latency_ms_first_event_of_message": {
                "p50": common.percentile(latencies_ms, 50),
                "p99": common.percentile(latencies_ms, 99),
                "samples": len(latencies_ms),
            },
            "error": self.error,
        }


# ---------------------------------------------------------------- the database side of a window


def _ts(ns: int) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(ns / 1e9, datetime.UTC)


async def present_tables(db: Any) -> list[str]:
    rows = await db.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename = ANY($1::text[])",
        list(_ALL_TABLES),
    )
    found = {r["tablename"] for r in rows}
    return [t for t in _ALL_TABLES if t in found]


async def window_rows(db: Any, t0_ns: int, t1_ns: int) -> dict[str, Any]:
    """Rows recorded in [t0, t1): per table, per second, and their venue -> commit latency."""
    tables = await present_tables(db)
    where = "recorded_at >= $1 AND recorded_at < $2"
    counts = {
        t: int(await db.fetchval(f"SELECT count(*) FROM {t} WHERE {where}", _ts(t0_ns), _ts(t1_ns)))
        for t in tables
    }
    union = " UNION ALL ".join(f"SELECT recorded_at FROM {t} WHERE {where}" for t in tables)
    per_second = await db.fetch(
        f"SELECT floor(extract(epoch FROM recorded_at)::float8 - $3::float8)::int AS s, count(*) AS n"
        f" FROM ({union}) x GROUP BY 1 ORDER BY 1",
        _ts(t0_ns),
        _ts(t1_ns),
        t0_ns / 1e9,
    )
    seconds = max(1, round((t1_ns - t0_ns) / 1e9))
    windows = [0] * seconds
    for row in per_second:
        if 0 <= row["s"] < seconds:
            windows[row["s"]] += int(row["n"])
    latency = await _latency(db, [t for t in _MARKET_TABLES if t in tables], t0_ns, t1_ns)
    return {"rows_by_table": counts, "rows": sum(counts.values()), "windows": windows, "latency_ms": latency}


async def integrity(db: Any) -> dict[str, int]:
    """Every book delta has its symbol's next sequence number: holes are deltas missing between
    a book's first and last recorded one (none expected: ingest resumes instead of losing), and
    gap notices are where the pipeline itself says events may be missing."""
    tables = await present_tables(db)
    if "book_events" not in tables:
        return {}
    row = await db.fetchrow(
        "SELECT coalesce(sum(span - n), 0) AS holes, count(*) AS books FROM ("
        " SELECT max(sequence) - min(sequence) + 1 AS span, count(*) AS n FROM book_events"
        " WHERE NOT snapshot GROUP BY venue, symbol) x"
    )
    notices = int(await db.fetchval("SELECT count(*) FROM notices")) if "notices" in tables else 0
    return {"book_sequence_holes": int(row["holes"]), "books": int(row["books"]), "gap_notices": notices}


async def _latency(db: Any, tables: list[str], t0_ns: int, t1_ns: int) -> dict[str, Any]:
    if not tables:
        return {}
    ms = "extract(epoch FROM recorded_at)::float8 * 1000.0::float8 - ts_recv_ns / 1000000.0::float8"
    union = " UNION ALL ".join(
        f"SELECT '{t}'::text AS t, {ms} AS ms FROM {t} WHERE recorded_at >= $1 AND recorded_at < $2"
        for t in tables
    )
    rows = await db.fetch(
        "SELECT t, count(*) AS n, percentile_cont(ARRAY[0.5, 0.9, 0.99]) WITHIN GROUP (ORDER BY ms) AS q,"
        f" max(ms) AS worst FROM ({union}) x GROUP BY ROLLUP (t)",
        _ts(t0_ns),
        _ts(t1_ns),
    )
    out: dict[str, Any] = {}
    for row in rows:
        q = row["q"] or [math.nan] * 3
        out[row["t"] or "all"] = {
            "rows": int(row["n"]),
            "p50": q[0],
            "p90": q[1],
            "p99": q[2],
            "max": row["worst"],
        }
    return out


# ---------------------------------------------------------------- (a) + (b): end to end


def _log_summary(children: Sequence[Child]) -> dict[str, Any]:
    """Per process: warnings and errors it logged (a few distinct samples), for the report."""
    out = {}
    for child in children:
        lines = child.log_lines(" WARNING ") + child.log_lines(" ERROR ") + child.log_lines("Traceback")
        lines = [line for line in lines if "AUTH IS OFF" not in line]
        distinct: list[str] = []
        for line in lines:
            text = line.split(" ", 4)[-1][:240]  # without the timestamp and level
            if text not in distinct:
                distinct.append(text)
        out[child.name] = {"warnings_and_errors": len(lines), "samples": distinct[:4]}
    return out


def _profile(children: Sequence[Child], out_dir: Path, tag: str, seconds: float) -> asyncio.Future[list[str]]:
    """py-spy on each child at once (started now, awaited later)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [common.record_profile(c.pid, out_dir / f"{tag}-{c.name}.raw", seconds) for c in children]
    return asyncio.gather(*jobs)


async def run_e2e(setup: Setup, rate: int, repeat: int, profile_dir: Path | None = None) -> dict[str, Any]:
    args = setup.args
    await reset(setup)
    setup.part = f"e2e-{rate}-run{repeat + 1}" if repeat >= 0 else f"e2e-{rate}-profiled"
    count = _sim_count(rate, args.per_sim_max, args.load)
    sims: list[Child] = []
    services: dict[str, Child] = {}
    reader_task: asyncio.Task[None] | None = None
    try:
        events = int(rate * (args.warmup + args.duration + 15))  # the window and a margin
        sims = await start_sims(setup, rate, count, events, subscribers=len(_FOLLOW_VENUES))
        services = await start_services(setup, _SERVICES, sims)
        reader = LiveReader()
        if not args.no_subscriber:
            reader_task = asyncio.create_task(reader.run(services["bridge"].address, setup.metadata))
        await asyncio.sleep(args.warmup)
        result = await _window(setup, rate, sims, services, reader, profile_dir)
    finally:
        if reader_task is not None:
            reader_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader_task
        everything = [*services.values(), *sims]
        codes = await setup.children.stop(everything)
    result["db"] = await window_rows(setup.db, result["t0_ns"], result["t1_ns"])
    result["integrity"] = await integrity(setup.db)
    committed = result["db"]["rows"] / result["seconds"]
    result.update(
        configured_events_per_s=rate,
        repeat=repeat,
        sims=count,
        committed_events_per_s=committed,
        committed_windows_median=common.median(result["db"]["windows"]),
        committed_share=committed / result["venue_events_per_s"] if result["venue_events_per_s"] else None,
        exit_codes=codes,
        logs=_log_summary(everything),
        logs_dir=str(setup.part_dir),
    )
    result["recorder_kept_up"] = _kept_up(result)
    result["cpu_us_per_event"] = _cpu_per_event(result)
    return result


def _cpu_per_event(result: dict[str, Any]) -> dict[str, float]:
    """CPU time per event of each process, in µs: what one event costs it (the recorder and
    PostgreSQL per event committed, the others per event the venues made)."""
    cpu = result["cpu_percent_of_one_core"]
    out = {}
    for name in ("sims", "ingest", "recorder", "bars", "bridge", "redis", "postgres"):
        rate = (
            result["committed_events_per_s"]
            if name in ("recorder", "postgres")
            else result["venue_events_per_s"]
        )
        out[name] = cpu.get(name, math.nan) * 1e4 / rate if rate else math.nan
    out["pipeline"] = sum(v for k, v in out.items() if k != "sims")
    bench = (
        cpu.get("bench", math.nan) * 1e4 / result["venue_events_per_s"] if result["venue_events_per_s"] else 0
    )
    out["all"] = out["pipeline"] + out["sims"] + bench  # with the LiveData subscriber (this script)
    return out


async def _window(
    setup: Setup,
    rate: int,
    sims: list[Child],
    services: dict[str, Child],
    reader: LiveReader,
    profile_dir: Path | None,
) -> dict[str, Any]:
    """The steady window: venue totals, bus state and CPU at both ends, recorder lag each second."""
    seconds = setup.args.duration
    pids = {"sims": [s.pid for s in sims]} | {name: [child.pid] for name, child in services.items()}
    pids |= {"redis": [setup.redis_pid], **(await pg_pids(setup))}
    before_events, before_bus = await venue_events(setup, sims), await bus_state(setup.redis)
    before_logs = _log_counts(sims, services)
    cpu = CpuGroups(pids)
    t0_ns, start = time.time_ns(), time.monotonic()
    reader.window_ns = (t0_ns, t0_ns + seconds * 1_000_000_000)
    profiles = None
    if profile_dir is not None:
        chosen = [c for c in [*sims, *services.values()] if c.name in setup.args.profile_processes]
        profiles = _profile(chosen, profile_dir, f"e2e-{rate}", min(10, seconds))
    lag_series = []
    for second in range(1, seconds + 1):
        await asyncio.sleep(max(0.0, start + second - time.monotonic()))
        if second % 2 == 0 or second == seconds:
            groups = (await bus_state(setup.redis))["groups"].get("recorder", {})
            lag_series.append((second, groups.get("lag"), groups.get("pending")))
    t1_ns = time.time_ns()
    shares = cpu.read()
    after_logs = _log_counts(sims, services)
    after_events, after_bus = await venue_events(setup, sims), await bus_state(setup.redis)
    captured = await capture_entries(setup.redis, before_bus, after_bus, setup.args.capture_entries)
    setup.captures[rate] = captured
    elapsed = (t1_ns - t0_ns) / 1e9
    return {
        "t0_ns": t0_ns,
        "t1_ns": t1_ns,
        "seconds": elapsed,
        "venue_events_per_s": (after_events - before_events) / elapsed
        if after_events is not None and before_events is not None
        else math.nan,
        "bus_entries_per_s": (after_bus["market_entries_added"] - before_bus["market_entries_added"])
        / elapsed,
        "groups_at_start": before_bus["groups"],
        "groups_at_end": after_bus["groups"],
        "recorder_lag_series": lag_series,
        "fell_behind_warnings": after_logs[0] - before_logs[0],
        "ingest_stream_losses": after_logs[1] - before_logs[1],
        "bridge_subscriber": reader.summary(elapsed) if not setup.args.no_subscriber else None,
        "cpu_percent_of_one_core": shares,
        "profiles": list(await profiles) if profiles is not None else None,
    }


def _log_counts(sims: Sequence[Child], services: dict[str, Child]) -> tuple[int, int]:
    """(times a sim fell behind and skipped ahead, streams ingest lost and resubscribed) so far."""
    fell = sum(len(s.log_lines("fell")) for s in sims)
    ingest = services.get("ingest")
    return fell, len(ingest.log_lines("stream lost")) if ingest is not None else 0


def _kept_up(result: dict[str, Any]) -> bool:
    """At the window's end the recorder had at most 2 s of entries outstanding, and it committed at
    least 95 % of what the venues made in the window."""
    end = result["groups_at_end"].get("recorder", {})
    outstanding = end.get("lag", 0) + end.get("pending", 0)
    share = result["committed_share"] or 0.0
    return outstanding <= max(10, 2 * result["bus_entries_per_s"]) and share >= 0.95


# ---------------------------------------------------------------- (a): drain capacity


async def run_drain(setup: Setup, repeat: int, profile_dir: Path | None = None) -> dict[str, Any]:
    args = setup.args
    await reset(setup)
    setup.part = f"drain-run{repeat + 1}" if repeat >= 0 else "drain-profiled"
    count = _sim_count(args.drain_rate, args.per_sim_max, args.load)
    started: list[Child] = []
    try:
        sims = await start_sims(setup, args.drain_rate, count, events=int(args.drain_events * 1.2))
        started += sims
        services = await start_services(setup, ["ingest"], sims)
        started += services.values()
        made = await _accumulate(setup, sims)
        # Ingest first: it flushes what it holds and the bus stops growing at once (a stopping
        # sim would go on making events for a while).
        await setup.children.stop([services["ingest"]])
        await setup.children.stop(sims)
        streams = await bus_streams(setup.redis)
        entries = sum([int(await setup.redis.xlen(s)) for s in streams])
        spawned_ns = time.time_ns()
        recorder = (await start_services(setup, ["recorder"], sims))["recorder"]
        started.append(recorder)
        serving_ns = time.time_ns()
        cpu = CpuGroups({"recorder": [recorder.pid], "redis": [setup.redis_pid], **(await pg_pids(setup))})
        profiles = None
        if profile_dir is not None:
            profiles = _profile([recorder], profile_dir, "drain", 15)
        drained, polls = await _wait_drained(setup.redis, streams, args.drain_timeout)
        shares = cpu.read()
        notes = list(await profiles) if profiles is not None else None
    finally:
        codes = await setup.children.stop(started)
    result = await _drain_result(
        setup, repeat, made, entries, spawned_ns, serving_ns, drained, polls, shares, codes, started
    )
    result["profiles"] = notes
    return result


async def _accumulate(setup: Setup, sims: list[Child]) -> int:
    """Until the sims made --drain-events more events (bounded by 3x the time that should take)."""
    target = setup.args.drain_events
    deadline = time.monotonic() + 3 * target / setup.args.drain_rate + 30
    first = made = await venue_events(setup, sims) or 0
    while made - first < target and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
        made = await venue_events(setup, sims) or made
    return made - first


async def _wait_drained(redis: Any, streams: list[str], timeout_s: float) -> tuple[bool, int]:
    """Until the recorder group has nothing undelivered or unacknowledged on any md stream."""
    deadline = time.monotonic() + timeout_s
    polls = 0
    while time.monotonic() < deadline:
        polls += 1
        behind = 0
        for stream in streams:
            last = _text((await redis.xinfo_stream(stream))["last-generated-id"])
            groups = {_text(g["name"]): g for g in await redis.xinfo_groups(stream)}
            group = groups.get("recorder")
            if group is None:
                behind += 1
                continue
            lag = group.get("lag")
            undelivered = int(lag) if lag is not None else int(_text(group["last-delivered-id"]) != last)
            behind += undelivered + int(group["pending"])
        if behind == 0:
            return True, polls
        await asyncio.sleep(0.25)
    return False, polls


async def _drain_result(
    setup: Setup,
    repeat: int,
    made: int,
    entries: int,
    spawned_ns: int,
    serving_ns: int,
    drained: bool,
    polls: int,
    shares: dict[str, float],
    codes: dict[str, int],
    started: list[Child],
) -> dict[str, Any]:
    tables = await present_tables(setup.db)
    rows = 0
    first = last = None
    for table in tables:
        row = await setup.db.fetchrow(
            f"SELECT count(*) AS n, min(recorded_at) AS a, max(recorded_at) AS b FROM {table}"
        )
        rows += int(row["n"])
        if row["a"] is not None:
            first = row["a"] if first is None else min(first, row["a"])
            last = row["b"] if last is None else max(last, row["b"])
    last_ns = int(last.timestamp() * 1e9) if last is not None else serving_ns
    first_ns = int(first.timestamp() * 1e9) if first is not None else serving_ns
    rate = rows / max(1e-9, (last_ns - serving_ns) / 1e9)
    return {
        "repeat": repeat,
        "drain_rate": setup.args.drain_rate,
        "events_made_while_accumulating": made,
        "bus_entries": entries,
        "rows_committed": rows,
        "integrity": await integrity(setup.db),
        "ingest_stream_losses": sum(len(c.log_lines("stream lost")) for c in started if c.name == "ingest"),
        "logs_dir": str(setup.part_dir),
        "drained": drained,
        "polls": polls,
        "seconds_serving_to_last_commit": (last_ns - serving_ns) / 1e9,
        "seconds_first_to_last_commit": (last_ns - first_ns) / 1e9,
        "recorder_start_s": (serving_ns - spawned_ns) / 1e9,
        "events_per_s": rate,
        "events_per_entry": rows / entries if entries else None,
        "cpu_percent_of_one_core": shares,
        "cpu_us_per_event": {
            name: shares[name] * 1e4 / rate if rate else math.nan for name in ("recorder", "postgres")
        },
        "exit_codes": codes,
        "logs": _log_summary(started),
    }


# ---------------------------------------------------------------- (c): baselines


async def xadd_baseline(setup: Setup, rate: int, repeat: int) -> dict[str, Any]:
    """Ingest's own writer (Publisher: pipelined XADD, MAXLEN ~) alone, fed the captured entries."""
    captured = setup.captures.get(rate) or []
    if not captured:
        return {"rate_of_entries": rate, "repeat": repeat, "error": "no entries captured"}
    await setup.redis.flushdb()
    entries = [(f"bench.xadd.{stream}", data) for stream, data in captured]
    events = [len(decode({b"d": data}).market.events) for _, data in captured]
    publisher = Publisher(setup.redis, Retention(2000.0, 10.0))  # ingest's default mesh sizing
    pipeline, seconds = setup.args.xadd_pipeline, setup.args.baseline_seconds
    cpu = CpuGroups({"redis": [setup.redis_pid]})
    written = events_written = bytes_written = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(pipeline):
            index = written % len(entries)
            publisher.add(*entries[index])
            events_written += events[index]
            bytes_written += len(entries[index][1])
            written += 1
        await publisher.flush()
    elapsed = time.perf_counter() - start
    shares = cpu.read()
    await setup.redis.flushdb()
    return {
        "rate_of_entries": rate,
        "repeat": repeat,
        "pipeline": pipeline,
        "entries_per_s": written / elapsed,
        "events_per_s": events_written / elapsed,
        "mib_per_s": bytes_written / elapsed / 2**20,
        "events_per_entry": sum(events) / len(events),
        "bytes_per_entry": sum(len(d) for _, d in captured) / len(captured),
        "cpu_percent_of_one_core": shares,
        "redis_us_per_event": shares["redis"] * 1e4 / (events_written / elapsed),
        "us_per_event": (shares["redis"] + shares["bench"]) * 1e4 / (events_written / elapsed),
    }


_SCRATCH_DDL = """
CREATE TABLE bench_copy_trades (
    venue text NOT NULL CHECK (venue <> ''),
    symbol text NOT NULL CHECK (symbol <> ''),
    ts_event_ns bigint NOT NULL,
    ts_recv_ns bigint NOT NULL,
    trade_id text NOT NULL,
    price numeric NOT NULL,
    size numeric NOT NULL,
    taker_side text CHECK (taker_side IN ('buy', 'sell')),
    recorded_at timestamptz NOT NULL DEFAULT clock_timestamp()
    {key}
)
"""
_COPY_COLUMNS = ("venue", "symbol", "ts_event_ns", "ts_recv_ns", "trade_id", "price", "size", "taker_side")
_SIDES = {1: "buy", 2: "sell"}


def _trade_templates(setup: Setup) -> list[tuple[Any, ...]]:
    """Real trades from the captured entries (any rate) as rows of the trades table's columns."""
    out: list[tuple[Any, ...]] = []
    for captured in setup.captures.values():
        for stream, data in captured:
            if stream.endswith(".trades"):
                for e in decode({b"d": data}).market.events:
                    t = e.trade
                    side = _SIDES.get(t.taker_side)
                    out.append(
                        (
                            e.venue,
                            e.symbol,
                            e.ts_event_ns,
                            e.ts_recv_ns,
                            t.trade_id,
                            Decimal(t.price),
                            Decimal(t.size),
                            side,
                        )
                    )
    return out or [("sim", "BTC/USDT", 0, 0, "0", Decimal("100.01"), Decimal("0.150"), "buy")]


def _copy_batch(templates: list[tuple[Any, ...]], size: int, batch: int) -> list[tuple[Any, ...]]:
    """`size` rows, unique on the trades key: trade ids carry the batch and row number."""
    rows = []
    for n in range(size):
        venue, symbol, ts_event, ts_recv, trade_id, price, qty, side = templates[n % len(templates)]
        rows.append((venue, symbol, ts_event, ts_recv, f"{trade_id}-{batch}-{n}", price, qty, side))
    return rows


async def copy_baseline(setup: Setup, keyed: bool, repeat: int) -> dict[str, Any]:
    """asyncpg copy_records_to_table of trade rows, one COPY (its own transaction) per batch; rows/s
    over the time inside COPY (building the rows is not timed)."""
    seconds, size = setup.args.baseline_seconds, setup.args.copy_rows
    templates = _trade_templates(setup)
    conn = await asyncpg.connect(setup.db_url, timeout=_CALL_TIMEOUT_S, command_timeout=120)
    try:
        await conn.execute("DROP TABLE IF EXISTS bench_copy_trades")
        key = ", PRIMARY KEY (venue, symbol, ts_event_ns, trade_id)" if keyed else ""
        await conn.execute(_SCRATCH_DDL.format(key=key))
        cpu = CpuGroups(await pg_pids(setup))  # the COPY connection's backend is one of ours
        began = time.monotonic()
        in_copy, rows, batches = 0.0, 0, 0
        deadline = time.monotonic() + 4 * seconds + 10
        while in_copy < seconds and time.monotonic() < deadline:
            records = _copy_batch(templates, size, batches)
            start = time.perf_counter()
            await conn.copy_records_to_table("bench_copy_trades", records=records, columns=_COPY_COLUMNS)
            in_copy += time.perf_counter() - start
            rows += len(records)
            batches += 1
        shares, wall_s = cpu.read(), time.monotonic() - began
        await conn.execute("DROP TABLE bench_copy_trades")
    finally:
        await conn.close()
    return {
        "table": "trades-shaped, primary key" if keyed else "trades-shaped, no index",
        "keyed": keyed,
        "repeat": repeat,
        "rows_per_copy": size,
        "rows_per_s": rows / in_copy if in_copy else math.nan,
        "rows": rows,
        "cpu_percent_of_one_core": shares,
        "postgres_us_per_row": shares["postgres"] / 100 * wall_s * 1e6 / rows if rows else math.nan,
    }


def _all_captured(setup: Setup) -> list[tuple[str, bytes]]:
    return [entry for captured in setup.captures.values() for entry in captured]


async def copy_same_rows(setup: Setup, repeat: int) -> dict[str, Any]:
    """The captured entries' own rows, COPied as the recorder does, alone (bench/durable_floor.py)."""

    async def meter() -> CpuGroups:
        return CpuGroups(await pg_pids(setup))

    args = setup.args
    await reset(setup)  # the window's rows are the same rows: their keys must be free
    out = await durable_floor.copy_same_rows(
        setup.db_url, _all_captured(setup), args.copy_rows, args.baseline_seconds, meter
    )
    return {"repeat": repeat, **out}


async def latency_floor(setup: Setup, repeat: int) -> dict[str, Any]:
    """A venue step's entries XADDed, read, COPied and committed, alone (bench/durable_floor.py)."""
    args = setup.args
    await reset(setup)
    captured = setup.captures.get(args.latency_rate) or _all_captured(setup)
    per_step = max(1, args.latency_rate * args.tick_interval_ms // 1000)
    out = await durable_floor.latency_floor(setup.redis, setup.db_url, captured, per_step, args.floor_steps)
    return {"repeat": repeat, "rate": args.latency_rate, **out}


# ---------------------------------------------------------------- the run, the tables


async def run_all(setup: Setup, save: Callable[[dict[str, Any]], object]) -> dict[str, Any]:
    """Every part, repeats interleaved. A part that fails is recorded under "failed" and the run
    goes on; what is measured so far is saved after each part."""
    args = setup.args
    runs: dict[str, list[dict[str, Any]]] = {
        k: [] for k in ("e2e", "drains", "xadd", "copy", "copy_rows", "latency_floor", "profiled", "failed")
    }

    async def part(kind: str, what: str, job: Awaitable[dict[str, Any]]) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {what} ...", flush=True)
        try:
            runs[kind].append(await job)
        except Exception as exc:  # the part's processes are stopped by then; the others go on
            print(f"  failed: {type(exc).__name__}: {exc}", flush=True)
            runs["failed"].append({"part": what, "error": f"{type(exc).__name__}: {exc}"})
        save(runs)

    for repeat in range(args.repeats):
        for rate in args.rates:
            await part("e2e", f"end to end at {rate:,}/s, run {repeat + 1}", run_e2e(setup, rate, repeat))
        if args.drain_events > 0:
            await part("drains", f"drain, run {repeat + 1}", run_drain(setup, repeat))
        for rate in args.rates:
            await part("xadd", f"XADD baseline ({rate:,}/s entries)", xadd_baseline(setup, rate, repeat))
        for keyed in (False, True):
            await part("copy", f"COPY baseline (key {keyed})", copy_baseline(setup, keyed, repeat))
        await part("copy_rows", "COPY of the same rows alone", copy_same_rows(setup, repeat))
        await part(
            "latency_floor", "latency floor (a step XADDed -> committed)", latency_floor(setup, repeat)
        )
    if args.py_spy is not None:
        rate = args.profile_rate or max(args.rates)
        await part("profiled", "profiled end to end", run_e2e(setup, rate, -1, args.py_spy))
        if args.drain_events > 0:
            await part("profiled", "profiled drain", run_drain(setup, -1, args.py_spy))
    return runs


def _ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator == denominator and denominator else None


def summarise(runs: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    copy_raw = common.median([c["rows_per_s"] for c in runs["copy"] if not c["keyed"]])
    copy_keyed = common.median([c["rows_per_s"] for c in runs["copy"] if c["keyed"]])
    per_rate = [_rate_summary(runs, rate, copy_raw) for rate in args.rates]
    drain = common.median([d["events_per_s"] for d in runs["drains"]])
    return {
        "per_rate": per_rate,
        "drain_events_per_s_median": drain,
        "drain_over_copy": _ratio(drain, copy_raw),
        "copy_rows_per_s_median": copy_raw,
        "copy_keyed_rows_per_s_median": copy_keyed,
        "goals": _goals(per_rate, args),
        "figures": _figures(runs, args),
    }


# Per figure: (name, goal, the e2e run's value, the same repeat's floor, better when "lower"/"higher").
_Pick = Callable[[dict[str, Any]], float]


def _figures(runs: dict[str, Any], args: argparse.Namespace) -> list[dict[str, Any]]:
    """Each goal's figure beside its floor measured in the same repeat: medians over the repeats of
    the figure, the floor and their ratio (the ratio of each repeat's pair, not of the medians)."""
    out = []
    for rate in args.rates:

        def xadd(r: int, key: str, rate: int = rate) -> float:
            found = [
                x.get(key, math.nan)
                for x in runs["xadd"]
                if x.get("rate_of_entries") == rate and x["repeat"] == r
            ]
            return float(found[0]) if found else math.nan

        def copy(r: int, key: str) -> float:
            found = [c.get(key, math.nan) for c in runs["copy_rows"] if c["repeat"] == r]
            return float(found[0]) if found else math.nan

        specs: list[tuple[str, str, _Pick, Callable[[int], float]]] = [
            (
                f"durable path µs/event at {rate:,}/s",
                "≤ 12",
                lambda e: e["cpu_us_per_event"]["pipeline"],
                lambda r: (
                    xadd(r, "us_per_event") + copy(r, "postgres_us_per_row") + copy(r, "bench_us_per_row")
                ),
            ),
            (
                f"PostgreSQL µs/event at {rate:,}/s",
                "≤ 6",
                lambda e: e["cpu_us_per_event"]["postgres"],
                lambda r: copy(r, "postgres_us_per_row"),
            ),
            (
                f"Redis µs/event at {rate:,}/s",
                "",
                lambda e: e["cpu_us_per_event"]["redis"],
                lambda r: xadd(r, "redis_us_per_event"),
            ),
            (
                f"committed/s at {rate:,}/s offered",
                "≥ 100,000" if rate >= 100_000 else "",
                lambda e: e["committed_events_per_s"],
                lambda r: min(xadd(r, "events_per_s"), copy(r, "rows_per_s")),
            ),
        ]
        if rate == args.latency_rate and args.load != "encoded":  # a recording's times: no latency
            specs.append(
                (
                    f"p99 ms receive -> commit at {rate:,}/s",
                    "≤ 25",
                    lambda e: _lat(e, "p99"),
                    lambda r: next(
                        (f["p99_ms"] for f in runs["latency_floor"] if f["repeat"] == r and "p99_ms" in f),
                        math.nan,
                    ),
                )
            )
        mine = [e for e in runs["e2e"] if e["configured_events_per_s"] == rate]
        for name, goal, value, floor in specs:
            pairs = [(float(value(e)), float(floor(e["repeat"]))) for e in mine]
            out.append(
                {
                    "figure": name,
                    "goal": goal,
                    "runs": [v for v, _ in pairs],
                    "now_median": common.median([v for v, _ in pairs]),
                    "floor_median": common.median([f for _, f in pairs]),
                    "ratio_median": common.median([v / f for v, f in pairs if f == f and f]),
                }
            )
    return out


def _rate_summary(runs: dict[str, Any], rate: int, copy_raw: float) -> dict[str, Any]:
    mine = [r for r in runs["e2e"] if r["configured_events_per_s"] == rate]
    xadds = [x for x in runs["xadd"] if x.get("rate_of_entries") == rate and "events_per_s" in x]
    xadd = common.median([x["events_per_s"] for x in xadds])
    committed = [r["committed_events_per_s"] for r in mine]
    return {
        "configured_events_per_s": rate,
        "sims": mine[0]["sims"] if mine else None,
        "venue_events_per_s_median": common.median([r["venue_events_per_s"] for r in mine]),
        "committed_events_per_s_median": common.median(committed),
        "committed_events_per_s_range": [min(committed), max(committed)] if committed else None,
        "recorder_kept_up": [r["recorder_kept_up"] for r in mine],
        "latency_p50_ms_median": common.median([_lat(r, "p50") for r in mine]),
        "latency_p99_ms_median": common.median([_lat(r, "p99") for r in mine]),
        "cpu_us_per_event_median": {
            name: common.median([r["cpu_us_per_event"][name] for r in mine]) for name in _US_NAMES
        },
        "xadd_events_per_s_median": xadd,
        "committed_over_xadd": _ratio(common.median(committed), xadd),
        "committed_over_copy": _ratio(common.median(committed), copy_raw),
    }


def _lat(run: dict[str, Any], q: str) -> float:
    return float(run["db"]["latency_ms"].get("all", {}).get(q, math.nan))


def _goals(per_rate: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    best = max(per_rate, key=lambda r: r["committed_events_per_s_median"], default=None)
    at_latency_rate = next((r for r in per_rate if r["configured_events_per_s"] == args.latency_rate), None)
    p99 = at_latency_rate["latency_p99_ms_median"] if at_latency_rate else math.nan
    sustained = best["committed_events_per_s_median"] if best else math.nan
    kept = bool(best and all(best["recorder_kept_up"]))
    throughput = {
        "goal_events_per_s": 100_000,
        "best_committed_median": sustained,
        "at_configured": best["configured_events_per_s"] if best else None,
        "met": bool(sustained >= 100_000 and kept),
    }
    latency = {
        "goal_p99_ms": 250,
        "at_events_per_s": args.latency_rate,
        "p99_ms_median": p99,
        "met": bool(p99 == p99 and p99 < 250),
    }
    return {"throughput": throughput, "latency": latency}


def _pct(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.0f}%"


def _share(ratio: float | None) -> str:
    return "-" if ratio is None or ratio != ratio else f"{100 * ratio:.2g}%"


_E2E_HEADERS = [
    *("configured/s", "run", "sims", "venue/s", "committed/s", "1-s median", "committed÷venue"),
    *("lag+pend end", "kept up", "bridge/s", "p50 ms", "p99 ms", "fell behind", "ingest lost", "holes"),
]
_CPU_NAMES = [
    "sims",
    "ingest",
    "recorder",
    "bars",
    "bridge",
    "redis",
    "postgres",
    "pg shared",
    "bench",
    "others",
    "machine",
]
_US_NAMES = ["sims", "ingest", "recorder", "bars", "bridge", "redis", "postgres", "pipeline", "all"]
_DRAIN_HEADERS = [
    *("run", "rows", "entries", "events/entry", "seconds", "events/s", "drained", "ingest lost", "holes"),
    *("recorder cpu", "postgres cpu", "pg shared", "redis cpu", "recorder µs/ev", "postgres µs/ev"),
]
_XADD_HEADERS = [
    *("XADD of entries from", "run", "events/entry", "bytes/entry", "entries/s", "events/s", "MiB/s"),
    *("bench cpu", "redis cpu"),
]
_COPY_HEADERS = [
    "COPY into",
    "run",
    "rows/COPY",
    "rows/s",
    "bench cpu",
    "postgres cpu",
    "pg shared",
    "postgres µs/row",
]
_SUMMARY_HEADERS = ["configured/s", "committed/s", "p50 ms", "p99 ms", "XADD events/s", "÷ XADD", "÷ COPY"]


def _e2e_row(r: dict[str, Any]) -> list[Any]:
    end = r["groups_at_end"].get("recorder", {})
    bridge = r["bridge_subscriber"] or {}
    return [
        *(r["configured_events_per_s"], r["repeat"] + 1, r["sims"], r["venue_events_per_s"]),
        *(
            r["committed_events_per_s"],
            r["committed_windows_median"],
            _pct(100 * (r["committed_share"] or 0)),
        ),
        f"{end.get('lag', 0)}+{end.get('pending', 0)}",
        "yes" if r["recorder_kept_up"] else "NO",
        bridge.get("events_per_s", math.nan),
        *(_lat(r, "p50"), _lat(r, "p99"), r["fell_behind_warnings"], r["ingest_stream_losses"]),
        r["integrity"].get("book_sequence_holes", "-"),
    ]


def _cpu_row(r: dict[str, Any]) -> list[Any]:
    cpu = r["cpu_percent_of_one_core"]
    return [r["configured_events_per_s"], r["repeat"] + 1, *[_pct(cpu.get(n)) for n in _CPU_NAMES]]


def _drain_row(d: dict[str, Any]) -> list[Any]:
    cpu = d["cpu_percent_of_one_core"]
    return [
        *(d["repeat"] + 1, d["rows_committed"], d["bus_entries"], d["events_per_entry"] or math.nan),
        *(d["seconds_serving_to_last_commit"], d["events_per_s"], "yes" if d["drained"] else "NO"),
        *(d["ingest_stream_losses"], d["integrity"].get("book_sequence_holes", "-")),
        *[_pct(cpu.get(n)) for n in ("recorder", "postgres", "pg shared", "redis")],
        *d["cpu_us_per_event"].values(),
    ]


def _xadd_row(x: dict[str, Any]) -> list[Any]:
    cpu = x["cpu_percent_of_one_core"]
    return [
        *(x["rate_of_entries"], x["repeat"] + 1, x["events_per_entry"], x["bytes_per_entry"]),
        *(x["entries_per_s"], x["events_per_s"], x["mib_per_s"], _pct(cpu["bench"]), _pct(cpu["redis"])),
    ]


def _copy_row(c: dict[str, Any]) -> list[Any]:
    cpu = c["cpu_percent_of_one_core"]
    return [
        *(c["table"], c["repeat"] + 1, c["rows_per_copy"], c["rows_per_s"]),
        *(_pct(cpu["bench"]), _pct(cpu["postgres"]), _pct(cpu["pg shared"]), c["postgres_us_per_row"]),
    ]


def _summary_row(s: dict[str, Any]) -> list[Any]:
    return [
        *(s["configured_events_per_s"], s["committed_events_per_s_median"], s["latency_p50_ms_median"]),
        *(s["latency_p99_ms_median"], s["xadd_events_per_s_median"]),
        *(_share(s["committed_over_xadd"]), _share(s["committed_over_copy"])),
    ]


def _ceiling(rate_summary: dict[str, Any]) -> float:
    """Events/s two cores could carry at this CPU cost per event, with nothing else running."""
    total = rate_summary["cpu_us_per_event_median"]["all"]
    return 2e6 / total if total == total and total else math.nan


def print_tables(result: dict[str, Any]) -> None:
    runs, summary = result["runs"], result["summary"]
    print("\n(a) end to end: committed rows/s in the steady window (all tables), recorder lag at its end")
    common.print_table(_E2E_HEADERS, [_e2e_row(r) for r in runs["e2e"]])
    print("\nCPU, % of one core, over the steady window (machine: 2 cores = 200%)")
    common.print_table(["configured/s", "run", *_CPU_NAMES], [_cpu_row(r) for r in runs["e2e"]])
    print("\nCPU µs per event (recorder, postgres: per event committed; others: per event made); medians")
    common.print_table(
        ["configured/s", *_US_NAMES, "2 cores ÷ all"],
        [
            [s["configured_events_per_s"], *s["cpu_us_per_event_median"].values(), _ceiling(s)]
            for s in summary["per_rate"]
        ],
    )
    if runs["drains"]:
        print("\n(a) drain: the recorder alone empties a backlog (sim and ingest stopped)")
        common.print_table(_DRAIN_HEADERS, [_drain_row(d) for d in runs["drains"]])
    print("\n(c) baselines")
    common.print_table(_XADD_HEADERS, [_xadd_row(x) for x in runs["xadd"] if "events_per_s" in x])
    common.print_table(_COPY_HEADERS, [_copy_row(c) for c in runs["copy"]])
    print("\nsummary (medians): end to end against the baselines")
    common.print_table(_SUMMARY_HEADERS, [_summary_row(s) for s in summary["per_rate"]])
    print(
        f"COPY rows/s: {summary['copy_rows_per_s_median']:,.0f} (no index), "
        f"{summary['copy_keyed_rows_per_s_median']:,.0f} (trades key); drain: "
        f"{summary['drain_events_per_s_median']:,.0f} events/s"
    )
    print("\neach figure beside its floor of the same repeat (XADD alone, COPY of the same rows alone;")
    print("the latency: a step XADDed, read, COPied, committed); medians, ratio = median of each repeat's")
    common.print_table(
        ["figure", "goal", "now", "floor", "now ÷ floor", "runs"],
        [
            [
                f["figure"],
                f["goal"],
                f["now_median"],
                f["floor_median"],
                f"{f['ratio_median']:.2f}x",
                " ".join(f"{v:,.4g}" for v in f["runs"]),
            ]
            for f in summary["figures"]
        ],
    )
    for failure in runs["failed"]:
        print(f"FAILED: {failure['part']}: {failure['error']}")
    t, lat = summary["goals"]["throughput"], summary["goals"]["latency"]
    print(
        f"goal >= 100,000 events/s sustained: best {t['best_committed_median']:,.0f}/s "
        f"(configured {t['at_configured']}): {'MET' if t['met'] else 'NOT MET'}"
    )
    if result["settings"].get("load") == "encoded":
        print("latency: not measured (--load encoded: the events' times are the recording's)")
        return
    print(
        f"goal p99 venue->commit < 250 ms at {lat['at_events_per_s']:,}/s: {lat['p99_ms_median']:,.1f} ms: "
        f"{'MET' if lat['met'] else 'NOT MET'}"
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _rates(text: str) -> list[int]:
    return [_positive(x) for x in text.split(",") if x.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add(
        "--rates",
        type=_rates,
        default=[10_000, 30_000, 60_000, 100_000],
        help="configured events/s (default 10000,30000,60000,100000)",
    )
    add(
        "--duration",
        type=_positive,
        default=20,
        help="steady window per end-to-end run, seconds (default 20)",
    )
    add(
        "--warmup",
        type=float,
        default=8.0,
        help="seconds after every service serves, before the window (default 8)",
    )
    add("--repeats", type=_positive, default=1, help="runs of every part, interleaved (default 1)")
    add(
        "--load",
        choices=("sim", "encoded"),
        default="sim",
        help="the venues: sims, or one venue replaying a recording of the sim, pre-encoded "
        "(bench/encoded_venue.py; its events' times are the recording's: no latency)",
    )
    add(
        "--per-sim-max",
        type=_positive,
        default=50_000,
        help="events/s per sim process; more sims above it (default 50000)",
    )
    add(
        "--symbols",
        type=_positive,
        default=10,
        choices=range(1, 11),
        metavar="1..10",
        help="symbols per sim (default 10)",
    )
    add(
        "--tick-interval-ms",
        type=_positive,
        default=10,
        help="the sims' step and flush interval (default 10)",
    )
    add(
        "--latency-rate",
        type=_positive,
        default=10_000,
        help="the rate the latency goal is judged at (default 10000)",
    )
    add(
        "--drain-events",
        type=int,
        default=1_000_000,
        help="backlog the recorder drains; 0 skips it (default 1000000)",
    )
    add(
        "--drain-rate",
        type=_positive,
        default=50_000,
        help="events/s the sim makes while the backlog builds (default 50000)",
    )
    add("--drain-timeout", type=float, default=240.0, help="seconds the drain may take at most (default 240)")
    add("--baseline-seconds", type=float, default=4.0, help="seconds per baseline measurement (default 4)")
    add(
        "--xadd-pipeline",
        type=_positive,
        default=100,
        help="XADDs per pipelined round trip in the baseline (default 100)",
    )
    add("--copy-rows", type=_positive, default=5_000, help="rows per COPY in the baseline (default 5000)")
    add(
        "--floor-steps",
        type=_positive,
        default=300,
        help="venue steps timed XADD -> commit for the latency floor (default 300)",
    )
    add(
        "--capture-entries",
        type=_positive,
        default=2_000,
        help="bus entries kept from each rate for the XADD baseline",
    )
    add(
        "--redis-db",
        type=int,
        default=14,
        help="logical Redis db to use and FLUSHDB (default 14; the tests use 1..13)",
    )
    add("--no-subscriber", action="store_true", help="no LiveData subscriber on the bridge")
    add("--auth", action="store_true", help="run every service with a random bearer token")
    add(
        "--py-spy",
        type=Path,
        metavar="DIR",
        help="after the runs, one profiled run at the top rate and one drain",
    )
    add("--profile-rate", type=_positive, help="the profiled run's rate (default: the highest of --rates)")
    add(
        "--recorder-linger-ms",
        type=int,
        help="the recorder's --linger-ms (default: the recorder's own default)",
    )
    add(
        "--bridge-linger-ms",
        type=int,
        help="the bridge's --linger-ms (default: the bridge's own default)",
    )
    add(
        "--profile-processes",
        type=lambda text: set(text.split(",")),
        default={"recorder", "bridge"},
        help="what py-spy samples in the profiled run (default recorder,bridge; or sim, sim2, ingest, bars)",
    )
    add("--keep-db", action="store_true", help="do not drop the bench database at the end")
    add(
        "--result",
        default="bus_pipeline",
        help="name of the bench/results/*.json file (default bus_pipeline)",
    )
    return parser


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    return sorted(value) if isinstance(value, set) else value


async def main_async(args: argparse.Namespace, children: Children) -> dict[str, Any]:
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    started, machine, digests = common.now_iso(), common.machine(), source_digests()

    def result(runs: dict[str, Any], partial: bool) -> dict[str, Any]:
        return {
            "benchmark": "bus_pipeline",
            "command": common.command_line(),
            "started": started,
            "finished": None if partial else common.now_iso(),
            "machine": machine,
            "sources_measured": {
                "sha256_12_at_start": digests,
                "changed_during_run": sorted(k for k, v in source_digests().items() if v != digests[k]),
            },
            "auth": args.auth,
            "settings": {k: _jsonable(v) for k, v in vars(args).items()},
            "summary": None if partial else summarise(runs, args),
            "runs": runs,
        }

    async with opened_setup(args, children) as setup:
        try:
            runs = await run_all(setup, lambda runs: common.write_result(args.result, result(runs, True)))
        finally:
            children.stop_all()
    return result(runs, False)


def main() -> None:
    args = _parser().parse_args()
    if args.latency_rate not in args.rates:
        args.rates = sorted({*args.rates, args.latency_rate})
    children = Children()
    atexit.register(children.stop_all)
    try:
        with common.claimed_redis_db(args.redis_db):
            result = uvloop.run(main_async(args, children))
    except (KeyboardInterrupt, asyncio.CancelledError):
        raise SystemExit("bus_pipeline: interrupted; every process it started is stopped") from None
    finally:
        children.stop_all()
    print(
        f"\nbus_pipeline: {args.duration} s windows after {args.warmup} s warm-up, {args.repeats} repeat(s)"
    )
    print_tables(result)
    path = common.write_result(args.result, result)
    print(f"\nresults: {path}")


if __name__ == "__main__":
    main()
