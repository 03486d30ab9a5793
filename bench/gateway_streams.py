"""Many gRPC-web streaming clients through the gateway while the bus runs at 10,000 events/s (issue 5).

The mesh, each its own process on 127.0.0.1 and registered with the gateway through
TRADEMESH_GATEWAY: a sim venue making about --rate trade + book events/s, ingest (sim -> Redis
Streams), the bridge (the bus -> LiveData) and `trademesh gateway`; an API key from
`trademesh keys create`. Then:

- --clients gRPC-web clients (aiohttp, binary mode, one HTTP/1.1 connection each) POST
  trademesh.livedata.v1.LiveData/Subscribe to the gateway, which resolves the bridge in its
  registry and forwards the bytes;
- --direct-clients native gRPC subscribers read the bridge itself: the same path without the
  gateway, for comparison.

After --warmup s, a window of --seconds s. Per client: messages and events/s, delivery latency
p50/p99 (receive time minus the first event's ts_recv_ns, the venue's stamp, of each message:
how bench/bus_pipeline.py measures venue -> LiveData), GAP notices (the bridge conflated a slow
client), errors. Every second: the bridge's consumer-group lag on the bus (XINFO GROUPS lag +
pending over md.*), and its trend over the window (flat, or growing: the bridge falls behind).
CPU of every process.

    .venv/bin/python bench/gateway_streams.py --clients 100 --seconds 30
    .venv/bin/python bench/gateway_streams.py --clients 5 --seconds 5 --no-save     # a smoke run

Redis at $REDIS_URL (else 127.0.0.1:6379), logical db --redis-db (15), FLUSHDB'd; PostgreSQL at
$DATABASE_URL (else postgres@127.0.0.1:5432) for the API key: a fresh database bench_gw_<random>,
dropped at the end. Every process started is stopped (also on Ctrl-C or an exception).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import contextlib
import os
import secrets
import struct
import subprocess
import sys
import time
import urllib.request
from array import array
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import aiohttp
import grpc
import uvloop

from trademesh.core.platform.bus.redis import open_redis
from trademesh.core.platform.config.env import (
    DATABASE_URL,
    GATEWAY,
    REDIS_URL,
    TOKEN,
    database_url,
    read_secret,
)
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.livedata.v1 import livedata_pb2 as lv
from trademesh.livedata.v1 import livedata_pb2_grpc as lv_grpc
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.registry.v1 import registry_pb2_grpc as reg_grpc

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
import bus_pipeline
import venue_stream

HOST = common.HOST
SUBSCRIBE = "/trademesh.livedata.v1.LiveData/Subscribe"
_KINDS = {"trades": lv.KIND_TRADES, "book": lv.KIND_BOOK, "tickers": lv.KIND_TICKERS}
_POLICIES = {"conflate": md.OVERFLOW_POLICY_CONFLATE, "disconnect": md.OVERFLOW_POLICY_DISCONNECT}
_FRAME = struct.Struct(">BI")
_START_TIMEOUT_S = 60.0
_CALL_TIMEOUT_S = 10.0
_BRIDGE_GROUP = "bridge"


# ---------------------------------------------------------------- processes


class Processes:
    """Every process this script started; stop_all() stops them all, newest first."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.started: list[tuple[str, ServiceProcess, IO[str]]] = []

    def start(self, name: str, args: Sequence[str], env: dict[str, str]) -> ServiceProcess:
        log = (self.workdir / f"{name}.log").open("w")
        try:
            process = start_service(args, env=env, stderr=log, timeout_s=_START_TIMEOUT_S)
        except BaseException:
            log.close()
            raise
        self.started.append((name, process, log))
        return process

    def pids(self) -> dict[str, list[int]]:
        return {name: [process.process.pid] for name, process, _ in self.started}

    def stop_all(self) -> None:
        started, self.started = self.started, []
        for _, process, log in reversed(started):
            with contextlib.suppress(Exception):
                process.terminate(10.0)
            log.close()


