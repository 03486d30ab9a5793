"""The mesh for hours: does anything grow? Each service's memory (RSS) slope, Redis's memory and
streams, the PostgreSQL database's size and the inspector's journals, over a long `trademesh up`.

    .venv/bin/python bench/soak.py --hours 2 [--every-s 60] [--warmup-min 15] [--end-by ISO] --out FILE
    .venv/bin/python bench/soak.py --report FILE [--warmup-min 15]

`trademesh up --free-ports` on its own embedded Redis and PostgreSQL (REDIS_URL and DATABASE_URL
are taken out of its environment: nothing shared is written), its data directory under /tmp, the
sim playing the demo market (trademesh/venues/sim/demo.toml) unless --sim-config names another. Once every
service is healthy, every `--every-s` seconds: each service's RSS (/proc/<pid>/status; the pids
from the serving lines `up` prints, a restarted service's newest; up's own and the embedded
redis-server's too), Redis's used_memory, key count
and every stream's length and memory, the database's size and its largest tables, the log's
size and the machine's load. Each sample is written to FILE as it is taken (the whole file
replaced, so a run stopped early, or killed, leaves every sample before it). The mesh's directory
(its log, the embedded stores' data: the recorder's tables grow ~0.5 GB an hour) is left for a
look afterwards; delete it then.

The report: each service's RSS slope in MB/h by least squares over the samples after
`--warmup-min` (of its last pid: a restart starts afresh, and is said), the same for Redis's
memory and the database's size, and each stream's length at the warm-up's end and at the last
sample. The goal (issue 57): every service's slope at most 2 MB/h after the warm-up.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

ROOT = Path(__file__).resolve().parent.parent
GOAL_MB_PER_H = 2.0
_HEALTHY = "all services healthy"
_START_TIMEOUT_S = 300.0
_STOP_TIMEOUT_S = 60.0
_CALL_TIMEOUT_S = 10.0
_TOP_TABLES = 8
_MB = 1024 * 1024
_REDIS_SERVER = "redis-server"
# `mesh     | advisor serving on 127.0.0.1:4411 (pid 123)`, `... standing by on ...`, and a restart's
# `advisor  | [advisor] restarted (restart 1), serving on 127.0.0.1:4411 (pid 456)`
_SERVING = re.compile(
    r"^(?:mesh\s+\| (\S+)|\S+\s+\| \[(\S+)\] restarted \(restart \d+\),)"
    r" (?:serving|standing by) on \S+ \(pid (\d+)\)"
)
_BUS = re.compile(r"\| bus (\S+), database")


def services(log: str) -> dict[str, int]:
    """Each service's pid, the newest line's (a service restarted by up's supervisor says so again)."""
    found = {}
    for line in log.splitlines():
        match = _SERVING.match(line)
        if match is not None:
            found[match[1] or match[2]] = int(match[3])
    return found


def rss_bytes(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class Mesh:
    """One `trademesh up` run on its own embedded Redis and PostgreSQL."""

    def __init__(self, directory: Path, sim_config: Path | None) -> None:
        self.directory = directory
        self.data_dir = directory / "data"
        self.log_path = directory / "up.log"
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
        command = [sys.executable, "-m", "trademesh.core.cli", "up", "--free-ports", "--status-every", "600",
                   "--data-dir", str(self.data_dir)]  # fmt: skip
        if sim_config is not None:
            command += ["--sim-config", str(sim_config)]
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.redis_url = ""

    @property
    def database_url(self) -> str:
        return f"postgresql://postgres@/postgres?host={self.data_dir / 'postgresql'}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + _START_TIMEOUT_S
        while _HEALTHY not in (text := self.log()):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"soak: the mesh did not start; its log: {self.log_path}\n{text[-3000:]}")
            time.sleep(1.0)
        found = _BUS.search(text)
        if found is None:
            self.stop()
            raise SystemExit(f"soak: no bus URL in the mesh's log {self.log_path}")
        self.redis_url = found[1]

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self) -> None:
        """SIGINT, as Ctrl-C; the whole session killed when it has not stopped in time."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(_STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


def _redis_figures(url: str) -> dict[str, Any]:
    client = redis.Redis.from_url(url, socket_timeout=_CALL_TIMEOUT_S)
    try:
        memory = client.info("memory")
        streams = {}
        for name in sorted(client.scan_iter(_type="STREAM", count=1000)):
            key = name.decode()
            streams[key] = {"length": int(client.xlen(name)), "bytes": int(client.memory_usage(name) or 0)}
        return {
            "used_memory": int(memory["used_memory"]),
            "used_memory_rss": int(memory["used_memory_rss"]),
            "keys": int(client.dbsize()),
            "pid": int(client.info("server")["process_id"]),
            "streams": streams,
        }
    finally:
        client.close()


_TABLES = """
SELECT c.relname AS name, pg_total_relation_size(c.oid) AS bytes
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY 2 DESC LIMIT $1
"""


async def _database_figures(url: str) -> dict[str, Any]:
    connection = await asyncpg.connect(url, timeout=_CALL_TIMEOUT_S)
    try:
        size = await connection.fetchval("SELECT pg_database_size(current_database())")
        rows = await connection.fetch(_TABLES, _TOP_TABLES)
    finally:
        await connection.close()
    return {"bytes": int(size), "tables": {row["name"]: int(row["bytes"]) for row in rows}}


def sample(mesh: Mesh, started: float) -> dict[str, Any]:
    """One sample of everything; a part that cannot be read is its error's text."""
    pids = services(mesh.log()) | {"up": mesh.process.pid}  # up itself: its supervisor and progress lines
    taken: dict[str, Any] = {
        "t_s": round(time.monotonic() - started, 1),
        "at": common.now_iso(),
        "loadavg_1m": round(os.getloadavg()[0], 2),
        "rss": {name: {"pid": pid, "bytes": rss_bytes(pid)} for name, pid in sorted(pids.items())},
        "log_bytes": mesh.log_path.stat().st_size,
    }
    try:
        taken["redis"] = _redis_figures(mesh.redis_url)
    except (redis.RedisError, OSError) as exc:
        taken["redis"] = {"error": str(exc)}
    if "pid" in taken["redis"]:
        taken["rss"][_REDIS_SERVER] = {
            "pid": taken["redis"]["pid"],
            "bytes": rss_bytes(taken["redis"]["pid"]),
        }
    try:
        taken["postgresql"] = asyncio.run(_database_figures(mesh.database_url))
    except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
        taken["postgresql"] = {"error": str(exc)}
    return taken


