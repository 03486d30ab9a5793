"""The detector's hot path, real processes (issue 13: p99 < 10 ms at 10,000 events/s, 10 patches).

A sim venue configured for about --rate market events/s over 10 symbols (bench/venue_stream.py's
generated config: ~7 % trades, the rest book deltas), a `trademesh detector` following it with
10 active patches, and Redis for the signals ($REDIS_URL, else 127.0.0.1:6379; logical db
--redis-db, 15, FLUSHDB'd before and after). Strategies (--patches):

- order_flow (default): the order_flow example on each of the 10 symbols. Its `book` and
  `trades` sources warm from live data within a second, and every burst that brings a book
  or a trade evaluates the patch: the most evaluations per event the examples make.
- examples: the three examples as shipped, on more symbols: trend on 4, mean_reversion on 3,
  order_flow on 3. The bar strategies (1s bars built from trades) evaluate when a bar closes.

After every patch is active and --warmup seconds, the detector's /metrics (its metrics port)
is scraped at the start and end of each of --windows windows of --seconds: the difference
gives the hot-path histogram `trademesh_detector_hot_path_seconds` (venue's receive stamp of a
batch's newest event, and of its oldest, to the end of the evaluation that took it; the stream
part, `trademesh_detector_stream_seconds`: the same stamp to the detector having the batch; the
detector's own part, `trademesh_detector_processing_seconds`: from having the batch to the end
of its evaluation; p50 and
p99 by linear interpolation inside the bucket, as Prometheus' histogram_quantile, and the
bucket's upper bound), the market events and engine events fed per second, evaluations and
signals per second; /proc/<pid>/stat gives the detector's CPU: µs per market event, and per
event per patch (divided by the 10 patches; each event reaches one patch here, the one of its
symbol). Admin/GetStatus gives the venue's own rate over the same window. Median of the windows.

    .venv/bin/python bench/detector_hot_path.py                    # 10,000/s, 3 windows of 10 s
    .venv/bin/python bench/detector_hot_path.py --patches examples --result detector_hot_path_examples
    .venv/bin/python bench/detector_hot_path.py --cprofile /tmp/detector.prof --windows 1

Only 127.0.0.1; every process started is stopped.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import math
import os
import re
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import redis.asyncio as aioredis
import uvloop
from prometheus_client.parser import text_string_to_metric_families

from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.core.detector.config import EXAMPLES_DIR
from trademesh.core.platform.config.env import REDIS_URL, TOKEN, read_secret
from trademesh.core.platform.service.process import ServiceProcess, start_service

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
import venue_stream

_HOT = "trademesh_detector_hot_path_seconds"
_STREAM = "trademesh_detector_stream_seconds"
_PROCESSING = "trademesh_detector_processing_seconds"
_COUNTERS = {
    "market": "trademesh_detector_market_events",
    "fed": "trademesh_detector_events",
    "evaluations": "trademesh_detector_evaluations",
    "signals": "trademesh_detector_signals",
}
SYMBOLS = [f"{base}/USDT" for base in venue_stream._BASES]
# --patches examples: (example file, how many of the symbols it runs on); 10 patches in all.
_MIX = (("trend", 4), ("mean_reversion", 3), ("order_flow", 3))


def strategy_files(kind: str, workdir: Path) -> list[Path]:
    """The strategy files for the 10 patches, the examples with their symbols replaced."""
    plan = (("order_flow", 10),) if kind == "order_flow" else _MIX
    files, used = [], 0
    for name, count in plan:
        text = (EXAMPLES_DIR / f"{name}.toml").read_text()
        symbols = ", ".join(f'"{s}"' for s in SYMBOLS[used : used + count])
        used += count
        path = workdir / f"{name}.toml"
        path.write_text(re.sub(r"(?m)^symbols = \[.*\]$", f"symbols = [{symbols}]", text))
        files.append(path)
    return files


@dataclass
class Scrape:
    at: float
    cpu_s: float
    buckets: dict[str, list[tuple[float, float]]]  # event label -> [(le, cumulative count)]
    counters: dict[str, float]


def scrape(metrics_port: int, pid: int) -> Scrape:
    cpu_s = _cpu_seconds(pid)
    at = time.monotonic()
    with urllib.request.urlopen(f"http://{common.HOST}:{metrics_port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    buckets: dict[str, list[tuple[float, float]]] = {}
    counters: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"{_HOT}_bucket":
                le = float(sample.labels["le"])
                buckets.setdefault(sample.labels["event"], []).append((le, sample.value))
            elif sample.name == f"{_STREAM}_bucket":
                buckets.setdefault("stream", []).append((float(sample.labels["le"]), sample.value))
            elif sample.name == f"{_PROCESSING}_bucket":
                buckets.setdefault("detector", []).append((float(sample.labels["le"]), sample.value))
            elif family.name in _COUNTERS.values() and sample.name.endswith("_total"):
                counters[family.name] = sample.value
    for rows in buckets.values():
        rows.sort()
    return Scrape(at, cpu_s, buckets, counters)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quantile(q: float, rows: list[tuple[float, float]]) -> tuple[float, float]:
    """(interpolated, the bucket's upper bound) for quantile q of cumulative buckets, seconds."""
    total = rows[-1][1] if rows else 0.0
    if total <= 0:
        return math.nan, math.nan
    rank = q * total
    lower_le, lower_count = 0.0, 0.0
    for le, count in rows:
        if count >= rank:
            if math.isinf(le):
                return lower_le, le
            inside = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
            return lower_le + (le - lower_le) * inside, le
        lower_le, lower_count = le, count
    return math.nan, math.nan


def window(first: Scrape, last: Scrape, patches: int) -> dict[str, Any]:
    seconds = last.at - first.at
    rates = {
        key: (last.counters.get(name, 0.0) - first.counters.get(name, 0.0)) / seconds
        for key, name in _COUNTERS.items()
    }
    cpu_share = (last.cpu_s - first.cpu_s) / seconds
    latency: dict[str, Any] = {}
    for label, rows in last.buckets.items():
        before = dict(first.buckets.get(label, []))
        diff = [(le, count - before.get(le, 0.0)) for le, count in rows]
        p50, p50_le = quantile(0.5, diff)
        p99, p99_le = quantile(0.99, diff)
        latency[label] = {
            "batches": diff[-1][1] if diff else 0,
            "p50_ms": 1e3 * p50,
            "p50_bucket_le_ms": 1e3 * p50_le,
            "p99_ms": 1e3 * p99,
            "p99_bucket_le_ms": 1e3 * p99_le,
            "buckets": [(le, count) for le, count in diff],
        }
    per_event_us = 1e6 * cpu_share / rates["market"] if rates["market"] else math.nan
    return {
        "seconds": seconds,
        "market_events_per_s": rates["market"],
        "engine_events_per_s": rates["fed"],
        "evaluations_per_s": rates["evaluations"],
        "signals_per_s": rates["signals"],
        "detector_cpu_percent": 100 * cpu_share,
        "cpu_us_per_market_event": per_event_us,
        "cpu_us_per_event_per_patch": per_event_us / patches,
        "cpu_us_per_evaluation": 1e6 * cpu_share / rates["evaluations"] if rates["evaluations"] else math.nan,
        "latency": latency,
    }


class Processes:
    """The venue and the detector, stopped at exit whatever happens."""

    def __init__(self) -> None:
        self.venue: common.Venue | None = None
        self.detector: ServiceProcess | subprocess.Popen[str] | None = None

    def stop_all(self) -> dict[str, int]:
        codes = {}
        if self.detector is not None:
            codes["detector"] = _stop(self.detector)
            self.detector = None
        if self.venue is not None:
            codes["venue"] = self.venue.stop()
            self.venue = None
        return codes


def _stop(detector: ServiceProcess | subprocess.Popen[str]) -> int:
    if isinstance(detector, ServiceProcess):
        return detector.terminate()
    return common.stop_process(detector, 30.0, 10.0)


def start_detector(
    args: argparse.Namespace, venue: common.Venue, files: list[Path], workdir: Path, redis_url: str
) -> tuple[ServiceProcess | subprocess.Popen[str], int, Path]:
    """The detector on the venue; (process, metrics port, log file)."""
    flags = ["detector", "--host", common.HOST, "--port", "0", "--venue", f"sim={venue.address}"]
    flags += [flag for path in files for flag in ("--strategy", str(path))]
    flags += ["--hold-ms", str(args.hold_ms)]
    env = {REDIS_URL: redis_url, TOKEN: ""}
    log_path = workdir / "detector.log"
    if args.cprofile is None:
        with log_path.open("w") as log:
            service = start_service(flags, env=env, stderr=log, timeout_s=120)
        return service, int(service.info["metrics_port"]), log_path
    # Under cProfile (written when it stops): a fixed metrics port, readiness from its log.
    metrics_port = args.cprofile_metrics_port
    command = [sys.executable, "-m", "cProfile", "-o", str(args.cprofile), "-m", "trademesh.core.cli"]
    command += [*flags, "--metrics-port", str(metrics_port)]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=log, text=True, env={**os.environ, **env}
        )
    return process, metrics_port, log_path


