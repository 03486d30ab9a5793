"""What Overwatch's overview stream costs (issue 42, "Figures": "the overview stream's cost").

Overwatch.StreamOverview sends, at once and then every second, the mesh at a glance: the
registry's live services, the inspector's risk state and positions, every detector's strategies,
the ledger's PnL, and Overwatch's own board (trademesh/core/overwatch/overview.py). One gathering a
period serves every subscriber (trademesh/core/overwatch/overview_feed.py; each stream gathered for itself
before issue 57, item 11). Measured against a real mesh, as tests/integration/client_mesh.py
starts it (a gateway, the sim, a detector running the example strategies, an inspector and a
ledger, processes registering with the gateway) with `trademesh overwatch` beside them, its
board warmed on --markets synthetic markets' 1m bars put on the bus before it starts:

1. **one overview, gathered and built**: Overwatch's own OverviewSource in this process, on the
   same mesh (its registry read through the gateway, its board an engine fed the same bars),
   --builds overviews one after another: wall and CPU (this process's) per overview, and the
   message's size on the wire.
2. **the composition alone**: the same OverviewSource.take with the parts' answers gathered
   once and given back at once (no I/O: the registry's instances, the board, the summaries and
   strategies made), then the message serialised, on boards of 3, --markets and 1000 markets.
   The gathering is (1) less (2).
3. **the process serving it**: 0 (idle: reading the bars' streams), 1, then each of
   --subscribers StreamOverview calls open on one channel (as the gateway carries Studio's
   subscriptions), --duration seconds each, --repeats rounds: the Overwatch process's CPU
   (/proc), the overviews received a second, each one's age when received (its ts_ns is taken
   before the gathering: gathering, building, sending), and the other mesh services' CPU (the
   inspector, ledger and detector answer each overview).

Reported: medians, and ratios against the baseline of the same run (one subscriber; the
smallest board). Redis as the tests find it ($REDIS_URL, else 127.0.0.1:6379; a database of
1..13 claimed as the tests claim theirs, emptied, given back), PostgreSQL at $DATABASE_URL (else
postgres@127.0.0.1:5432; a new database, dropped after). Only 127.0.0.1.

    .venv/bin/python bench/overview_stream.py                    # 100 markets; 1, 10, 50 subscribers
    .venv/bin/python bench/overview_stream.py --duration 5 --repeats 1 --no-save
"""

from __future__ import annotations

import os

# The mesh's services are exec'd children (as `trademesh up` starts them): gRPC's fork handlers
# are not needed, and with gRPC's threads about they only warn. Before gRPC loads.
os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "0")

import argparse
import asyncio
import contextlib
import gc
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import grpc
import redis.asyncio as aioredis
import uvloop
from google.protobuf.message import Message

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common

from tests.integration.client_mesh import AUTH, client_mesh
from tests.integration.support import TEST_TOKEN
from tests.overwatch_support import bus_bar
from trademesh.core.domain.model import Candle
from trademesh.core.overwatch.convert import board_to_pb, close_time_ns
from trademesh.core.overwatch.engine import Overwatch
from trademesh.core.overwatch.overview import OverviewSource
from trademesh.core.overwatch.synthetic import LABELLED, SeriesSpec, segment_bars
from trademesh.core.platform.bus.codec import encode_bars
from trademesh.core.platform.config.env import GATEWAY, REDIS_URL, TOKEN, database_url, read_secret
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.core.tools.resolver import MeshResolver
from trademesh.core.tools.upstream import Upstream
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.overwatch.v1 import overwatch_pb2_grpc as ow_grpc

VENUE = "bench"  # the board's markets: a venue of the bench's own (no service of the mesh reads it)
_DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
_MESH = {"sim", "detector", "inspector", "ledger", "overwatch"}
_READY_S = 90.0  # a loaded machine starts six processes slowly
_WARM_BARS, _LIVE_BARS = 110, 40  # past the classifier's 100-bar warm-up, then one segment


def market_bars(markets: int) -> dict[str, list[Candle]]:
    """Each market's 1m bars: a calm warm-up, then one segment of a regime (the five in turn)."""
    spec = SeriesSpec(warmup_bars=_WARM_BARS)
    return {
        f"M{n:04d}/USDT": segment_bars(LABELLED[n % len(LABELLED)], _LIVE_BARS, seed=n, spec=spec).bars
        for n in range(markets)
    }


