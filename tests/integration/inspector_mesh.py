"""A sim venue and an inspector as real processes on a Redis database of the test's own, with
the calls the inspector's tests make: intents in, the venue's and the inspector's views out."""

from __future__ import annotations

import asyncio
import textwrap
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

import grpc

from tests.bus_signing import SIGNING_ENV
from tests.integration.mesh import redis_db
from tests.integration.support import (
    CALL_TIMEOUT_S,
    TEST_TOKEN,
    TEST_TRADE_TOKEN,
    Stubs,
    Venue,
    metric_samples,
    start_venue,
    stop_venue,
    until,
)
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.config.env import REDIS_URL, TOKEN, TRADE_TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.risk.v1 import inspector_pb2 as rk
from trademesh.risk.v1 import inspector_pb2_grpc as rk_grpc
from trademesh.tradeflow.v1 import tradeflow_pb2 as tf

__all__ = ["AUTH", "FAST_WALK", "InspectorMesh", "inspector_mesh", "intent"]

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
SYMBOL = "BTC/USDT"
# BTC/USDT (the sim's default, but for its walk) at 5 times the default's volatility, in the
# product's 10 ms steps: the tests that wait for the market to reach a price 3 from the mark see
# it in about a second. At the default (65000 moving 6.5 a second^0.5) a walk stayed clear of a
# level 3 off for 90 s one time in 25, and the test failed; now about one in 120. (At 10 times,
# a side of the book was at times empty.)
FAST_WALK = """
tick_interval_ms = 10
[[symbols]]
symbol = "BTC/USDT"
start_price = "65000"
tick_size = "0.01"
lot_size = "0.00001"
min_size = "0.00001"
min_notional = "5"
level_spacing_ticks = 100
maker_size_lots = 5000
taker_size_lots = 3000
volatility_per_sqrt_s = 0.0005
"""


def intent(side: str = "buy", size: str = "0.01", **fields: Any) -> am.Intent:
    """A market intent on the sim's BTC/USDT (fields override)."""
    message = am.Intent(
        venue="sim",
        symbol=SYMBOL,
        side=common.SIDE_BUY if side == "buy" else common.SIDE_SELL,
        size=size,
        entry_type=tf.ORDER_TYPE_MARKET,
    )
    for name, value in fields.items():
        setattr(message, name, value)
    return message


# How long an event a test saw the effect of may take to be listed (a loaded machine's append).
EVENT_WAIT_S = 30