def _active(log_path: Path) -> dict[str, int] | None:
    """How many patches the detector runs, once it said so and every warming one is active."""
    text = log_path.read_text() if log_path.exists() else ""
    started = re.search(r"detector: (\d+) patches, (\d+) warming", text)
    if started and text.count("is warm and active") >= int(started.group(2)):
        return {"patches": int(started.group(1)), "warmed_live": int(started.group(2))}
    return None


def _warnings(log_path: Path) -> list[str]:
    return [line for line in log_path.read_text().splitlines() if "WARNING" in line][:5]


async def wait_active(log_path: Path, timeout_s: float) -> dict[str, int]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        active = _active(log_path)
        if active is not None:
            return active
        await asyncio.sleep(0.5)
    raise TimeoutError(f"the detector's patches were not all active within {timeout_s} s: see {log_path}")


async def venue_events(channel: grpc.aio.Channel, metadata: Any) -> float:
    status = await admin_grpc.AdminStub(channel).GetStatus(
        admin.GetStatusRequest(), metadata=metadata, timeout=10
    )
    return float(venue_stream._streamed_total(status))


async def measure(args: argparse.Namespace, processes: Processes) -> dict[str, Any]:
    workdir = common.workdir()
    redis_url = common.redis_db_url(read_secret(REDIS_URL) or "redis://127.0.0.1:6379", args.redis_db)
    async with common.flushed_redis(aioredis.Redis.from_url(redis_url)) as redis:
        try:
            return await _measure(args, processes, workdir, redis, redis_url)
        finally:
            processes.stop_all()