def engine_of(bars: dict[str, list[Candle]]) -> Overwatch:
    """An engine that read these bars, each at its close time, as the shell gives it."""
    engine = Overwatch()
    for symbol, candles in bars.items():
        for candle in candles:
            engine.on_bar(VENUE, symbol, candle, close_time_ns(candle))
    return engine


def board_of(engine: Overwatch) -> Callable[[], ow.Board]:
    return lambda: board_to_pb(engine.board(time.time_ns()))


async def publish(redis_url: str, bars: dict[str, list[Candle]]) -> None:
    """The bars on bars.{bench}.1m as the bar service publishes them, 50 an entry."""
    client: Any = aioredis.Redis.from_url(redis_url)
    try:
        flat = [bus_bar(c, VENUE, symbol) for symbol, candles in bars.items() for c in candles]
        flat.sort(key=lambda bar: bar.open_time_ns)
        for start in range(0, len(flat), 50):
            await client.xadd(
                f"bars.{{{VENUE}}}.1m", {b"d": encode_bars("bars/bench", flat[start : start + 50])}
            )
    finally:
        await client.aclose()


async def within(check: Callable[[], Awaitable[Any]], timeout_s: float, what: str) -> Any:
    """`check`'s first answer other than None, or SystemExit naming `what` after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while (found := await check()) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"overview_stream: {what} not reached within {timeout_s:g} s")
        await asyncio.sleep(0.5)
    return found


# --- 1 and 2: one overview, in this process ---------------------------------------------------


class Recording:
    """The Upstream's calls passed on, each answer kept (by service, instance, method)."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.answers: dict[tuple[str, str | None, str], Message] = {}
        self.served: dict[str, list[str]] = {}

    def names(self, service: str) -> list[str]:
        self.served[service] = self.upstream.names(service)
        return self.served[service]

    async def unary(
        self, service: str, target: str | None, method: str, request: Message, answer: Any
    ) -> Any:
        got = await self.upstream.unary(service, target, method, request, answer)
        self.answers[(service, target, method)] = got
        return got

    async def first(
        self, service: str, target: str | None, method: str, request: Message, answer: Any
    ) -> Any:
        got = await self.upstream.first(service, target, method, request, answer)
        self.answers[(service, target, method)] = got
        return got

    async def close(self) -> None:
        await self.upstream.close()


class Replay:
    """A Recording's answers given back at once: the overview made with no I/O."""

    def __init__(self, recorded: Recording) -> None:
        self.answers, self.served = dict(recorded.answers), dict(recorded.served)

    def names(self, service: str) -> list[str]:
        return self.served.get(service, [])

    async def unary(
        self, service: str, target: str | None, method: str, request: Message, answer: Any
    ) -> Any:
        return self.answers[(service, target, method)]

    first = unary

    async def close(self) -> None:
        """Nothing opened."""


@dataclass
class Timings:
    wall_ms: list[float] = field(default_factory=list)
    cpu_ms: list[float] = field(default_factory=list)
    serialise_ms: list[float] = field(default_factory=list)
    size_bytes: int = 0
    unavailable: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        found: dict[str, Any] = {
            "count": len(self.wall_ms),
            "wall_ms_median": round(common.median(self.wall_ms), 3),
            "wall_ms_p99": round(common.percentile(self.wall_ms, 99), 3),
            "cpu_ms_median": round(common.median(self.cpu_ms), 3),
            "size_bytes": self.size_bytes,
            "unavailable": self.unavailable,
        }
        if self.serialise_ms:
            found["serialise_ms_median"] = round(common.median(self.serialise_ms), 4)
        return found