@dataclass
class Mesh:
    gateway: ServiceProcess
    sim: ServiceProcess
    bridge: ServiceProcess
    key: str
    token: str

    @property
    def gateway_url(self) -> str:
        return f"http://{HOST}:{self.gateway.port}"

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)


async def start_mesh(args: argparse.Namespace, env: dict[str, str], processes: Processes) -> Mesh:
    gateway = processes.start("gateway", ["gateway", "--host", HOST, "--port", "0", "--grpc-port", "0"], env)
    key = create_key(env)
    env = {**env, GATEWAY: f"{HOST}:{gateway.info['grpc_port']}"}
    config = processes.workdir / "sim.toml"
    config.write_text(venue_stream.sim_config(args.rate, args.symbols, args.tick_interval_ms))
    sim = processes.start("sim", ["venue", "sim", *_PORTS, "--config", str(config)], env)
    ingest_args = ["ingest", *_PORTS, "--venue", f"sim={sim.address}"]
    await asyncio.gather(
        asyncio.to_thread(processes.start, "ingest", ingest_args, env),
        asyncio.to_thread(processes.start, "bridge", ["bridge", *_PORTS], env),
    )
    bridge = next(p for name, p, _ in processes.started if name == "bridge")
    mesh = Mesh(gateway, sim, bridge, key, env[TOKEN])
    await wait_registered(mesh, {"sim", "ingest", "bridge"})
    return mesh


_PORTS = ("--host", HOST, "--port", "0", "--metrics-port", "-1")


def create_key(env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "trademesh.core.cli", "keys", "create", "bench"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"trademesh keys create failed: {done.stderr.strip()}")
    return done.stdout.strip()


async def wait_registered(mesh: Mesh, names: set[str], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with grpc.aio.insecure_channel(f"{HOST}:{mesh.gateway.info['grpc_port']}") as channel:
        stub = reg_grpc.RegistryStub(channel)
        while True:
            reply = await stub.ListServices(
                reg.ListServicesRequest(), metadata=mesh.metadata, timeout=_CALL_TIMEOUT_S
            )
            missing = names - {instance.name for instance in reply.instances}
            if not missing:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"not registered with the gateway within {timeout_s} s: {sorted(missing)}")
            await asyncio.sleep(0.2)


# ---------------------------------------------------------------- clients


@dataclass
class Stats:
    """One subscriber's receipts inside the window: counts and per-message latency."""

    name: str
    window_ns: tuple[int, int] = (0, 0)
    messages: int = 0
    events: int = 0
    gaps: int = 0
    latencies_ns: array[int] = field(default_factory=lambda: array("q"))
    error: str | None = None

    def add(self, response: lv.SubscribeResponse, now_ns: int) -> None:
        events = response.events
        if events and events[0].notice.kind == md.NOTICE_KIND_GAP:
            self.gaps += 1
        start, end = self.window_ns
        if not start <= now_ns < end:
            return
        self.messages += 1
        self.events += len(events) + len(response.bars)
        if events:
            self.latencies_ns.append(now_ns - events[0].ts_recv_ns)

    def summary(self, seconds: float) -> dict[str, Any]:
        latencies_ms = [ns / 1e6 for ns in self.latencies_ns]
        return {
            "name": self.name,
            "messages": self.messages,
            "events_per_s": self.events / seconds,
            "latency_p50_ms": common.percentile(latencies_ms, 50),
            "latency_p99_ms": common.percentile(latencies_ms, 99),
            "gap_notices": self.gaps,
            "error": self.error,
        }


def subscribe_request(args: argparse.Namespace) -> lv.SubscribeRequest:
    return lv.SubscribeRequest(
        kinds=[_KINDS[k] for k in args.kinds], overflow_policy=_POLICIES[args.overflow]
    )


