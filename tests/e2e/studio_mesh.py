"""The mesh Studio runs against in the browser tests, every part a real `trademesh` process.

The gateway starts first (HTTP and gRPC on free ports, Studio's build from trademesh/gateway/studio/dist);
then the sim venue, ingest, recorder, bars, bridge, the detector (the example strategies, its
patches in the module's database), Overwatch (the regimes of the bars' streams, on 1s bars:
OVERWATCH_TIMEFRAME) and the Screener (the shipped sim-movers and tests/e2e/screens/), each
registering with the gateway
through TRADEMESH_GATEWAY, exactly as `trademesh up` runs them. The advisor (deciding on the
detector's signals, its LLM the stand-in of tests/llm_standin.py, its own process) and the
inspector (the only caller that places orders: Studio's order ticket goes through it) and the
ledger (the books of every fill, in the mesh's database beside the recorder's tables) and the
backtest hub (runs over the recorder's history, its results in the same database) and the
Supervisor (its own key, as `trademesh up` makes it) are started by the modules that need them.
The API key comes from `trademesh keys create`, as an operator would make one.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO

import grpc

from tests.forked_services import run_command
from tests.integration.mesh import (
    ADVISOR_TEST_CONFIG,
    WARM_HISTORY_S,
    MeshProcesses,
    sim_config,
    venue_link,
)
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, TEST_TRADE_TOKEN, until
from tests.llm_standin import Standin, start_standin
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.cli.mesh.up import API_KEY_SCOPES
from trademesh.core.domain.decimals import format_decimal
from trademesh.core.platform.config.env import (
    DATABASE_URL,
    GATEWAY,
    REDIS_URL,
    SESSION_SECRET,
    SUPERVISOR_API_KEY,
    TOKEN,
)
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.core.screener.screen_file import SCREENS_DIR
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf
from trademesh.tradeflow.v1 import tradeflow_pb2_grpc as tf_grpc

__all__ = ["ARTIFACTS", "OVERWATCH_TIMEFRAME", "ROOT", "STUDIO_DIST", "StudioMesh", "artifact", "create_key"]

ROOT = Path(__file__).resolve().parents[2]
STUDIO_DIST = ROOT / "trademesh" / "gateway" / "studio" / "dist"
ARTIFACTS = ROOT / "test-artifacts" / "e2e"
# Fixed for the module, so a restarted gateway still accepts the sessions it signed before.
_SESSION_SECRET = "e2e-session-secret-0123456789abcdef-0123456789"
_AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
_TRADE = (("authorization", f"Bearer {TEST_TRADE_TOKEN}"),)
# Overwatch has no warm-up option (its classifier's 100 bars): on the 1m bars `trademesh up` reads
# the sim's markets would read `unknown` for 100 minutes of a mesh that lives a few; on 1s bars
# they leave the warm-up after ~100 s of live bars.
OVERWATCH_TIMEFRAME = "1s"


def artifact(name: str) -> Path:
    """Where a screenshot named `name` goes (test-artifacts/ is kept out of git)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.png"


def create_key(database_url: str, name: str, scopes: Sequence[str] = API_KEY_SCOPES) -> str:
    """`trademesh keys create NAME`: the new API key, printed alone on stdout. By default it has
    the scopes of the key `trademesh up` makes for Studio (trademesh.core.cli.mesh.up.API_KEY_SCOPES)."""
    flags = [arg for scope in scopes for arg in ("--scope", scope)]
    done = run_command(["keys", "create", name, *flags, "--database-url", database_url], timeout_s=60)
    assert done.returncode == 0, f"keys create failed: {done.stderr}"
    key = done.stdout.strip()
    assert key and "\n" not in key, f"keys create printed {done.stdout!r}"
    return key


