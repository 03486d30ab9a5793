"""The mesh tests/integration/test_fuzz.py fuzzes: every service trademesh serves as a real
process, registered with a real gateway (venues found through its registry, as `trademesh up`
runs them; those that run strategies also get `--venue sim=...`; the Supervisor and the Telegram
bot act through the gateway's tools with keys of their own, the bot on a stand-in for the Bot
API), each with its Prometheus port; the pools of real values read from it; and what the fuzz
reads afterwards: the work each process holds (tasks on its event loop, retry loops failing,
markets and venues it follows, streams open at the venue and the gateway), the backtests'
ranges, its answers to good requests (probes), its memory, and its log (the lines repeated most
in a second).
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import math
import re
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
import redis.asyncio as aioredis

from tests.integration.fuzz_pools import Pools
from tests.integration.fuzz_seeds import MADE_PATCHES, policy_files, probes, seeds, strategy_files
from tests.integration.fuzz_support import read_rss_kib
from tests.integration.gateway_support import (
    Gateway,
    Processes,
    at_once,
    both,
    key_taken,
    list_instances,
    new_key,
    run_at_once,
)
from tests.integration.mesh import ADVISOR_TEST_CONFIG, WARM_HISTORY_S, redis_db, venue_link
from tests.integration.postgres_server import new_database
from tests.integration.support import TEST_TOKEN, TEST_TRADE_TOKEN, metric_samples, until
from tests.integration.telegram_fuzz import OPS
from tests.overwatch_support import bus_bar
from tests.telegram_standin import BotApiStandin, bot_api_standin
from trademesh.backtest.v1 import backtest_pb2 as bt
from trademesh.backtest.v1 import backtest_pb2_grpc as bt_grpc
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.regime import Regime
from trademesh.core.overwatch.synthetic import SeriesSpec, segment_bars
from trademesh.core.platform.bus.codec import FIELD, encode_bars
from trademesh.core.platform.config.env import (
    SUPERVISOR_API_KEY,
    TELEGRAM_API_KEY,
    TELEGRAM_BASE_URL,
    TELEGRAM_BOT_TOKEN,
)
from trademesh.core.platform.mesh_tools import MeshTools
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.overwatch.v1 import overwatch_pb2_grpc as ow_grpc
from trademesh.patch.v1 import patch_pb2 as pp
from trademesh.patch.v1 import patch_pb2_grpc as pp_grpc
from trademesh.supervisor.v1 import supervisor_pb2 as sv
from trademesh.supervisor.v1 import supervisor_pb2_grpc as sv_grpc

__all__ = [
    "BOT_TOKEN",
    "MESH_SERVICES",
    "FuzzMesh",
    "Fuzzed",
    "Work",
    "fuzz_mesh",
    "log_repeats",
    "probe",
    "read_work",
    "watch_work",
    "work_of",
]

Metadata = tuple[tuple[str, str], ...]
AUTH: Metadata = (("authorization", f"Bearer {TEST_TOKEN}"),)
# The venue's order RPCs take only the trading credential (good for its other RPCs too): with the
# mesh token, every fuzzed order would be refused before its body is read.
TRADE_AUTH: Metadata = (("authorization", f"Bearer {TEST_TRADE_TOKEN}"),)
# The mesh services besides the venue and the gateway, each fuzzed (ingest and the recorder serve
# no RPC of their own: health and reflection; they are here for the work they do for the others:
# the venue's executions on the bus, the tables the advisor and the backtests read). Overwatch
# reads the 1m bars the fixture publishes for the sim's markets (no bars service in this mesh).
# The Supervisor looks at the mesh every 2 s through the gateway's tools, with a proposal open for
# the fuzz's Approve and Reject to meet (_proposed).
MESH_SERVICES = (
    "bridge", "ingest", "recorder", "advisor", "detector", "inspector", "ledger", "backtester", "overwatch",
    "supervisor",
)  # fmt: skip
# The services that act through the gateway's MCP tools with keys of their own, made while the mesh
# starts (they start once their keys are there), as `trademesh up` and docs/telegram.md make them.
# The Telegram bot serves no RPC of its own: it is fed fuzzed Bot API updates (test_fuzz.py).
_KEYED = {"supervisor": ("read", "trade"), "telegram": ("read", "trade", "close_all")}
BOT_TOKEN = "123456:fuzz-bot-token"
# 1m bars of each of the sim's markets on the bus before Overwatch starts: past its 100-bar
# warm-up, so its board holds a regime for each when the fuzz begins.
_OVERWATCH_BARS = 120
# Registrations the fuzz makes up (Registry/Register from reflection) drop out this soon, and
# with them whatever the services follow for them.
_REGISTRY = ("--heartbeat-interval-s", "1", "--registry-ttl-s", "4")
_HOUR_S = 3600
_MINUTE_NS = 60 * 10**9
_SCOPES = ("read", "trade", "admin", "close_all")
# The work before the fuzz: the least read over this long, every this often (Work.least).
_BEFORE_S = 2.5
_WATCH_EVERY_S = 0.25


@dataclass
class Fuzzed:
    """One fuzzed process: where it serves, its log, its metrics, and its state before the fuzz."""

    name: str
    address: str
    pid: int
    log_path: Path
    metrics_url: str
    auth: Metadata = AUTH
    rss_kib: int = 0
    before: Work | None = None
    probed: str | None = None  # what went wrong with its probes before the fuzz, if anything

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def metrics(self) -> str:
        with urllib.request.urlopen(self.metrics_url, timeout=10) as answer:
            body: bytes = answer.read()
        return body.decode()


@dataclass(frozen=True)
class Work:
    """What a process holds that a request can start: tasks on its event loop, retry loops
    failing now (trademesh_retrying_loops: a follower of a venue nobody serves, a subscription
    resent though refused), the markets and venues it follows (gauges named *_followed_*), its
    open streams (*_subscribers, *_open_streams, the Mux's sessions and subscriptions)."""

    tasks: float
    retrying: float
    held: Mapping[str, float] = field(default_factory=dict)

    def over(self, before: Work, task_slack: float, held_slack: float) -> list[str]:
        """What grew past `before` by more than the slack, any retry loop more (empty: none)."""
        found = []
        if self.tasks > before.tasks + task_slack:
            found.append(f"tasks {before.tasks:.0f} -> {self.tasks:.0f}")
        if self.retrying > before.retrying:
            found.append(f"retry loops failing {before.retrying:.0f} -> {self.retrying:.0f}")
        for name, value in self.held.items():
            if value > before.held.get(name, 0.0) + held_slack:
                found.append(f"{name} {before.held.get(name, 0.0):.0f} -> {value:.0f}")
        return found

    @property
    def read(self) -> bool:
        """Whether each count was read (no NaN: a least of readings that were all NaN is NaN)."""
        return not any(math.isnan(value) for value in (self.tasks, self.retrying, *self.held.values()))

    @staticmethod
    def least(readings: Sequence[Work]) -> Work:
        """What stayed through `readings`: each count at its least (a reading taken while the
        metrics thread saw the tasks change, NaN, aside). Work in flight is in some readings
        only: the gateway's services board checks every instance every 2 s for 60 s after its
        last look (docs/operations.md), a few tasks per instance for each round's moment, and
        one reading in a round once counted 27 tasks more than before the fuzz with none left.
        Work a request left behind is in every reading."""

        def low(values: Iterable[float]) -> float:
            return min((v for v in values if not math.isnan(v)), default=math.nan)

        names = {name for reading in readings for name in reading.held}
        held = {name: low(r.held.get(name, 0.0) for r in readings) for name in sorted(names)}
        return Work(low(r.tasks for r in readings), low(r.retrying for r in readings), held)


@dataclass
class FuzzMesh:
    gateway: Gateway
    key: str  # an API key with every scope, for MCP and the Mux
    services: dict[str, Fuzzed]
    # The earliest time the mesh can have recorded: the sim's history before its start, or the
    # first of the 1m bars the fixture publishes for Overwatch (two hours back), the earlier.
    recorded_from_ns: int
    pools: Pools
    price: Decimal  # the sim's BTC/USDT when the fuzz began
    strategy: str  # a real strategy's id
    listed: frozenset[str]  # the sim's symbols
    telegram: BotApiStandin  # the Bot API the bot (services["telegram"]) polls
    bot_key: str  # the bot's own API key (read, trade, close_all)

    @property
    def port(self) -> int:
        return self.gateway.service.port


_HELD = re.compile(
    r"trademesh_\w*_followed_\w+|\w*_subscribers|\w*_open_streams|\w*_watchers"
    r"|gateway_mux_(sessions|subscriptions)"
)


def work_of(text: str) -> Work:
    """The work a process's /metrics page shows."""
    tasks = sum(metric_samples(text, "trademesh_event_loop_tasks").values())
    retrying = sum(metric_samples(text, "trademesh_retrying_loops").values())
    held: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE ") and line.endswith(" gauge"):
            name = line.split()[2]
            if _HELD.fullmatch(name):
                held[name] = sum(metric_samples(text, name).values())
    return Work(tasks, retrying, held)


async def probe(service: Fuzzed, mesh: FuzzMesh) -> str | None:
    """What went wrong with the service's probes (tests.integration.fuzz_seeds.probes), or None."""
    identity = {"request_serializer": lambda b: b, "response_deserializer": lambda b: b}
    async with grpc.aio.insecure_channel(service.address) as channel:
        for path, request in probes(mesh.price, mesh.strategy)[service.name]:
            body = request.SerializeToString()
            try:
                await channel.unary_unary(path, **identity)(body, metadata=service.auth, timeout=10)
            except grpc.aio.AioRpcError as error:
                return f"{path} answered {error.code().name}: {error.details()}"
    return None


async def read_work(service: Fuzzed) -> Work:
    return work_of(await asyncio.to_thread(service.metrics))


# What a watch of the work ends on: each process's least reading so far (watch_work).
Settled = Callable[[Mapping[str, Work]], bool]


async def watch_work(
    services: Mapping[str, Fuzzed],
    window_s: float,
    settled: Settled | None = None,
    at_least_s: float = 0.0,
) -> dict[str, list[Work]]:
    """Each process's work, read all at once every _WATCH_EVERY_S for `window_s` (longer than the
    gateway's services board's round period, 2 s: the least reading of each is its work with
    nothing in flight, Work.least). With `settled`: ended as soon as it holds of each one's least
    so far, every count read, and `at_least_s` has passed. A least only falls as readings come
    (Work.least), so the whole window's would have held it too: the end comes sooner, the
    verdict is the same."""
    readings: dict[str, list[Work]] = {name: [] for name in services}
    began = time.monotonic()
    while True:
        now = await asyncio.gather(*(read_work(service) for service in services.values()))
        for name, work in zip(services, now, strict=True):
            readings[name].append(work)
        elapsed = time.monotonic() - began
        if elapsed >= window_s or (elapsed >= at_least_s and _holds(settled, readings)):
            return readings
        await asyncio.sleep(_WATCH_EVERY_S)  # the interval of a polling loop


def _holds(settled: Settled | None, readings: Mapping[str, Sequence[Work]]) -> bool:
    """Whether `settled` holds of each process's least reading so far, each count read."""
    if settled is None:
        return False
    least = {name: Work.least(works) for name, works in readings.items()}
    return all(work.read for work in least.values()) and settled(least)


async def runs_beyond_history(service: Fuzzed, mesh: FuzzMesh) -> list[str]:
    """The backtests whose range reaches outside what the mesh can have recorded (from the
    earliest it can have, less an hour, to now and an hour): a run there would hold the hub's
    room for as long as the range is (issue 37: 1970-2070 held it for 65 minutes)."""
    async with grpc.aio.insecure_channel(service.address) as channel:
        runs = await bt_grpc.BacktestStub(channel).ListRuns(
            bt.ListRunsRequest(limit=500), metadata=AUTH, timeout=10
        )
    first = mesh.recorded_from_ns - _HOUR_S * 10**9
    last = time.time_ns() + _HOUR_S * 10**9
    return [
        f"{run.run_id} ({bt.RunStatus.Name(run.status)}): {run.options.start_ns} to {run.options.end_ns} ns"
        for run in runs.runs
        if run.options.start_ns < first or run.options.end_ns > last
    ]


_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d{3} ")
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_NUMBER = re.compile(r"\d+")


def log_repeats(text: str) -> tuple[int, str]:
    """The most times one line (its numbers and quoted values aside) was logged in one second,
    and that line."""
    counts: Counter[tuple[str, str]] = Counter()
    for line in text.splitlines():
        stamp = _STAMP.match(line)
        if stamp is None:
            continue  # a traceback's lines, a record's continuation
        shape = _NUMBER.sub("0", _QUOTED.sub("Q", line[stamp.end() :]))
        counts[(stamp.group(1), shape)] += 1
    if not counts:
        return 0, ""
    (_, shape), most = counts.most_common(1)[0]
    return most, shape


# ---------------------------------------------------------------- the fixture


@pytest.fixture(scope="module")
async def fuzz_mesh(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> AsyncIterator[FuzzMesh]:
    directory = tmp_path_factory.mktemp("fuzz")
    async with (
        new_database(database_url, "fuzz") as database,
        redis_db(redis_url) as bus,
        bot_api_standin(BOT_TOKEN) as telegram,
    ):
        processes = Processes(directory, database)
        try:
            yield await _started(processes, directory, database, bus, telegram)
        finally:
            await processes.stop_all()


async def _started(
    processes: Processes, directory: Path, database: str, bus: str, telegram: BotApiStandin
) -> FuzzMesh:
    born = time.time_ns()
    advisor_config = directory / "advisor.toml"
    advisor_config.write_text(ADVISOR_TEST_CONFIG)
    policies = directory / "policies.toml"
    policies.write_text(_loose_policies())
    plans: dict[str, tuple[str, ...]] = {
        "bridge": (),
        "ingest": (),
        "recorder": ("--database-url", database),
        "advisor": ("--database-url", database, "--config", str(advisor_config),
                    "--model-dir", str(directory / "models"), "--timeframe", "1s"),
        "detector": ("--database-url", database),
        "inspector": ("--policies", str(policies)),
        "ledger": ("--database-url", database),
        "backtester": ("--database-url", database),
        "overwatch": ("--discover-s", "1"),
        "supervisor": ("--every-s", "2"),
        "telegram": ("--chat-ids", str(OPS), "--poll-s", "5"),
    }  # fmt: skip

    def make_keys() -> list[str]:
        scopes = {"fuzz": _SCOPES, **_KEYED}
        return run_at_once(*(functools.partial(new_key, database, n, s) for n, s in scopes.items()))

    bars_from = await _publish_bars(bus, ("BTC/USDT", "ETH/USDT"))
    recorded_from = min(born - WARM_HISTORY_S * 10**9, bars_from)
    # The keys are made (their CLI's starts) while the gateway starts; then the sim, alone (the
    # services that follow it wait for its address: one started beside six others took four
    # times as long); then every service at once, those with a key of their own among them.
    (key, *keys), gateway = await both(make_keys, lambda: processes.gateway(*_REGISTRY))
    bot = {TELEGRAM_API_KEY: keys[1], TELEGRAM_BOT_TOKEN: BOT_TOKEN, TELEGRAM_BASE_URL: telegram.url}
    secrets = {"supervisor": {SUPERVISOR_API_KEY: keys[0]}, "telegram": bot}
    sim = await asyncio.to_thread(
        processes.sim, gateway, f"history_s = {WARM_HISTORY_S}\n", 0, "--metrics-port", "0"
    )

    def start(name: str) -> Callable[[], ServiceProcess]:
        if name in _KEYED:
            args = ("--gateway-url", _url(gateway), *plans[name], "--metrics-port", "0")
            return lambda: processes.mesh_service(gateway, name, *args, redis_url=bus, env=secrets[name])
        args = (*venue_link(name, sim.address), *plans[name], "--metrics-port", "0")
        return lambda: processes.mesh_service(gateway, name, *args, redis_url=bus)

    names = tuple(dict.fromkeys((*MESH_SERVICES, *_KEYED)))
    by_name = dict(zip(names, await at_once(*map(start, names)), strict=True))
    services = {"venue": _fuzzed(processes, "venue", sim, TRADE_AUTH)}
    for name in (*MESH_SERVICES, "telegram"):
        services[name] = _fuzzed(processes, name, by_name[name])
    services["registry"] = Fuzzed(
        "registry",
        gateway.grpc_address,
        gateway.service.process.pid,
        gateway.log_path,
        f"{_url(gateway)}/metrics",
    )
    # Overwatch's board warms while the mesh registers and the Supervisor proposes.
    _, (patches, paused, proposal) = await asyncio.gather(
        _board_warm(services["overwatch"], 2), _proposal(services, gateway, key)
    )
    pools = await _pools(services, patches, paused, proposal)
    mesh = FuzzMesh(gateway, key, services, recorded_from, *pools, telegram, keys[1])
    before = await watch_work(services, _BEFORE_S)
    for name, service in services.items():
        service.rss_kib = read_rss_kib(service.pid)
        service.before = Work.least(before[name])
    probed = await asyncio.gather(*(probe(service, mesh) for service in services.values()))
    for service, problem in zip(services.values(), probed, strict=True):
        service.probed = problem
    return mesh


async def _publish_bars(bus: str, symbols: tuple[str, ...]) -> int:
    """Overwatch's input as the bars service would have published it: the sim's markets' last
    _OVERWATCH_BARS closed 1m bars (a synthetic range, each market its own), up to this minute
    (the recorder records them: backtests may read them). The first bar's open time."""
    last = time.time_ns() // _MINUTE_NS * _MINUTE_NS - _MINUTE_NS
    earliest = last
    client = aioredis.Redis.from_url(bus)
    try:
        for seed, symbol in enumerate(symbols):
            series = segment_bars(Regime.RANGE, 0, seed=seed, spec=SeriesSpec(warmup_bars=_OVERWATCH_BARS))
            first = last - (len(series.bars) - 1) * _MINUTE_NS
            bars = [
                bus_bar(dataclasses.replace(c, open_time_ns=first + i * _MINUTE_NS), "sim", symbol)
                for i, c in enumerate(series.bars)
            ]
            await client.xadd("bars.{sim}.1m", {FIELD: encode_bars("bars/fuzz", bars)})
            earliest = min(earliest, first)
    finally:
        await client.aclose()
    return earliest


async def _board_warm(overwatch: Fuzzed, markets: int) -> None:
    """Until Overwatch's board holds `markets` markets, each past its warm-up."""
    async with grpc.aio.insecure_channel(overwatch.address) as channel:
        stub = ow_grpc.OverwatchStub(channel)

        async def warm() -> bool | None:
            board = (await stub.GetBoard(ow.GetBoardRequest(), metadata=AUTH, timeout=10)).board
            known = [m for m in board.markets if m.regime not in (ow.REGIME_UNSPECIFIED, ow.REGIME_UNKNOWN)]
            return True if len(known) == markets else None

        await until(warm, 60, interval_s=0.5, what=f"Overwatch's board warm with {markets} markets")


async def _proposal(
    services: Mapping[str, Fuzzed], gateway: Gateway, key: str
) -> tuple[Sequence[pp.PatchSummary], str, str]:
    """Once every service is registered and the gateway takes `key`: the detector's patches, the
    strategy paused, and the Supervisor's proposal to resume it (_proposed)."""
    await asyncio.gather(_registered(gateway, {"sim", *MESH_SERVICES, *_KEYED}), key_taken(gateway, key))
    patches = await _patches(services["detector"])
    paused = sorted({p.patch_id.split("/")[0] for p in patches})[-1]
    return patches, paused, await _proposed(services["supervisor"], gateway, key, paused)


def _loose_policies() -> str:
    """The shipped policy set with its rate, open-order and loss-streak limits out of the fuzz's
    reach: hundreds of intents a second must still be checked for what they ask, not throttled."""
    text = Path("trademesh/core/inspector/default_policies.toml").read_text()
    for tight, loose in (("max_per_venue = 50", "max_per_venue = 100000"),
                         ("max_per_strategy = 20", "max_per_strategy = 100000"),
                         ("max_open = 50", "max_open = 100000"),
                         ("max_loss_streak = 6", "max_loss_streak = 1000")):  # fmt: skip
        assert tight in text, f"the shipped policies have no {tight!r}"
        text = text.replace(tight, loose)
    return text


def _url(gateway: Gateway) -> str:
    return f"http://127.0.0.1:{gateway.service.port}"


def _fuzzed(processes: Processes, name: str, process: ServiceProcess, auth: Metadata = AUTH) -> Fuzzed:
    metrics = f"http://127.0.0.1:{process.info['metrics_port']}/metrics"
    return Fuzzed(name, process.address, process.process.pid, processes.log_path(process), metrics, auth)


async def _registered(gateway: Gateway, names: set[str]) -> None:
    async def check() -> bool | None:
        return True if names <= set(await list_instances(gateway)) else None

    await until(check, 60, what=f"{sorted(names)} registered with the gateway")


# ---------------------------------------------------------------- the pools


async def _patches(detector: Fuzzed) -> Sequence[pp.PatchSummary]:
    async with grpc.aio.insecure_channel(detector.address) as channel:
        stub = pp_grpc.PatchStub(channel)

        async def listed() -> pp.ListPatchesResponse | None:
            answer = await stub.ListPatches(pp.ListPatchesRequest(), metadata=AUTH, timeout=10)
            return answer if answer.patches else None

        return (await until(listed, 60, interval_s=0.5, what="the detector's patches")).patches


async def _proposed(supervisor: Fuzzed, gateway: Gateway, key: str, strategy: str) -> str:
    """The Supervisor's proposal to resume `strategy`, paused here through the gateway's tool as
    an operator would (its rules propose resuming a paused strategy with no drawdown): a real
    proposal for the fuzz's Approve and Reject to meet."""
    await MeshTools(_url(gateway), key).call("pause_strategy", strategy=strategy)
    async with grpc.aio.insecure_channel(supervisor.address) as channel:
        stub = sv_grpc.SupervisorStub(channel)

        async def proposed() -> str | None:
            state = await stub.GetState(sv.GetStateRequest(), metadata=AUTH, timeout=10)
            resumes = [p for p in state.open if p.kind == sv.ACTION_KIND_RESUME and p.strategy == strategy]
            return resumes[0].proposal_id if resumes else None

        what = f"the Supervisor's proposal to resume {strategy}"
        return await until(proposed, 60, interval_s=0.5, what=what)


async def _pools(
    services: Mapping[str, Fuzzed], patches: Sequence[pp.PatchSummary], paused: str, proposal: str
) -> tuple[Pools, Decimal, str, frozenset[str]]:
    """The mesh's real values: its venue, the sim's symbols, the detector's patches (their ids,
    strategies, modules, ports, params; the graph of one whose strategy is not `paused`), the
    module types, strategy files and policy sets (real ones and ones made bad), the
    Supervisor's open `proposal`."""
    graph_of = next(p.patch_id for p in patches if not p.patch_id.startswith(f"{paused}/"))
    async with grpc.aio.insecure_channel(services["detector"].address) as channel:
        stub = pp_grpc.PatchStub(channel)
        graph = (await stub.GetPatch(pp.GetPatchRequest(patch_id=graph_of), metadata=AUTH, timeout=10)).patch
        catalog = (await stub.GetCatalog(pp.GetCatalogRequest(), metadata=AUTH, timeout=10)).modules
    patch_ids = [p.patch_id for p in patches] + list(MADE_PATCHES)
    strategies = sorted({graph.strategy_id, *(p.patch_id.split("/")[0] for p in patches)})
    price = await _price(services["venue"])
    ports = sorted({port.name for m in catalog for port in (*m.inputs, *m.outputs)})
    modules = [m.module_id for m in graph.modules]
    pools = Pools(
        venues=("sim",),
        symbols=("BTC/USDT", "ETH/USDT"),
        ids={
            "patch_id": patch_ids, "patch_ids": patch_ids, "strategy_id": strategies,
            "strategies": strategies, "strategy": strategies, "module_id": modules, "from_module": modules,
            "to_module": modules,
            "type": [m.type for m in catalog], "from_port": ports, "to_port": ports, "ports": ports,
            "key": sorted({p.name for m in catalog for p in m.params}), "strategy_toml": strategy_files(),
            "toml": policy_files(), "policy": policy_files(), "asset": ["USDT", "BTC", "ETH"],
            "timeframe": ["1s", "1m", "1h", "1d"], "regime": ["trend_up", "unknown", "up.calm", "flat.calm"],
            "llm": ["off", "on"], "latency": ["model", "0", "zero"], "proposal_id": [proposal],
        },
        seeds=seeds(price, graph, graph.strategy_id, MADE_PATCHES, proposal),
    )  # fmt: skip
    return pools, price, graph.strategy_id, await _listed(services["venue"])


async def _listed(venue: Fuzzed) -> frozenset[str]:
    async with grpc.aio.insecure_channel(venue.address) as channel:
        answer = await md_grpc.MarketDataStub(channel).ListInstruments(
            md.ListInstrumentsRequest(), metadata=AUTH, timeout=10
        )
    return frozenset(i.symbol for i in answer.instruments)


async def _price(venue: Fuzzed) -> Decimal:
    """The sim's last BTC/USDT price (its last 1s candle's close)."""
    request = md.GetCandlesRequest(symbol="BTC/USDT", timeframe=common.TIMEFRAME_1_SECOND, limit=1)
    async with grpc.aio.insecure_channel(venue.address) as channel:
        answer = await md_grpc.MarketDataStub(channel).GetCandles(request, metadata=AUTH, timeout=10)
    return Decimal(answer.candles[-1].close)