async def web_client(
    session: aiohttp.ClientSession, mesh: Mesh, request: bytes, stats: Stats, stop: asyncio.Event
) -> None:
    """One gRPC-web subscriber: frames parsed as they arrive, until `stop`."""
    headers = {
        "content-type": "application/grpc-web+proto",
        "x-grpc-web": "1",
        "authorization": f"Bearer {mesh.key}",
    }
    body = _FRAME.pack(0, len(request)) + request
    try:
        async with session.post(mesh.gateway_url + SUBSCRIBE, data=body, headers=headers) as reply:
            buffer = bytearray()
            while not stop.is_set():
                chunk = await reply.content.readany()
                if not chunk:
                    # A trailers-only answer (an error before any message) has its status in the headers.
                    status = reply.headers.get("grpc-status")
                    ended = f"grpc-status {status}: {reply.headers.get('grpc-message', '')}" if status else ""
                    stats.error = stats.error or ended or "the stream ended"
                    return
                now_ns = time.time_ns()
                buffer += chunk
                _drain_frames(buffer, stats, now_ns)
    except (aiohttp.ClientError, OSError) as exc:
        stats.error = f"{type(exc).__name__}: {exc}"


def _drain_frames(buffer: bytearray, stats: Stats, now_ns: int) -> None:
    offset = 0
    while len(buffer) - offset >= _FRAME.size:
        flag, length = _FRAME.unpack_from(buffer, offset)
        end = offset + _FRAME.size + length
        if end > len(buffer):
            break
        payload = bytes(buffer[offset + _FRAME.size : end])
        if flag & 0x80:
            stats.error = payload.decode(errors="replace").replace("\r\n", " ").strip()
        else:
            stats.add(lv.SubscribeResponse.FromString(payload), now_ns)
        offset = end
    del buffer[:offset]


async def direct_client(mesh: Mesh, request: lv.SubscribeRequest, stats: Stats, stop: asyncio.Event) -> None:
    """One native gRPC subscriber of the bridge itself (no gateway): the baseline."""
    async with grpc.aio.insecure_channel(mesh.bridge.address, options=common.CHANNEL_OPTIONS) as channel:
        call: Any = lv_grpc.LiveDataStub(channel).Subscribe(request, metadata=mesh.metadata)
        try:
            async for response in call:
                stats.add(response, time.time_ns())
                if stop.is_set():
                    call.cancel()
        except grpc.aio.AioRpcError as exc:
            if exc.code() != grpc.StatusCode.CANCELLED:
                stats.error = f"{exc.code().name}: {exc.details()}"


# ---------------------------------------------------------------- the bus and the window


def bridge_lag(state: dict[str, Any]) -> int:
    group = state["groups"].get(_BRIDGE_GROUP, {})
    return int(group.get("lag", 0)) + int(group.get("pending", 0))


def trend(series: list[tuple[float, int]], entries_per_s: float) -> dict[str, Any]:
    """Least-squares slope of the lag (entries/s); flat when it grows by under 1% of the bus rate."""
    if len(series) < 2:
        return {"slope_entries_per_s": float("nan"), "flat": None}
    xs, ys = [t for t, _ in series], [float(v) for _, v in series]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / var if var else 0.0
    return {"slope_entries_per_s": slope, "flat": slope < 0.01 * max(entries_per_s, 1.0)}


async def measure(args: argparse.Namespace, mesh: Mesh, redis: Any, processes: Processes) -> dict[str, Any]:
    request = subscribe_request(args)
    raw = request.SerializeToString()
    stop = asyncio.Event()
    web = [Stats(f"web{i}") for i in range(args.clients)]
    direct = [Stats(f"direct{i}") for i in range(args.direct_clients)]
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, timeout=aiohttp.ClientTimeout(total=None)
    ) as session:
        tasks = [asyncio.create_task(web_client(session, mesh, raw, s, stop)) for s in web]
        tasks += [asyncio.create_task(direct_client(mesh, request, s, stop)) for s in direct]
        await asyncio.sleep(args.warmup)
        window = await run_window(args, redis, processes, [*web, *direct])
        stop.set()
        await asyncio.sleep(0.5)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    window["gateway_metrics"] = gateway_metrics(mesh)
    window["web_clients"] = [s.summary(args.seconds) for s in web]
    window["direct_clients"] = [s.summary(args.seconds) for s in direct]
    return window