async def overviews(source: OverviewSource, count: int, serialise_apart: bool = False) -> Timings:
    """`count` overviews one after another: each take's wall and CPU, and its message's size."""
    timings = Timings()
    gc.collect()
    for _ in range(count):
        wall, cpu = time.perf_counter_ns(), time.process_time_ns()
        overview = await source.take(time.time_ns())
        made = time.perf_counter_ns()
        wire = ow.StreamOverviewResponse(overview=overview).SerializeToString()
        done, cpu = time.perf_counter_ns(), time.process_time_ns() - cpu
        timings.wall_ms.append(((made if serialise_apart else done) - wall) / 1e6)
        timings.cpu_ms.append(cpu / 1e6)
        timings.serialise_ms.append((done - made) / 1e6)
        timings.size_bytes, timings.unavailable = len(wire), list(overview.unavailable)
    if not serialise_apart:
        timings.serialise_ms.clear()
    return timings


async def gathered(resolver: MeshResolver, engine: Overwatch, args: argparse.Namespace) -> dict[str, Any]:
    """(1): Overwatch's OverviewSource on the live mesh, and the answers of its last overview."""
    source = OverviewSource(resolver, board_of(engine))
    recording = Recording(source.upstream)
    source.upstream = cast(Upstream, recording)
    try:
        await overviews(source, 5)  # warm: the channels to each service opened
        timings = await overviews(source, args.builds)
    finally:
        await source.close()
    print(f"one overview gathered and built, {args.builds} in a row: {timings.summary()}")
    return {"summary": timings.summary(), "answers": recording}


async def composed(
    resolver: MeshResolver, recording: Recording, boards: dict[int, Overwatch], runs: int
) -> dict[int, dict[str, Any]]:
    """(2): the same take with the answers given back at once, per board size; the message
    serialised apart."""
    found = {}
    for markets, engine in boards.items():
        source = OverviewSource(resolver, board_of(engine))
        source.upstream = cast(Upstream, Replay(recording))
        await overviews(source, 20, serialise_apart=True)
        found[markets] = (await overviews(source, runs, serialise_apart=True)).summary()
        await source.close()
    return found


# --- 3: the Overwatch process serving N subscribers ------------------------------------------


@dataclass
class Subscribers:
    """N StreamOverview calls read on one channel; what each message brought while `measuring`."""

    measuring: bool = False
    received: int = 0
    ages_ms: list[float] = field(default_factory=list)
    first: set[int] = field(default_factory=set)

    async def read(self, stub: Any, n: int) -> None:
        call = stub.StreamOverview(ow.StreamOverviewRequest(), metadata=AUTH)
        async for message in call:
            now = time.time_ns()
            self.first.add(n)
            if self.measuring:
                self.received += 1
                self.ages_ms.append((now - message.overview.ts_ns) / 1e6)


def _children() -> dict[int, str]:
    """This process's child processes: pid -> the trademesh service it runs."""
    pids: set[int] = set()
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            pids |= {int(p) for p in (task / "children").read_text().split()}
    names = {}
    for pid in pids:
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            if b"trademesh.core.cli" in argv:
                names[pid] = argv[argv.index(b"trademesh.core.cli") + 1].decode()
    return names


async def serve(address: str, overwatch_pid: int, count: int, seconds: float) -> dict[str, Any]:
    """`count` subscribers open, then `seconds` measured."""
    subscribers = Subscribers()
    async with grpc.aio.insecure_channel(address, options=common.CHANNEL_OPTIONS) as channel:
        stub = ow_grpc.OverwatchStub(channel)
        tasks = [asyncio.create_task(subscribers.read(stub, n)) for n in range(count)]
        try:

            async def opened() -> bool | None:
                return True if len(subscribers.first) == count else None

            await within(opened, 60, f"the first overview on each of {count} streams")
            await asyncio.sleep(1.5)  # past the first overviews' burst
            meters = common.CpuMeters(overwatch_pid)
            mesh = {
                pid: (name, common.CpuMeter(pid)) for pid, name in _children().items() if pid != overwatch_pid
            }
            subscribers.measuring = True
            began = time.monotonic()
            await asyncio.sleep(seconds)
            subscribers.measuring = False
            elapsed = time.monotonic() - began
            cpu = meters.read()
            services = {name: round(meter.percent(), 2) for name, meter in mesh.values()}
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    await asyncio.sleep(1.0)  # the calls ended, the process quiet again
    return {
        "subscribers": count,
        "overwatch_cpu_pct": round(cpu["server"], 2),
        "client_cpu_pct": round(cpu["client"], 2),
        "machine_cpu_pct": round(cpu["machine"], 2),
        "mesh_cpu_pct": round(sum(services.values()), 2),
        "mesh_services_cpu_pct": services,
        "overviews_per_s": round(subscribers.received / elapsed, 2),
        "age_ms_median": round(common.median(subscribers.ages_ms), 2),
        "age_ms_p99": round(common.percentile(subscribers.ages_ms, 99), 2),
    }