@dataclass
class InspectorMesh:
    directory: Path
    venue: Venue
    venue_log: IO[str]
    bus: str
    args: tuple[str, ...] = ()
    process: ServiceProcess | None = None
    ingest: ServiceProcess | None = None
    channel: grpc.aio.Channel | None = None
    logs: list[Path] = field(default_factory=list)
    _stubs: Stubs | None = None

    @property
    def stub(self) -> rk_grpc.InspectorAsyncStub:
        assert self.channel is not None
        return rk_grpc.InspectorStub(self.channel)

    @property
    def venue_stubs(self) -> Stubs:
        if self._stubs is None:
            self._stubs = self.venue.stubs()
        return self._stubs

    def start(self, *extra: str, env: dict[str, str] | None = None) -> ServiceProcess:
        log_path = self.directory / f"inspector-{len(self.logs)}.log"
        self.logs.append(log_path)
        args = ["inspector", "--port", "0", "--metrics-port", "-1", "--venue", f"sim={self.venue.address}"]
        with log_path.open("w") as log_file:
            self.process = start_service(
                [*args, *self.args, *extra],
                # The inspector holds the trading credential and the trading streams' writers'
                # keys, as in `trademesh up`.
                env={
                    TOKEN: TEST_TOKEN,
                    TRADE_TOKEN: TEST_TRADE_TOKEN,
                    REDIS_URL: self.bus,
                    **SIGNING_ENV,
                    **(env or {}),
                },
                stderr=log_file,
            )
        self.channel = grpc.aio.insecure_channel(self.process.address)
        return self.process

    async def stop(self, kill: bool = False) -> None:
        if self.channel is not None:
            await self.channel.close()
            self.channel = None
        if self.process is not None:
            if kill:
                self.process.process.kill()
                await asyncio.to_thread(self.process.process.wait, 15)
            else:
                await asyncio.to_thread(self.process.terminate)
            self.process = None

    def start_ingest(self) -> ServiceProcess:
        """Ingest on the sim: its executions reach the bus (exec.{sim}), where the inspector reads them."""
        log_path = self.directory / "ingest.log"
        args = ["ingest", "--port", "0", "--metrics-port", "-1", "--venue", f"sim={self.venue.address}"]
        with log_path.open("w") as log_file:
            self.ingest = start_service(args, env={TOKEN: TEST_TOKEN, REDIS_URL: self.bus}, stderr=log_file)
        return self.ingest

    async def reconciliations(self) -> int:
        """How many reconciliations the running inspector has completed (started with
        "--metrics-port", "0" among its arguments)."""
        assert self.process is not None
        return await reconciliations(self.process)

    def log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in self.logs)

    async def submit(self, message: am.Intent) -> rk.SubmitIntentResponse:
        request = rk.SubmitIntentRequest(intent=message)
        answer: rk.SubmitIntentResponse = await self.stub.SubmitIntent(
            request, metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
        return answer

    async def positions(self) -> list[rk.PositionView]:
        answer = await self.stub.ListPositions(
            rk.ListPositionsRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
        return list(answer.positions)

    async def state(self) -> rk.GetRiskStateResponse:
        answer: rk.GetRiskStateResponse = await self.stub.GetRiskState(
            rk.GetRiskStateRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S
        )
        return answer

    async def events(self, **filters: Any) -> list[rk.RiskEvent]:
        request = rk.ListRiskEventsRequest(page_size=500, **filters)
        answer = await self.stub.ListRiskEvents(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)
        return list(answer.events)

    async def events_listed(self, **filters: Any) -> list[rk.RiskEvent]:
        """The events matching `filters` once at least one is listed. A state the test saw change
        (GetRiskState, the positions) is the core's at once; the events that explain it are listed
        once their append to the bus stream `risk` is done, which runs beside the orders they came
        with (docs/inspector.md, API): a run read the stand-down before its event."""

        async def listed() -> list[rk.RiskEvent] | None:
            return await self.events(**filters) or None

        return await until(listed, EVENT_WAIT_S, 0.05, f"a risk event {filters}")

    async def open_orders(self) -> list[tf.Order]:
        answer = await self.venue_stubs.tf.ListOpenOrders(tf.ListOpenOrdersRequest(), timeout=CALL_TIMEOUT_S)
        return list(answer.orders)

    async def venue_position(self) -> Decimal:
        answer = await self.venue_stubs.tf.GetPositions(tf.GetPositionsRequest(), timeout=CALL_TIMEOUT_S)
        return sum((Decimal(p.size) for p in answer.positions if p.symbol == SYMBOL), Decimal(0))

    async def mark(self) -> Decimal:
        """The sim's mid now (once both sides of its book are quoted: a fast walk can leave one
        empty for a moment, until the sim's makers refill it)."""
        from tests.integration.support import best_prices

        async def quoted() -> Decimal | None:
            try:
                bid, ask = await best_prices(self.venue_stubs, SYMBOL)
            except IndexError:
                return None
            return (bid + ask) / 2

        return await until(quoted, 10.0, 0.05, "a two-sided book")


async def reconciliations(inspector: ServiceProcess) -> int:
    """How many reconciliations an inspector has completed (its /metrics page: started with
    --metrics-port 0)."""
    url = f"http://127.0.0.1:{inspector.info['metrics_port']}/metrics"

    def get() -> str:
        with urllib.request.urlopen(url, timeout=CALL_TIMEOUT_S) as response:
            body: bytes = response.read()
        return body.decode()

    samples = metric_samples(await asyncio.to_thread(get), "trademesh_inspector_reconciliations_total")
    return int(sum(samples.values()))


@asynccontextmanager
async def inspector_mesh(
    directory: Path,
    redis_url: str,
    *args: str,
    policies: str | None = None,
    start: bool = True,
    via_bus: bool = False,
    venue_config: str | None = None,
) -> AsyncIterator[InspectorMesh]:
    """A sim and (unless `start` is False) an inspector on it; `policies` a TOML of its own.
    The inspector reads executions straight from the sim, or with `via_bus` from the bus, where an
    ingest process of the mesh's own writes them."""
    extra = [*args, "--executions", "bus" if via_bus else "venue"]
    if policies is not None:
        path = directory / "policies.toml"
        path.write_text(textwrap.dedent(policies))
        extra += ["--policies", str(path)]
    async with redis_db(redis_url) as bus:
        venue, venue_log = start_venue(directory, venue_config, "sim")
        mesh = InspectorMesh(directory, venue, venue_log, bus, tuple(extra))
        try:
            if via_bus:
                mesh.start_ingest()
            if start:
                mesh.start()
            yield mesh
        finally:
            try:
                await mesh.stop()
                if mesh.ingest is not None:
                    await asyncio.to_thread(mesh.ingest.terminate)
            finally:
                await stop_venue(venue, venue_log)
