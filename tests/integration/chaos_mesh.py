"""The chaos run's mesh: `trademesh up`'s services, supervised as `up` supervises them, and the
sim venue's own record of what happened (docs/chaos.md).

ChaosMesh starts each service as `up` does (its ServiceCommand's mesh arguments, the mesh token
for all, the trading credential only for the services that hold it, a free port kept across
restarts) under trademesh.core.cli.mesh.supervisor's Child, which restarts it whenever it exits. The
backtester is left out: nothing of a chaos run reaches it. Each service starts once those it
waits for serve (`AFTER`; up starts them one by one, and the run has two minutes). `kill` is a
kill -9 of a serving service; `back` waits until the supervisor has it serving again; `freeze`
stops a service (SIGSTOP) for a while.

VenueWatch follows the sim's StreamExecutions from its first execution (resumed after any
break) and its dead-man switch's trips (Admin GetStatus): the venue's record, not our
services' claims.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import grpc

from tests.bus_signing import held_keys
from tests.chaos_history import Absence, Minimum
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, TEST_TRADE_TOKEN, Stubs
from trademesh.admin.v1 import admin_pb2 as admin
from trademesh.admin.v1 import admin_pb2_grpc as admin_grpc
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.cli.mesh.supervisor import Child, ChildSpec
from trademesh.core.platform.config.env import (
    DATABASE_URL,
    GATEWAY,
    REDIS_URL,
    SESSION_SECRET,
    TOKEN,
    TRADE_TOKEN,
)
from trademesh.core.platform.errors import Unavailable
from trademesh.core.platform.rpc.health_probe import check_health
from trademesh.core.platform.service.command import MeshView, load_command
from trademesh.core.platform.service.registry import SERVICES, Kind
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

__all__ = ["AFTER", "PROTECTION_PATH", "ChaosMesh", "Kill", "VenueWatch", "chaos_mesh"]

# `up`'s services but the backtester, each started once those it waits for serve: the gateway
# first (the others register with it), the venue next (they follow it), the inspector after the
# ledger (its first start books the venue's balances: no fill may come before), the rest at once.
AFTER: dict[str, tuple[str, ...]] = {
    "gateway": (),
    "venue": ("gateway",),
    **{
        name: ("venue",) for name in ("ingest", "recorder", "bars", "bridge", "ledger", "detector", "advisor")
    },
    "inspector": ("ledger",),
}
# The protection path: a fill goes from the venue through ingest and the bus to the inspector,
# whose orders go back to the venue. Its processes run ahead of the machine's other work where
# the test may say so (root): the bound is a promise of a deployment that gives its risk path
# the CPU (a guaranteed QoS, a core of its own), and the suite's other tests or a CPU burner
# beside it are not its load. Starved (8 busy loops on the 2 cores, at the same priority), the
# venue's fills of a burst of entries reached the inspector and its orders the venue 1.0-1.5 s
# late, where the same run took 16-38 ms at the median (docs/chaos.md).
PROTECTION_PATH = ("venue", "ingest", "inspector")
_AHEAD_NICENESS = -10
BACK_WITHIN_S = 90.0  # a killed service serves again within this, or the run fails
_HEALTH_EVERY_S = 0.1
_SERVING_EVERY_S = 0.01
_RECENT_NS = 10_000_000_000


@dataclass(frozen=True)
class Kill:
    service: str
    start_ns: int  # the kill -9
    end_ns: int  # serving again (its serving line)

    @property
    def absence(self) -> Absence:
        return Absence(self.start_ns, self.end_ns, f"kill {self.service}")


class ChaosMesh:
    """The supervised services of one run; `extra` adds arguments to a service's mesh ones."""

    def __init__(
        self,
        directory: Path,
        redis_url: str,
        database_url: str,
        sim_config: Path,
        extra: dict[str, list[str]],
    ) -> None:
        self.directory = directory
        self.env = {
            TOKEN: TEST_TOKEN,
            REDIS_URL: redis_url,
            DATABASE_URL: database_url,
            SESSION_SECRET: secrets.token_urlsafe(32),
        }
        self.view = MeshView(sim_config=sim_config)
        self.extra = extra
        self.children: dict[str, Child] = {}
        self.logs: list[IO[str]] = []
        self.stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._killing: dict[str, asyncio.Lock] = collections.defaultdict(asyncio.Lock)

    def address(self, service: str) -> str:
        return self.children[service].address

    async def start(self) -> None:
        serving = {name: asyncio.Event() for name in AFTER}

        async def start(name: str) -> None:
            for before in AFTER[name]:
                await serving[before].wait()
            await self._start(name)
            serving[name].set()

        async with asyncio.TaskGroup() as group:  # one failing to start cancels the others' starts
            for name in AFTER:
                group.create_task(start(name))
        self._tasks = [asyncio.create_task(child.supervise(self.stop)) for child in self.children.values()]

    async def _start(self, name: str) -> None:
        log = (self.directory / f"{name}.log").open("w")
        self.logs.append(log)
        child = Child(self._spec(name), 10, log)
        self.children[name] = child
        await child.start()
        self._ahead(name)
        if SERVICES[name].kind is Kind.GATEWAY:
            self.env = {**self.env, GATEWAY: child.grpc_address}
        elif SERVICES[name].kind is Kind.VENUE:
            self.view = MeshView(venues=(("sim", child.address),), sim_config=self.view.sim_config)

    def _spec(self, name: str) -> ChildSpec:
        entry = SERVICES[name]
        command = load_command(entry)
        view, extra = self.view, self.extra.get(name, [])
        port_flag = "--grpc-port" if entry.grpc_port is not None else "--metrics-port"
        port_key = "grpc_port" if entry.grpc_port is not None else "metrics_port"

        def args(previous: dict[str, Any]) -> list[str]:
            # A restart keeps its ports (the others know them), as `up`'s does.
            ports = [str(previous.get("port", 0)), str(previous.get(port_key, 0))]
            return [name, *command.mesh_args(view), *extra, "--port", ports[0], port_flag, ports[1]]

        held = command.secrets()
        env = {**self.env, TRADE_TOKEN: TEST_TRADE_TOKEN if TRADE_TOKEN in held else "", **held_keys(held)}
        return ChildSpec(view.venue if entry.kind is Kind.VENUE else name, args, env)

    async def kill(self, service: str) -> Kill:
        """kill -9 (once it serves: a kill during its restart would kill nothing), then wait until
        the supervisor has it serving again. Kills of one service take turns: a plan's second kill
        of it waits until the first one's restart serves."""
        async with self._killing[service]:
            child = self.children[service]
            await self.back(service)
            process = child.process
            assert process is not None
            start = time.time_ns()
            process.kill()
            await process.wait()
            # Back when a new process says it serves (its serving line: the inspector acts from
            # then on), not when a health check next gets through.
            deadline = time.monotonic() + BACK_WITHIN_S
            while child.serving_pid in (0, process.pid):
                if time.monotonic() > deadline:
                    raise Unavailable(f"{service} was not serving {BACK_WITHIN_S:.0f} s after its kill -9")
                await asyncio.sleep(_SERVING_EVERY_S)
            end = time.time_ns()
            self._ahead(service)
            await self.back(service)
            return Kill(service, start, end)

    def _ahead(self, service: str) -> None:
        """A service of the protection path ahead of the machine's other work, where allowed."""
        if service in PROTECTION_PATH:
            ahead(self.children[service].pid)

    async def back(self, service: str) -> None:
        """Until the service serves (a new process after a kill: the old one answers nothing)."""
        deadline = time.monotonic() + BACK_WITHIN_S
        while not await _serving(self.children[service]):
            if time.monotonic() > deadline:
                raise Unavailable(f"{service} was not serving {BACK_WITHIN_S:.0f} s after its kill -9")
            await asyncio.sleep(_HEALTH_EVERY_S)

    async def freeze(self, service: str, seconds: float) -> Absence:
        """SIGSTOP for `seconds` (the scenario's length, not a wait on a condition), then SIGCONT."""
        pid = self.children[service].pid
        start = time.time_ns()
        os.kill(pid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)
        finally:
            os.kill(pid, signal.SIGCONT)
        return Absence(start, time.time_ns(), f"freeze {service}")

    def dump_tasks(self, service: str) -> None:
        """Its asyncio tasks' stacks into its log (trademesh.core.platform.service.lifecycle's SIGUSR1)."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.children[service].pid, signal.SIGUSR1)

    async def stop_services(self, names: list[str]) -> None:
        await asyncio.gather(*(self.children[name].stop() for name in names if name in self.children))

    async def close(self) -> None:
        self.stop.set()
        for child in self.children.values():  # a frozen child would ignore SIGTERM
            with contextlib.suppress(ProcessLookupError):
                if child.pid:
                    os.kill(child.pid, signal.SIGCONT)
        await self.stop_services(list(self.children))
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for log in self.logs:
            log.close()


def ahead(pid: int) -> None:
    """Every thread of the process at `_AHEAD_NICENESS` (Linux's niceness is per thread: gRPC's
    own threads, which carry its calls' completions to the event loop, stayed at the machine's
    priority when only the process's first thread was set)."""
    try:
        threads = [int(tid) for tid in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        threads = [pid]
    for tid in threads:
        with contextlib.suppress(PermissionError, ProcessLookupError):
            os.setpriority(os.PRIO_PROCESS, tid, _AHEAD_NICENESS)


async def _serving(child: Child) -> bool:
    """Whether the child's process (a new one after a kill: the old one answers nothing) serves."""
    if child.process is None or child.process.returncode is not None or child.serving_pid != child.pid:
        return False
    try:
        return await check_health(child.grpc_address, timeout_s=1.0) == "SERVING"
    except Unavailable:
        return False


@contextlib.asynccontextmanager
async def chaos_mesh(
    directory: Path, redis_url: str, database_url: str, sim_config: Path, extra: dict[str, list[str]]
) -> AsyncIterator[ChaosMesh]:
    mesh = ChaosMesh(directory, redis_url, database_url, sim_config, extra)
    try:
        await mesh.start()
        yield mesh
    finally:
        await mesh.close()


@dataclass
class VenueWatch:
    """The sim's own record: every execution from its first (StreamExecutions resumed from epoch
    0, and from the last one seen after a break), and its dead-man switch's trips."""

    address: str
    executions: list[tf.Execution] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)
    trips: list[int] = field(default_factory=list)  # ns of each trip the venue reported
    _epoch: int = 0
    _position: int = 0
    _trips_seen: int = 0
    _probes: int = 0
    _changed: asyncio.Event = field(default_factory=asyncio.Event)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stubs: Stubs | None = None

    @property
    def stubs(self) -> Stubs:
        """The venue's services with the trading credential (the run's operator cancels at the end)."""
        if self._stubs is None:
            channel = grpc.aio.insecure_channel(
                self.address, options=[("grpc.max_receive_message_length", 64 * 1024 * 1024)]
            )
            self._stubs = Stubs(
                channel,
                md_grpc.MarketDataStub(channel),
                tf_grpc.TradeFlowStub(channel),
                admin_grpc.AdminStub(channel),
            )
        return self._stubs

    @property
    def _auth(self) -> tuple[tuple[str, str]]:
        return (("authorization", f"Bearer {TEST_TRADE_TOKEN}"),)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._follow()), asyncio.create_task(self._watch_trips())]

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._stubs is not None:
            await self._stubs.close()

    async def _follow(self) -> None:
        while True:
            resume = tf.StreamExecutionsRequest.Resume(epoch=self._epoch, position=self._position)
            call = self.stubs.tf.StreamExecutions(
                tf.StreamExecutionsRequest(resume=resume), metadata=self._auth
            )
            try:
                async for response in call:
                    self._take(response)
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.2)  # resumed where it broke off

    def _take(self, response: tf.StreamExecutionsResponse) -> None:
        if response.gap:
            self.gaps.append(response.gap_reason)
        self.executions.extend(response.executions)
        self._epoch, self._position = response.epoch, response.position
        self._changed.set()

    async def _watch_trips(self) -> None:
        while True:
            with contextlib.suppress(grpc.aio.AioRpcError):
                status = await self.stubs.admin.GetStatus(
                    admin.GetStatusRequest(), metadata=self._auth, timeout=CALL_TIMEOUT_S
                )
                if status.dead_man.trips > self._trips_seen:
                    self._trips_seen = status.dead_man.trips
                    self.trips.append(status.dead_man.last_trip_ns)
            await asyncio.sleep(0.25)

    async def wait_for(self, check: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not check():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise Unavailable(f"the venue's executions never showed {what} within {timeout_s:.0f} s")
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), remaining)

    async def barrier(self) -> str:
        """Every execution before now is in `executions` once this returns: a probe (a buy far
        under the market, cancelled at once; its client order id returned) and its cancel seen."""
        self._probes += 1
        client_id = f"chaos-probe-{self._probes}"
        bid = Decimal((await self.candle("BTC/USDT")).close)
        request = tf.PlaceOrderRequest(
            symbol="BTC/USDT", side=common.SIDE_BUY, type=tf.ORDER_TYPE_LIMIT, size="0.001",
            price=str((bid / 2).quantize(Decimal("0.01"))), client_order_id=client_id,
        )  # fmt: skip
        await self.stubs.tf.PlaceOrder(request, metadata=self._auth, timeout=CALL_TIMEOUT_S)
        cancel = tf.CancelOrderRequest(client_order_id=client_id)
        await self.stubs.tf.CancelOrder(cancel, metadata=self._auth, timeout=CALL_TIMEOUT_S)
        ended = (tf.ORDER_STATUS_CANCELED, tf.ORDER_STATUS_FILLED)

        def seen() -> bool:
            return any(
                e.order.client_order_id == client_id and e.order.status in ended for e in self.executions
            )

        await self.wait_for(seen, 30, f"the probe {client_id} cancelled")
        return client_id

    async def candle(self, symbol: str) -> md.Candle:
        """The symbol's latest 1 s candle (of the last 10 s: a range's candles come oldest first,
        and a request without a start is from the sim's first, a minute of history earlier)."""
        since = time.time_ns() - _RECENT_NS
        request = md.GetCandlesRequest(
            symbol=symbol, timeframe=common.TIMEFRAME_1_SECOND, start_ns=since, limit=20
        )
        reply = await self.stubs.md.GetCandles(request, metadata=self._auth, timeout=CALL_TIMEOUT_S)
        return reply.candles[-1]

    async def minimums(self) -> dict[str, Minimum]:
        reply = await self.stubs.md.ListInstruments(
            md.ListInstrumentsRequest(), metadata=self._auth, timeout=CALL_TIMEOUT_S
        )
        return {
            i.symbol: Minimum(Decimal(i.min_size or "0"), Decimal(i.min_notional or "0"))
            for i in reply.instruments
        }

    async def ticks(self) -> dict[str, Decimal]:
        reply = await self.stubs.md.ListInstruments(
            md.ListInstrumentsRequest(), metadata=self._auth, timeout=CALL_TIMEOUT_S
        )
        return {i.symbol: Decimal(i.tick_size) for i in reply.instruments}

    async def balances(self) -> dict[str, Decimal]:
        reply = await self.stubs.tf.GetBalances(
            tf.GetBalancesRequest(), metadata=self._auth, timeout=CALL_TIMEOUT_S
        )
        return {b.asset: Decimal(b.total) for b in reply.balances}

    async def margins(self) -> dict[str, Decimal]:
        """Each asset's margin held by positions (Balance.position_margin)."""
        reply = await self.stubs.tf.GetBalances(
            tf.GetBalancesRequest(), metadata=self._auth, timeout=CALL_TIMEOUT_S
        )
        return {b.asset: Decimal(b.position_margin or "0") for b in reply.balances}

    async def flatten(self, symbol: str) -> None:
        """The symbol's position closed by a reduce-only market order (the run's operator, at its
        end: a perpetual left open could be liquidated after the run's last execution is read)."""
        for p in await self.positions():
            size = Decimal(p.size or "0")
            if p.symbol != symbol or size == 0:
                continue
            request = tf.PlaceOrderRequest(
                symbol=symbol, side=common.SIDE_SELL if size > 0 else common.SIDE_BUY,
                type=tf.ORDER_TYPE_MARKET, size=str(abs(size)), reduce_only=True,
                client_order_id="chaos-flatten",
            )  # fmt: skip
            with contextlib.suppress(grpc.aio.AioRpcError):  # liquidated meanwhile: nothing to close
                await self.stubs.tf.PlaceOrder(request, metadata=self._auth, timeout=CALL_TIMEOUT_S)

    async def positions(self) -> list[tf.Position]:
        reply = await self.stubs.tf.GetPositions(
            tf.GetPositionsRequest(), metadata=self._auth, timeout=CALL_TIMEOUT_S
        )
        return list(reply.positions)

    async def cancel_all(self) -> None:
        await self.stubs.tf.CancelAllOrders(
            tf.CancelAllOrdersRequest(), metadata=self._auth, timeout=CALL_TIMEOUT_S
        )