async def run_window(
    args: argparse.Namespace, redis: Any, processes: Processes, stats: list[Stats]
) -> dict[str, Any]:
    start_ns = time.time_ns()
    for s in stats:
        s.window_ns = (start_ns, start_ns + int(args.seconds * 1e9))
    cpu = bus_pipeline.CpuGroups(processes.pids())
    before = await bus_pipeline.bus_state(redis)
    series: list[tuple[float, int]] = []
    t0 = time.monotonic()
    while (elapsed := time.monotonic() - t0) < args.seconds:
        series.append((round(elapsed, 2), bridge_lag(await bus_pipeline.bus_state(redis))))
        await asyncio.sleep(max(0.0, len(series) - (time.monotonic() - t0)))
    after = await bus_pipeline.bus_state(redis)
    seconds = time.monotonic() - t0
    entries_per_s = (after["market_entries_added"] - before["market_entries_added"]) / seconds
    return {
        "seconds": seconds,
        "bus_entries_per_s": entries_per_s,
        "bridge_lag_series": series,
        "bridge_lag_trend": trend(series, entries_per_s),
        "cpu_percent_of_one_core": cpu.read(),
    }


def gateway_metrics(mesh: Mesh) -> dict[str, float]:
    with urllib.request.urlopen(f"{mesh.gateway_url}/metrics", timeout=_CALL_TIMEOUT_S) as reply:
        text = reply.read().decode()
    found: dict[str, float] = {}
    for line in text.splitlines():
        for name in ("gateway_grpcweb_open_streams", "gateway_grpcweb_messages_sent_total"):
            if line.startswith(name + "{") and "LiveData" in line:
                found[name] = found.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return found


# ---------------------------------------------------------------- setup, report, main


async def run(args: argparse.Namespace, processes: Processes) -> dict[str, Any]:
    redis_base = read_secret(REDIS_URL) or "redis://127.0.0.1:6379"
    server_url = database_url()
    common.require_local(redis_base, "Redis", "gateway_streams")
    common.require_local(server_url, "PostgreSQL", "gateway_streams")
    redis_url = common.redis_db_url(redis_base, args.redis_db)
    async with (
        common.scratch_database(server_url, "bench_gw", timeout_s=_CALL_TIMEOUT_S) as db_url,
        common.flushed_redis(open_redis(redis_url, read_timeout_s=30)) as redis,
    ):
        try:
            env = {REDIS_URL: redis_url, DATABASE_URL: db_url, TOKEN: secrets.token_hex(16)}
            mesh = await start_mesh(args, env, processes)
            return await measure(args, mesh, redis, processes)
        finally:
            processes.stop_all()


def summarise(window: dict[str, Any]) -> dict[str, Any]:
    def of(clients: list[dict[str, Any]]) -> dict[str, Any]:
        p50 = [c["latency_p50_ms"] for c in clients]
        p99 = [c["latency_p99_ms"] for c in clients]
        rates = [c["events_per_s"] for c in clients]
        return {
            "clients": len(clients),
            "latency_p50_ms_median": common.median(p50),
            "latency_p99_ms_median": common.median(p99),
            "latency_p99_ms_worst": max(p99, default=float("nan")),
            "events_per_s_min": min(rates, default=float("nan")),
            "events_per_s_median": common.median(rates),
            "gap_notices": sum(c["gap_notices"] for c in clients),
            "errors": sorted({c["error"] for c in clients if c["error"]}),
        }

    lag = window["bridge_lag_series"]
    return {
        "through_gateway": of(window["web_clients"]),
        "direct_to_bridge": of(window["direct_clients"]),
        "bridge_lag_start": lag[0][1] if lag else None,
        "bridge_lag_end": lag[-1][1] if lag else None,
        "bridge_lag_trend": window["bridge_lag_trend"],
    }