@dataclass
class StudioMesh:
    directory: Path
    redis_url: str
    database_url: str
    gateway: ServiceProcess | None = None
    venue: ServiceProcess | None = None
    bridge: ServiceProcess | None = None
    detector: ServiceProcess | None = None
    overwatch: ServiceProcess | None = None
    screener: ServiceProcess | None = None
    advisor: ServiceProcess | None = None
    inspector: ServiceProcess | None = None
    ledger: ServiceProcess | None = None
    backtester: ServiceProcess | None = None
    supervisor: ServiceProcess | None = None
    standin: Standin | None = None
    processes: MeshProcesses = field(init=False)
    _logs: list[IO[str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.processes = MeshProcesses(self.directory, self.redis_url, self.database_url)

    @property
    def url(self) -> str:
        assert self.gateway is not None
        return f"http://127.0.0.1:{self.gateway.port}"

    def start_gateway(self, port: int = 0, grpc_port: int = 0) -> None:
        log = (self.directory / f"gateway-{len(self._logs)}.log").open("w")
        self._logs.append(log)
        args = [
            "gateway",
            "--port",
            str(port),
            "--grpc-port",
            str(grpc_port),
            "--studio-dir",
            str(STUDIO_DIST),
        ]
        # Short heartbeats: a restarted gateway learns the services again within a second or two.
        # The product's ttl (15 s), not 5: no test here waits for an instance to drop out, and at
        # load 20-25 a starved service's heartbeats failed for 5 s (its 3 s call deadline passed
        # twice): it dropped out, and a call through the gateway found it missing for a moment.
        args += ["--heartbeat-interval-s", "1", "--registry-ttl-s", "15"]
        # REDIS_URL: the bus every service logs to, which the gateway's Logs/Tail reads (LogHub).
        env = {TOKEN: TEST_TOKEN, DATABASE_URL: self.database_url, SESSION_SECRET: _SESSION_SECRET}
        env[REDIS_URL] = self.redis_url
        self.gateway = start_service(args, env=env, stderr=log, timeout_s=60)
        self.processes.env[GATEWAY] = f"127.0.0.1:{self.gateway.info['grpc_port']}"

    def stop_gateway(self) -> tuple[int, int]:
        """Stops the gateway; returns its (HTTP, gRPC) ports, to start it again on them."""
        assert self.gateway is not None
        ports = (self.gateway.port, int(self.gateway.info["grpc_port"]))
        self.gateway.terminate()
        self.gateway = None
        return ports

    def start_services(self) -> None:
        """The sim venue, and the services following it, each started as soon as what it needs
        serves: one after the other, their starts added up to most of the mesh's set-up (the
        recorder's alone, its migrations and partitions, is a second or two)."""
        # A minute of history: the detector's example strategies warm from the sim's candles at once.
        config = sim_config(self.directory, trades_per_s=5, book_updates_per_s=10, history_s=WARM_HISTORY_S)
        with ThreadPoolExecutor() as starting:  # on leaving, every start has ended
            bridge = starting.submit(self.start_bridge)  # finds the venue through the gateway
            # Its metrics on a port of its own: the gateway's services board reads its events/s.
            self.venue = self.processes.start("venue", "sim", "--config", str(config), "--metrics-port", "0")
            venue = self.venue.address
            followers = [
                starting.submit(self.processes.start, name, *venue_link(name, venue))
                for name in ("ingest", "recorder", "bars")
            ]
            detector = starting.submit(self.start_detector)
            overwatch = starting.submit(self.start_overwatch)
            screener = starting.submit(self.start_screener)
            bridge.result()
            for follower in followers:
                follower.result()
            self.detector = detector.result()
            self.overwatch = overwatch.result()
            self.screener = screener.result()

    def start_overwatch(self) -> ServiceProcess:
        """Overwatch on the mesh's bus: it follows every bars.{<venue>}.1s stream (looking for new
        ones every half second), registered with the gateway as `overwatch`."""
        args = ["--timeframe", OVERWATCH_TIMEFRAME, "--discover-s", "0.5"]
        return self.processes.start("overwatch", *args)

    def start_screener(self) -> ServiceProcess:
        """The Screener on the mesh's bus: the shipped sim-movers, and tests/e2e/screens/'s."""
        screens = self.directory / "screens"
        screens.mkdir(exist_ok=True)
        for path in [SCREENS_DIR / "sim-movers.toml", *(ROOT / "tests" / "e2e" / "screens").glob("*.toml")]:
            (screens / path.name).write_text(path.read_text())
        return self.processes.start("screener", "--screens", str(screens))

    def start_detector(self, *args: str) -> ServiceProcess:
        """A detector on the sim (the example strategies, or `args`' --instance, --strategy)."""
        assert self.venue is not None
        link = venue_link("detector", self.venue.address)
        return self.processes.start("detector", *link, "--database-url", self.database_url, *args)

    def start_advisor(self, llm_mode: str, config_text: str = ADVISOR_TEST_CONFIG) -> ServiceProcess:
        """The advisor on the sim, registered with the gateway as `advisor`; its LLM (model
        `primary`) is the stand-in answering in `llm_mode` (tests/llm_standin.py's modes); its
        pipeline's config `config_text` (TOML)."""
        assert self.venue is not None and self.advisor is None
        config = self.directory / "advisor.toml"
        config.write_text(config_text)
        self.standin = start_standin(llm_mode)
        self.advisor = self.processes.start(
            "advisor", *venue_link("advisor", self.venue.address), "--database-url", self.database_url,
            "--config", str(config), "--timeframe", "1s", "--model-dir", str(self.directory / "models"),
            "--llm-base-url", self.standin.base_url, "--llm-models", "primary",
        )  # fmt: skip
        return self.advisor

    def stop_advisor(self) -> None:
        if self.advisor is not None:
            self.advisor.terminate()
            self.advisor = None
        if self.standin is not None:
            self.standin.stop()
            self.standin = None

    def start_inspector(self, policies: str | None = None) -> ServiceProcess:
        """The inspector on the sim, registered with the gateway as `inspector`: its policy set
        `policies` (TOML text, else the shipped one); reconciliation every second, its dead-man
        switch off (a test stopping it must not have the sim cancel the other tests' orders)."""
        assert self.venue is not None and self.inspector is None
        self._flatten_venue()
        args = [*venue_link("inspector", self.venue.address), "--deadman-ttl-ms", "0"]
        args += ["--reconcile-every-s", "1", "--instance", f"inspector-{len(self.processes.started)}"]
        if policies is not None:
            path = self.directory / "policies.toml"
            path.write_text(policies)
            args += ["--policies", str(path)]
        self.inspector = self.processes.start("inspector", *args)
        return self.inspector

    def _flatten_venue(self) -> None:
        """The shared sim account flat before an inspector starts (the test stands in for its
        operator, with the trading credential). A position left by an earlier module would be
        legacy to the new inspector, never touched by it, yet the sim nets its reduce-only
        orders against it: a new position's protective pair and its CLOSE_ALL would be refused
        ("position is 0") while the inspector holds it (one inspector per venue account).
        A market order on a book thinned by a loaded machine may fill in part: the positions are
        read again until none is left (within 60 s)."""
        assert self.venue is not None
        deadline = time.monotonic() + 60
        with grpc.insecure_channel(self.venue.address) as channel:
            stub = tf_grpc.TradeFlowStub(channel)
            while held := _held(stub):
                if time.monotonic() > deadline:
                    raise AssertionError(f"the sim account not flat within 60 s: {held}")
                for symbol, size in held.items():
                    side = common.SIDE_SELL if size > 0 else common.SIDE_BUY
                    order = tf.PlaceOrderRequest(
                        symbol=symbol, side=side, type=tf.ORDER_TYPE_MARKET, size=format_decimal(abs(size))
                    )
                    try:
                        stub.PlaceOrder(order, metadata=_TRADE, timeout=CALL_TIMEOUT_S)
                    except grpc.RpcError as exc:  # refused (no book to price it): tried again
                        print("flattening the sim account:", symbol, exc)
                time.sleep(0.2)

    async def set_mode(self, mode: rk.Mode.ValueType, reason: str) -> rk.SetModeResponse:
        """An operator's command to the inspector itself (not through the gateway)."""
        assert self.inspector is not None
        async with grpc.aio.insecure_channel(self.inspector.address) as channel:
            stub: rk_grpc.InspectorAsyncStub = rk_grpc.InspectorStub(channel)
            request = rk.SetModeRequest(mode=mode, reason=reason)
            return await stub.SetMode(request, metadata=_AUTH, timeout=30)

    async def close_all(self, reason: str) -> None:
        """CLOSE_ALL, then wait until the inspector holds nothing and the venue has no open
        order: a flatten order still in flight when the inspector stops would fill under the
        next module's inspector, whose start read the venue's positions before it."""
        await self.set_mode(rk.MODE_CLOSE_ALL, reason)
        assert self.inspector is not None
        async with grpc.aio.insecure_channel(self.inspector.address) as channel:
            stub: rk_grpc.InspectorAsyncStub = rk_grpc.InspectorStub(channel)

            async def flat() -> bool | None:
                held = await stub.ListPositions(
                    rk.ListPositionsRequest(), metadata=_AUTH, timeout=CALL_TIMEOUT_S
                )
                ours = [p for p in held.positions if not p.legacy]  # a legacy one is never touched
                return True if not ours and not await self.open_orders() else None

            await until(flat, 60, 0.2, "the inspector flat and no order open at the venue")

    def stop_inspector(self) -> None:
        if self.inspector is not None:
            self.inspector.terminate()
            self.inspector = None

    def start_ledger(self) -> ServiceProcess:
        """The ledger on the sim, registered with the gateway as `ledger`: it posts every
        execution ingest puts on the bus, its books in the mesh's database (where the trace reads
        the recorder's tables)."""
        assert self.venue is not None and self.ledger is None
        link = venue_link("ledger", self.venue.address)
        self.ledger = self.processes.start("ledger", *link, "--database-url", self.database_url)
        return self.ledger

    def stop_ledger(self) -> None:
        if self.ledger is not None:
            self.ledger.terminate()
            self.ledger = None

    def start_backtester(self) -> ServiceProcess:
        """The backtest hub, registered with the gateway as `backtester`: it runs the shipped
        example strategies over the history the recorder writes in the mesh's database, and keeps
        the runs' results there."""
        assert self.backtester is None
        self.backtester = self.processes.start("backtester", "--database-url", self.database_url)
        return self.backtester

    def stop_backtester(self) -> None:
        if self.backtester is not None:
            self.backtester.terminate()
            self.backtester = None

    def start_supervisor(self, every_s: float) -> ServiceProcess:
        """The Supervisor in propose mode, looking every `every_s`, with its own key (read, trade)
        made as `trademesh up` makes it; registered with the gateway as `supervisor`."""
        assert self.supervisor is None
        key = create_key(self.database_url, "supervisor", ("read", "trade"))
        args = ["--gateway-url", self.url, "--every-s", str(every_s), "--mode", "propose"]
        self.supervisor = self.processes.start("supervisor", *args, secrets={SUPERVISOR_API_KEY: key})
        return self.supervisor

    def stop_supervisor(self) -> None:
        if self.supervisor is not None:
            self.supervisor.terminate()
            self.supervisor = None

    def start_bridge(self) -> None:
        self.bridge = self.processes.start("bridge", "--discover-s", "0.5")

    def stop_bridge(self) -> None:
        assert self.bridge is not None
        self.bridge.terminate()
        self.bridge = None

    async def open_orders(self) -> list[tf.Order]:
        """The sim venue's open orders, asked of the venue itself (not through the gateway)."""
        assert self.venue is not None
        async with grpc.aio.insecure_channel(self.venue.address) as channel:
            reply = await tf_grpc.TradeFlowStub(channel).ListOpenOrders(
                tf.ListOpenOrdersRequest(),
                metadata=_AUTH,
                timeout=CALL_TIMEOUT_S,
            )
        return list(reply.orders)

    async def stop(self) -> None:
        await self.processes.stop_all()
        await asyncio.to_thread(self.stop_advisor)
        if self.gateway is not None:
            await asyncio.to_thread(self.stop_gateway)
        for log in self._logs:
            log.close()

    def logs(self) -> str:
        """Every process's log, for a failing test's message."""
        return "\n".join(
            f"--- {path.name}\n{path.read_text(errors='replace')[-4000:]}"
            for path in sorted(self.directory.glob("*.log"))
        )


def _held(stub: tf_grpc.TradeFlowStub) -> dict[str, Decimal]:
    """The sim account's positions that are not flat, by symbol."""
    reply = stub.GetPositions(tf.GetPositionsRequest(), metadata=_TRADE, timeout=CALL_TIMEOUT_S)
    return {p.symbol: Decimal(p.size) for p in reply.positions if Decimal(p.size) != 0}