def served_summary(rounds: list[list[dict[str, Any]]], levels: list[int]) -> list[dict[str, Any]]:
    """Per level, the median over rounds; the ratio to one subscriber; CPU per overview over idle."""

    def med(level: int, key: str) -> float:
        return common.median([r[key] for runs in rounds for r in runs if r["subscribers"] == level])

    idle, idle_mesh = med(0, "overwatch_cpu_pct"), med(0, "mesh_cpu_pct")
    one = med(1, "overwatch_cpu_pct") - idle
    rows = []
    for level in levels:
        cpu, rate = med(level, "overwatch_cpu_pct"), med(level, "overviews_per_s")
        rows.append(
            {
                "subscribers": level,
                "overwatch_cpu_pct": round(cpu, 2),
                "over_idle_pct": round(cpu - idle, 2),
                "over_idle_x_one_subscriber": round((cpu - idle) / one, 2) if level and one > 0 else None,
                # % of a core over idle = 10 ms of CPU a second per 1 %.
                "cpu_ms_per_overview": round((cpu - idle) * 10 / rate, 3) if level and rate else None,
                "overviews_per_s": round(rate, 2),
                "age_ms_median": round(med(level, "age_ms_median"), 2) if level else None,
                "age_ms_p99": round(med(level, "age_ms_p99"), 2) if level else None,
                "mesh_over_idle_pct": round(med(level, "mesh_cpu_pct") - idle_mesh, 2),
                "machine_cpu_pct": round(med(level, "machine_cpu_pct"), 2),
            }
        )
    return rows


# --- the run ----------------------------------------------------------------------------------


def start_overwatch(directory: Path, redis: str, gateway: str, every_s: float) -> ServiceProcess:
    env = {**os.environ, TOKEN: TEST_TOKEN, REDIS_URL: redis, GATEWAY: gateway}
    with (directory / "overwatch.log").open("w") as log:
        return start_service(
            ["overwatch", "--port", "0", "--metrics-port", "-1", "--overview-every-s", f"{every_s:g}"],
            env=env, stderr=log, timeout_s=_READY_S,
        )  # fmt: skip


async def whole_overview(address: str) -> ow.Overview | None:
    """Overwatch's next overview, when every part answered and the detector's strategies are in."""
    async with grpc.aio.insecure_channel(address) as channel:
        call = ow_grpc.OverwatchStub(channel).StreamOverview(
            ow.StreamOverviewRequest(), metadata=AUTH, timeout=10
        )
        message = await call.read()
        call.cancel()
    if not isinstance(message, ow.StreamOverviewResponse):
        return None
    overview = message.overview
    live = {s.name for s in overview.services}
    return overview if live >= _MESH and not overview.unavailable and overview.strategies else None