async def _measure(
    args: argparse.Namespace, processes: Processes, workdir: Path, redis: Any, redis_url: str
) -> dict[str, Any]:
    venue = processes.venue = common.start_venue(venue_stream.sim_config(args.rate, 10, 10), workdir, False)
    files = strategy_files(args.patches, workdir)
    detector, metrics_port, log_path = start_detector(args, venue, files, workdir, redis_url)
    processes.detector = detector
    pid = detector.process.pid if isinstance(detector, ServiceProcess) else detector.pid
    started = await wait_active(log_path, args.active_timeout)
    await asyncio.sleep(args.warmup)
    windows = []
    async with grpc.aio.insecure_channel(venue.address) as channel:
        for _ in range(args.windows):
            venue_before, first = (
                await venue_events(channel, venue.metadata or None),
                scrape(metrics_port, pid),
            )
            system, venue_cpu = common.SystemCpu(), common.CpuMeter(venue.pid)
            await asyncio.sleep(args.seconds)
            last, venue_after = (
                scrape(metrics_port, pid),
                await venue_events(channel, venue.metadata or None),
            )
            result = window(first, last, started["patches"])
            result["venue_events_per_s"] = (venue_after - venue_before) / (last.at - first.at)
            result["venue_cpu_percent"] = venue_cpu.percent()
            result["machine_cpu_percent"] = system.percent()
            windows.append(result)
    signals = await redis.xlen("signals") if await redis.exists("signals") else 0
    codes = processes.stop_all()
    return {
        "patches": started,
        "strategy_files": [str(f) for f in files],
        "windows": windows,
        "signals_on_the_bus": signals,
        "exit_codes": codes,
        "detector_log": str(log_path),
        "detector_warnings": _warnings(log_path),
        "venue_fell_behind": len(venue.log_lines("fell")),
    }


def summary(result: dict[str, Any]) -> dict[str, Any]:
    windows = result["windows"]

    def med(*path: str) -> float:
        values = []
        for w in windows:
            value: Any = w
            for key in path:
                value = value[key]
            values.append(value)
        return common.median(values)

    return {
        "hot_path_newest_p50_ms": med("latency", "newest", "p50_ms"),
        "hot_path_newest_p99_ms": med("latency", "newest", "p99_ms"),
        "hot_path_newest_p99_bucket_le_ms": med("latency", "newest", "p99_bucket_le_ms"),
        "hot_path_oldest_p50_ms": med("latency", "oldest", "p50_ms"),
        "hot_path_oldest_p99_ms": med("latency", "oldest", "p99_ms"),
        "stream_p50_ms": med("latency", "stream", "p50_ms"),
        "stream_p99_ms": med("latency", "stream", "p99_ms"),
        "detector_p50_ms": med("latency", "detector", "p50_ms"),
        "detector_p99_ms": med("latency", "detector", "p99_ms"),
        "market_events_per_s": med("market_events_per_s"),
        "venue_events_per_s": med("venue_events_per_s"),
        "engine_events_per_s": med("engine_events_per_s"),
        "evaluations_per_s": med("evaluations_per_s"),
        "signals_per_s": med("signals_per_s"),
        "detector_cpu_percent": med("detector_cpu_percent"),
        "cpu_us_per_market_event": med("cpu_us_per_market_event"),
        "cpu_us_per_event_per_patch": med("cpu_us_per_event_per_patch"),
        "cpu_us_per_evaluation": med("cpu_us_per_evaluation"),
    }