def print_report(summary: dict[str, Any], window: dict[str, Any]) -> None:
    headers = ("path", "clients", "p50 ms", "p99 ms", "worst p99", "ev/s min", "ev/s med", "gaps", "errors")
    rows = [
        (
            path,
            *(s["clients"], s["latency_p50_ms_median"], s["latency_p99_ms_median"]),
            *(s["latency_p99_ms_worst"], s["events_per_s_min"], s["events_per_s_median"]),
            *(s["gap_notices"], len(s["errors"])),
        )
        for path, s in (("gateway", summary["through_gateway"]), ("direct", summary["direct_to_bridge"]))
        if s["clients"]
    ]
    print("\nper client (medians over clients), venue stamp -> client receipt:")
    common.print_table(headers, rows)
    for path in ("through_gateway", "direct_to_bridge"):
        for error in summary[path]["errors"]:
            print(f"  {path} error: {error}")
    trend_ = summary["bridge_lag_trend"]
    flat = {True: "flat", False: "GROWING", None: "-"}[trend_["flat"]]
    print(
        f"\nbridge lag (entries): {summary['bridge_lag_start']} -> {summary['bridge_lag_end']}, "
        f"slope {trend_['slope_entries_per_s']:.2f}/s: {flat} "
        f"(bus {window['bus_entries_per_s']:.0f} entries/s)"
    )
    cpu = window["cpu_percent_of_one_core"]
    print("CPU % of one core: " + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items()))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--clients", type=_positive, default=100, help="gRPC-web clients through the gateway (default 100)")
    add(
        "--direct-clients",
        type=int,
        default=1,
        help="native subscribers of the bridge, a baseline (default 1)",
    )
    add("--seconds", type=float, default=30.0, help="measured window (default 30)")
    add("--warmup", type=float, default=5.0, help="seconds after the clients subscribe (default 5)")
    add("--rate", type=_positive, default=10_000, help="trade + book events/s the sim makes (default 10000)")
    add("--symbols", type=_positive, default=10, choices=range(1, 11), metavar="1..10", help="(default 10)")
    add("--tick-interval-ms", type=_positive, default=10, help="the sim's step interval (default 10)")
    add(
        "--kinds",
        type=lambda text: text.split(","),
        default=["trades", "book", "tickers"],
        help="LiveData kinds each client subscribes to (default trades,book,tickers)",
    )
    add(
        "--overflow",
        choices=sorted(_POLICIES),
        default="conflate",
        help="slow-client policy (default conflate)",
    )
    add(
        "--redis-db",
        type=int,
        default=15,
        help="logical Redis db to use and FLUSHDB (default 15; the tests use 1..13)",
    )
    add("--result", default="gateway_streams", help="bench/results/<name>.json (default gateway_streams)")
    add("--no-save", action="store_true", help="print only; write no result file")
    return parser


def main() -> None:
    args = _parser().parse_args()
    unknown = [k for k in args.kinds if k not in _KINDS]
    if unknown:
        raise SystemExit(f"gateway_streams: unknown kinds {unknown}; known: {', '.join(_KINDS)}")
    started, machine = common.now_iso(), common.machine()
    processes = Processes(common.workdir())
    atexit.register(processes.stop_all)
    try:
        with common.claimed_redis_db(args.redis_db):
            window = uvloop.run(run(args, processes))
    except KeyboardInterrupt:
        raise SystemExit("gateway_streams: interrupted; every process it started is stopped") from None
    summary = summarise(window)
    print(
        f"\ngateway_streams: {args.clients} gRPC-web clients, {args.rate} events/s, {args.seconds} s window"
    )
    print_report(summary, window)
    if not args.no_save:
        result = {
            "benchmark": "gateway_streams",
            "command": common.command_line(),
            "started": started,
            "finished": common.now_iso(),
            "machine": machine,
            "settings": vars(args),
            "summary": summary,
            "window": window,
        }
        print(f"\nresults: {common.write_result(args.result, result)}")
    print(f"logs: {processes.workdir}")


if __name__ == "__main__":
    main()