async def run(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    os.environ[TOKEN] = TEST_TOKEN  # this process's own calls (auth_metadata) carry the mesh token
    redis_base = read_secret(REDIS_URL) or _DEFAULT_REDIS
    server = database_url()
    common.require_local(redis_base, "Redis", "overview_stream")
    common.require_local(server, "PostgreSQL", "overview_stream")
    bars = market_bars(args.markets)
    async with client_mesh(directory, redis_base, server, ["read"], ledger=True) as services:
        await publish(services.redis, bars)
        gateway = f"127.0.0.1:{services.gateway.info['grpc_port']}"
        overwatch = start_overwatch(directory, services.redis, gateway, args.every_s)
        try:
            first = await within(lambda: whole_overview(overwatch.address), _READY_S, "a whole overview")
            print(f"mesh up: {sorted(s.name for s in first.services)}, {len(first.strategies)} strategies, "
                  f"{len(first.board.markets)} markets on the board")  # fmt: skip
            resolver = MeshResolver(gateway)
            await resolver.refresh()
            try:
                engine = engine_of(bars)
                built = await gathered(resolver, engine, args)
                sizes = sorted({3, args.markets, 1000})
                boards = {n: engine if n == args.markets else engine_of(market_bars(n)) for n in sizes}
                pure = await composed(resolver, built["answers"], boards, args.compose_runs)
            finally:
                await resolver.close()
            levels = [0, *args.subscribers]
            rounds = []
            for round_ in range(args.repeats):
                runs = []
                for level in levels:
                    runs.append(await serve(overwatch.address, overwatch.process.pid, level, args.duration))
                    print(f"round {round_ + 1}: {runs[-1]}")
                rounds.append(runs)
        finally:
            overwatch.terminate()
    return {
        "overview": {
            **built["summary"],
            "strategies": len(first.strategies),
            "services": len(first.services),
        },
        "composition": {str(n): figures for n, figures in pure.items()},
        "served": served_summary(rounds, levels),
        "rounds": rounds,
    }


def report(figures: dict[str, Any]) -> None:
    one = figures["overview"]
    print(
        f"\none overview gathered and built (this process, the live mesh): {one['wall_ms_median']} ms "
        f"median, p99 {one['wall_ms_p99']} ms, CPU {one['cpu_ms_median']} ms, {one['size_bytes']:,} bytes"
    )
    compose = figures["composition"]
    smallest = compose[min(compose, key=int)]["wall_ms_median"]
    common.print_table(
        ["board markets", "compose ms", "p99", "x smallest", "serialise ms", "bytes"],
        [[int(n), f["wall_ms_median"], f["wall_ms_p99"], f["wall_ms_median"] / smallest,
          f["serialise_ms_median"], f["size_bytes"]] for n, f in compose.items()],
    )  # fmt: skip
    print()
    columns = {
        "subscribers": "subscribers", "overwatch_cpu_pct": "overwatch cpu %", "over_idle_pct": "over idle",
        "over_idle_x_one_subscriber": "x one", "cpu_ms_per_overview": "cpu ms/overview",
        "overviews_per_s": "overviews/s", "age_ms_median": "age p50 ms", "age_ms_p99": "age p99 ms",
        "mesh_over_idle_pct": "mesh over idle %", "machine_cpu_pct": "machine %",
    }  # fmt: skip
    rows = [["-" if row[key] is None else row[key] for key in columns] for row in figures["served"]]
    common.print_table(list(columns.values()), rows)


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a list of whole numbers such as 1,10,50") from None
    if not counts or min(counts) < 1 or counts[0] != 1:
        raise argparse.ArgumentTypeError(f"{text!r}: counts of 1 or more, starting with 1 (the baseline)")
    return counts


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add = parser.add_argument
    add("--markets", type=int, default=100, help="markets on Overwatch's board (default 100)")
    add(
        "--subscribers", type=_counts, default=[1, 10, 50], help="StreamOverview calls open (default 1,10,50)"
    )
    add("--duration", type=float, default=15.0, help="seconds measured per level and round (default 15)")
    add("--repeats", type=int, default=3, help="rounds of the levels (default 3)")
    add("--builds", type=int, default=300, help="overviews gathered and built in this process (default 300)")
    add("--compose-runs", type=int, default=1000, help="compositions per board size (default 1000)")
    add("--every-s", type=float, default=1.0, help="Overwatch's --overview-every-s (default 1)")
    add("--no-save", action="store_true", help="print only; write no result file")
    args = parser.parse_args()
    if not 1 <= args.markets <= 10_000:
        parser.error(f"--markets: {args.markets} is not in 1..10000")
    return args


def main() -> None:
    args = parse()
    uvloop.install()
    directory = Path(tempfile.mkdtemp(prefix="trademesh-bench-overview-"))
    at = common.now_iso()
    machine = common.machine()
    figures = asyncio.run(run(args, directory))
    report(figures)
    print(f"logs: {directory}; load average at the end: {[round(x, 2) for x in os.getloadavg()]}")
    if not args.no_save:
        payload = {
            "bench": "overview_stream", "at": at, "command": common.command_line(), "machine": machine,
            "loadavg_at_end": [round(x, 2) for x in os.getloadavg()], "params": vars(args),
            "figures": figures,
        }  # fmt: skip
        print(common.write_result("overview_stream", payload))


if __name__ == "__main__":
    main()