def _print(result: dict[str, Any], args: argparse.Namespace) -> None:
    print(
        f"\ndetector_hot_path: sim at {args.rate:,}/s configured, {result['patches']['patches']} patches "
        f"({args.patches}), {len(result['windows'])} windows of {args.seconds} s after {args.warmup} s"
    )
    rows = []
    for index, w in enumerate(result["windows"], 1):
        newest, oldest, stream, own = (w["latency"][k] for k in ("newest", "oldest", "stream", "detector"))
        rows.append([
            index, w["venue_events_per_s"], w["market_events_per_s"], w["evaluations_per_s"],
            newest["p50_ms"], newest["p99_ms"], oldest["p50_ms"], oldest["p99_ms"],
            stream["p50_ms"], stream["p99_ms"], own["p50_ms"], own["p99_ms"],
            f"{w['detector_cpu_percent']:.0f}%", w["cpu_us_per_market_event"],
            w["cpu_us_per_event_per_patch"],
            f"{w['machine_cpu_percent']:.0f}%",
        ])  # fmt: skip
    headers = ["window", "venue ev/s", "detector ev/s", "evals/s", "newest p50 ms", "newest p99 ms",
               "oldest p50 ms", "oldest p99 ms", "stream p50", "stream p99", "own p50", "own p99",
               "detector cpu",
               "cpu µs/event", "µs/event/patch", "machine cpu"]  # fmt: skip
    common.print_table(headers, rows)
    s = result["summary"]
    print(
        f"median: p50 {s['hot_path_newest_p50_ms']:.2f} ms, p99 {s['hot_path_newest_p99_ms']:.2f} ms "
        f"(bucket ≤ {s['hot_path_newest_p99_bucket_le_ms']:.1f} ms); the detector's own part: "
        f"p50 {s['detector_p50_ms']:.2f} ms, p99 {s['detector_p99_ms']:.2f} ms; "
        f"{s['cpu_us_per_event_per_patch']:.2f} CPU µs per event per patch; "
        f"signals on the bus: {result['signals_on_the_bus']}"
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--rate", type=int, default=10_000, help="the sim's configured events/s (default 10000)"
    )
    parser.add_argument("--patches", choices=("order_flow", "examples"), default="order_flow")
    parser.add_argument(
        "--hold-ms", type=int, default=0, help="the detector's hold (default 0: bursts as they arrive)"
    )
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds after every patch is active")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each window (default 10)")
    parser.add_argument("--windows", type=int, default=3, help="measured windows (default 3)")
    parser.add_argument("--active-timeout", type=float, default=120.0, help="wait for the patches at most")
    parser.add_argument("--redis-db", type=int, default=15, help="Redis logical db, flushed (default 15)")
    parser.add_argument("--cprofile", type=Path, help="run the detector under cProfile, stats to FILE")
    parser.add_argument("--cprofile-metrics-port", type=int, default=9481, help="its metrics port then")
    parser.add_argument("--result", default="detector_hot_path", help="bench/results/<name>.json")
    parser.add_argument("--no-save", action="store_true", help="print only; write no result file")
    return parser


def main() -> None:
    args = _parser().parse_args()
    started, machine = common.now_iso(), common.machine()
    processes = Processes()
    atexit.register(processes.stop_all)
    with common.claimed_redis_db(args.redis_db):
        result = uvloop.run(measure(args, processes))
    result["summary"] = summary(result)
    _print(result, args)
    if not args.no_save:
        payload = {
            "benchmark": "detector_hot_path",
            "command": common.command_line(),
            "started": started,
            "finished": common.now_iso(),
            "machine": machine,
            "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "result": result,
        }
        print(f"results: {common.write_result(args.result, payload)}")


if __name__ == "__main__":
    main()