def write(path: Path, payload: dict[str, Any]) -> None:
    """The whole file replaced at once: a reader (or a run killed mid-write) sees a whole file."""
    spare = path.with_name(path.name + ".tmp")
    spare.write_text(json.dumps(payload, indent=1) + "\n")
    os.replace(spare, path)


# ---- the report


def slope_per_h(points: list[tuple[float, float]]) -> float:
    """The least-squares slope of (seconds, value), per hour; nan with fewer than 3 points."""
    if len(points) < 3:
        return float("nan")
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return float("nan")
    return 3600 * sum((t - mean_t) * (v - mean_v) for t, v in points) / spread


def _after(samples: list[dict[str, Any]], warmup_s: float) -> list[dict[str, Any]]:
    return [s for s in samples if s["t_s"] >= warmup_s]


def _service_points(samples: list[dict[str, Any]], name: str) -> tuple[list[tuple[float, float]], int]:
    """The service's (t, MB) of its last pid, and how many pids it had (restarts + 1)."""
    pids = [s["rss"][name]["pid"] for s in samples if name in s["rss"]]
    last = pids[-1]
    points = [
        (s["t_s"], s["rss"][name]["bytes"] / _MB)
        for s in samples
        if name in s["rss"] and s["rss"][name]["pid"] == last and s["rss"][name]["bytes"] is not None
    ]
    return points, len(set(pids))


def service_rows(samples: list[dict[str, Any]]) -> list[list[Any]]:
    names = sorted({name for s in samples for name in s["rss"]} - {_REDIS_SERVER})  # a store's: below
    rows = []
    for name in names:
        points, lives = _service_points(samples, name)
        if not points:
            continue
        slope = slope_per_h(points)
        met = "yes" if slope <= GOAL_MB_PER_H else "NO"
        rows.append([name, points[0][1], points[-1][1], slope, met, lives - 1, len(points)])
    return rows


def _series(samples: list[dict[str, Any]], *path: str) -> list[tuple[float, float]]:
    points = []
    for s in samples:
        value: Any = s
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            points.append((s["t_s"], value / _MB))
    return points


def store_rows(samples: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for label, path in (("redis used_memory", ("redis", "used_memory")),
                        ("redis-server RSS", ("rss", _REDIS_SERVER, "bytes")),
                        ("postgresql database", ("postgresql", "bytes")),
                        ("up's log", ("log_bytes",))):  # fmt: skip
        points = _series(samples, *path)
        if points:
            rows.append([label, points[0][1], points[-1][1], slope_per_h(points)])
    return rows


def stream_rows(samples: list[dict[str, Any]]) -> list[list[Any]]:
    first = samples[0].get("redis", {}).get("streams", {})
    last = samples[-1].get("redis", {}).get("streams", {})
    rows = []
    for name in sorted(set(first) | set(last), key=lambda n: -last.get(n, {}).get("bytes", 0)):
        a, b = first.get(name, {}), last.get(name, {})
        rows.append(
            [name, a.get("length", 0), b.get("length", 0), a.get("bytes", 0) / _MB, b.get("bytes", 0) / _MB]
        )
    return rows


def report(payload: dict[str, Any], warmup_min: float) -> dict[str, Any]:
    """Print the figures after the warm-up; return them (the results file keeps them too)."""
    samples = _after(payload["samples"], warmup_min * 60)
    if len(samples) < 3:
        print(f"soak: {len(samples)} samples after a {warmup_min:g} min warm-up: too few for a slope")
        return {}
    span_h = (samples[-1]["t_s"] - samples[0]["t_s"]) / 3600
    loads = [s["loadavg_1m"] for s in samples]
    print(f"{len(samples)} samples over {span_h:.2f} h after a {warmup_min:g} min warm-up "
          f"(load average 1m: median {common.median(loads):.1f}, max {max(loads):.1f})\n")  # fmt: skip
    services_ = service_rows(samples)
    common.print_table(
        ["service", "MB first", "MB last", "MB/h", f"<= {GOAL_MB_PER_H:g}", "restarts", "n"], services_
    )
    print()
    stores = store_rows(samples)
    common.print_table(["store", "MB first", "MB last", "MB/h"], stores)
    print()
    streams = stream_rows(samples)
    common.print_table(["stream", "length first", "length last", "MB first", "MB last"], streams)
    tables = samples[-1].get("postgresql", {}).get("tables", {})
    if tables:
        print(
            "\nlargest tables at the end (MB): " + ", ".join(f"{k} {v / _MB:.1f}" for k, v in tables.items())
        )
    return {
        "warmup_min": warmup_min,
        "span_h": round(span_h, 3),
        "services_mb_per_h": {row[0]: round(row[3], 3) for row in services_},
        "stores_mb_per_h": {row[0]: round(row[3], 3) for row in stores},
    }


# ---- the run


def _stopping() -> Iterator[bool]:
    """False until SIGTERM or SIGINT came (then True once, and the run ends)."""
    stopped = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopped.append(True))
    while True:
        yield bool(stopped)


def run(args: argparse.Namespace) -> None:
    out = args.out.resolve()
    directory = Path(tempfile.mkdtemp(prefix="trademesh-soak-"))
    payload: dict[str, Any] = {
        "bench": "soak",
        "started": common.now_iso(),
        "command": common.command_line(),
        "machine": common.machine(),
        "hours": args.hours,
        "every_s": args.every_s,
        "warmup_min": args.warmup_min,
        "directory": str(directory),
        "samples": [],
    }
    mesh = Mesh(directory, args.sim_config)
    print(f"soak: the mesh's log {mesh.log_path}; samples to {out}", flush=True)
    mesh.wait_healthy()
    started = time.monotonic()
    payload["healthy"] = common.now_iso()
    stopping = _stopping()
    end_s = args.hours * 3600
    if args.end_by is not None:  # a wall-clock deadline (a shared machine's booking) cuts it short
        end_s = min(end_s, args.end_by.timestamp() - time.time())
    try:
        while time.monotonic() - started < end_s and not next(stopping) and mesh.alive():
            payload["samples"].append(sample(mesh, started))
            write(out, payload)
            due = started + len(payload["samples"]) * args.every_s
            while time.monotonic() < due and not next(stopping):
                time.sleep(min(1.0, max(0.0, due - time.monotonic())))
    finally:
        payload["ended"] = common.now_iso()
        payload["mesh_exited"] = mesh.process.poll()
        mesh.stop()
        write(out, payload)
    payload["report"] = report(payload, args.warmup_min)
    write(out, payload)
    print(f"\nwrote {out}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--hours", type=float, default=2.0, help="how long the mesh runs, once healthy (default 2)"
    )
    parser.add_argument("--every-s", type=float, default=60.0, help="seconds between samples (default 60)")
    parser.add_argument(
        "--warmup-min", type=float, default=15.0, help="minutes left out of the slopes (default 15)"
    )
    parser.add_argument("--out", type=Path, default=common.RESULTS_DIR / "soak.json", help="the results file")
    parser.add_argument("--sim-config", type=Path, help="the sim's config (default: the demo market)")
    parser.add_argument(
        "--end-by", type=datetime.datetime.fromisoformat, help="stop sampling by then (ISO, with its zone)"
    )
    parser.add_argument(
        "--report", type=Path, metavar="FILE", help="print the report of a results file, run nothing"
    )
    args = parser.parse_args()
    if args.report is not None:
        report(json.loads(args.report.read_text()), args.warmup_min)
        return
    run(args)


if __name__ == "__main__":
    main()
