"""Screen-driven strategies with real processes: a real Screener ranks the sim's three symbols by
the 1m bars the test publishes on the bus (as the bar service publishes them), and a detector
(its own PostgreSQL database, a real sim venue, Redis) runs a strategy on the screen's top 2 with
a hold of its own. What ranks first is changed by republishing a bar (a repair of its open time);
the detector's own API shows the patches started and retired, at the times the published
results and the hold say, the newcomer fed by the venue, and the set kept across a restart.
"""

from __future__ import annotations

import asyncio
import textwrap
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis

from tests.integration.gateway_support import Processes
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, metric_samples, metrics_page, until
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.screen_membership import ScreenMembership
from trademesh.core.platform.bus.codec import FIELD, decode, encode_bars
from trademesh.core.platform.bus.names import screens_stream
from trademesh.core.platform.config.env import REDIS_URL, TOKEN
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.patch.v1 import patch_pb2 as patch_pb
from trademesh.patch.v1 import patch_pb2_grpc as patch_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
__all__ = ["database_url", "redis_url"]  # fixtures

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
S = 10**9
MINUTE_NS = 60 * S
WAIT_S = 60.0
HOLD_S = 8  # the strategy's own hold (the screen's: 5 cadences, 5 s)
SCREEN = """
name = "movers"
venue = "sim"
cadence_s = 1
top = 3
max_age_s = 86400

[bars]
timeframe = "1m"
momentum = 3
volatility = 2
volume = 3

[score]
weights = { momentum = 1.0 }
"""
STRATEGY = f"""
id = "screened"
venues = ["sim"]
symbols = {{ screen = "movers", top = 2, min_hold_s = {HOLD_S} }}
cables = []

[[modules]]
id = "t"
type = "trades"
"""
# The sim's symbols' last closes over a first of 100: BTC leads, then ETH; SOL last.
CLOSES = {"BTC/USDT": "150", "ETH/USDT": "125", "SOL/USDT": "110"}
SOL_JUMP = "300"  # SOL's last bar republished: it leads


def patch_of(symbol: str) -> str:
    return f"screened/sim/{symbol}"


def minute_bars(symbol: str, last: str) -> list[bus.Bar]:
    """Four 1m bars closed by the last whole minute, closing 100, 100, 100 then `last`."""
    end = time.time_ns() // MINUTE_NS * MINUTE_NS
    closes = ["100", "100", "100", last]
    return [
        bus.Bar(venue="sim", symbol=symbol, timeframe=common.TIMEFRAME_1_MINUTE,
                open_time_ns=end - (4 - i) * MINUTE_NS, open=c, high=c, low=c, close=c, volume="1",
                quote_volume="100", trade_count=1)
        for i, c in enumerate(closes)
    ]  # fmt: skip


async def publish(client: Any, bars: list[bus.Bar]) -> None:
    await client.xadd("bars.{sim}.1m", {FIELD: encode_bars("bars/test", bars)})


@dataclass
class Mesh:
    processes: Processes
    sim: ServiceProcess
    database: str
    bus: str
    directory: Path
    started: list[ServiceProcess]

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> ServiceProcess:
        log = self.directory / f"{name}-{len(self.started)}.log"
        with log.open("w") as log_file:
            process = start_service(list(args), env={TOKEN: TEST_TOKEN, **(env or {})}, stderr=log_file)
        self.started.append(process)
        return process

    def detector(self) -> ServiceProcess:
        path = self.directory / "screened.toml"
        path.write_text(textwrap.dedent(STRATEGY))
        args = ["detector", "--port", "0", "--metrics-port", "0", "--venue", f"sim={self.sim.address}",
                "--database-url", self.database, "--strategy", str(path)]  # fmt: skip
        return self.start("detector", *args, env={REDIS_URL: self.bus})

    def screener(self) -> ServiceProcess:
        screens = self.directory / "screens"
        screens.mkdir(exist_ok=True)
        (screens / "movers.toml").write_text(SCREEN)
        args = ["screener", "--port", "0", "--metrics-port", "-1", "--redis-url", self.bus, "--screens",
                str(screens)]  # fmt: skip
        return self.start("screener", *args)


@pytest.fixture
async def mesh(tmp_path: Path, database_url: str, redis_url: str) -> AsyncIterator[Mesh]:
    async with new_database(database_url, "screens") as database, redis_db(redis_url) as bus_url:
        processes = Processes(tmp_path, database)
        started: list[ServiceProcess] = []
        try:
            yield Mesh(processes, processes.sim(None), database, bus_url, tmp_path, started)
        finally:
            for process in started:
                await asyncio.to_thread(process.terminate)
            await processes.stop_all()


class Events:
    """Every patch event the detector streams (StreamPatchEvents of all patches), from now on."""

    def __init__(self, stub: patch_grpc.PatchAsyncStub) -> None:
        self.seen: list[patch_pb.PatchEvent] = []
        self._call: Any = stub.StreamPatchEvents(patch_pb.StreamPatchEventsRequest(), metadata=AUTH)
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for answer in self._call:
            self.seen.extend(answer.events)

    def at(self, patch_id: str, kind: int, state: int | None = None) -> int | None:
        """The time of the patch's first event of this kind (into this state)."""
        for event in self.seen:
            if event.patch_id == patch_id and event.kind == kind and state in (None, event.state):
                return event.ts_ns
        return None

    async def close(self) -> None:
        self._call.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def listed(stub: patch_grpc.PatchAsyncStub, state: patch_pb.PatchState.ValueType) -> set[str]:
    answer = await stub.ListPatches(patch_pb.ListPatchesRequest(states=[state]), metadata=AUTH,
                                    timeout=CALL_TIMEOUT_S)  # fmt: skip
    return {p.patch_id for p in answer.patches}


async def until_listed(
    stub: patch_grpc.PatchAsyncStub, state: patch_pb.PatchState.ValueType, wanted: set[str], what: str
) -> None:
    async def there() -> bool | None:
        return True if await listed(stub, state) == wanted else None

    await until(there, WAIT_S, interval_s=0.1, what=what)


async def evaluating(stub: patch_grpc.PatchAsyncStub, patch_id: str) -> None:
    """The patch evaluates: its market's trades reach it (its feed subscribed the symbol)."""
    request = patch_pb.StreamStrategyStatusRequest(patch_ids=[patch_id])

    async def seen() -> bool | None:
        async for answer in stub.StreamStrategyStatus(request, metadata=AUTH, timeout=5):
            if any(s.evaluations_per_s > 0 for s in answer.statuses):
                return True
        return None

    await until(seen, WAIT_S, what=f"{patch_id} evaluating")


async def test_a_strategy_on_a_screens_top_starts_and_retires_patches_as_the_set_changes(mesh: Mesh) -> None:
    client: Any = aioredis.Redis.from_url(mesh.bus)
    channel = None
    try:
        for symbol, last in CLOSES.items():
            await publish(client, minute_bars(symbol, last))
        detector = mesh.detector()
        channel = grpc.aio.insecure_channel(detector.address)
        stub = patch_grpc.PatchStub(channel)
        events = Events(stub)
        assert await listed(stub, patch_pb.PATCH_STATE_ACTIVE) == set()  # no result yet: no patch
        mesh.screener()

        first = {patch_of("BTC/USDT"), patch_of("ETH/USDT")}
        await until_listed(stub, patch_pb.PATCH_STATE_ACTIVE, first, "the screen's top 2 active")
        await evaluating(stub, patch_of("ETH/USDT"))
        await publish(client, minute_bars("SOL/USDT", SOL_JUMP)[-1:])  # SOL leads now

        second = {patch_of("BTC/USDT"), patch_of("SOL/USDT")}
        await until_listed(stub, patch_pb.PATCH_STATE_ACTIVE, second, "SOL in, ETH out after its hold")
        assert await listed(stub, patch_pb.PATCH_STATE_ARCHIVED) == {patch_of("ETH/USDT")}
        await evaluating(stub, patch_of("SOL/USDT"))  # the newcomer's own feed
        await _check_times(client, events)
        await events.close()
        await _check_refusal(stub)
        page = await metrics_page(detector.info["metrics_port"])
        assert metric_samples(page, "trademesh_detector_screen_patches_total") == {
            '{change="started",strategy="screened"}': 3.0,
            '{change="retired",strategy="screened"}': 1.0,
        }

        # A restart: the stream's results replayed, the restored patches kept, nothing started.
        await channel.close()
        await asyncio.to_thread(detector.terminate)
        again = mesh.detector()
        channel = grpc.aio.insecure_channel(again.address)
        stub = patch_grpc.PatchStub(channel)
        await until_listed(stub, patch_pb.PATCH_STATE_ACTIVE, second, "the set active again after a restart")

        async def replayed() -> str | None:
            """The page once a live result was heard: the start's replay (before it) is done."""
            page = await metrics_page(again.info["metrics_port"])
            read = metric_samples(page, "trademesh_detector_screen_results_total")
            return page if read.get('{read="start"}', 0) > 0 and read.get('{read="live"}', 0) > 0 else None

        page = await until(replayed, WAIT_S, interval_s=0.2, what="the start's replay, then a live result")
        assert "screen_patches_total{" not in page
        assert await listed(stub, patch_pb.PATCH_STATE_ACTIVE) == second
    finally:
        if channel is not None:
            await channel.close()
        await client.aclose()


async def _check_times(client: Any, events: Events) -> None:
    """Each start and retirement at the time of the result that made it: the membership of the
    results on screens.movers, top 2, held HOLD_S, replayed here."""
    results = [decode(fields).screen_result for _, fields in await client.xrange(screens_stream("movers"))]
    membership = ScreenMembership(2, HOLD_S * S)
    entered: dict[str, int] = {}
    left: dict[str, int] = {}
    for result in results:
        change = membership.apply([r.symbol for r in result.ranked[: result.top_n]], result.computed_ns)
        for symbol in change.added:
            entered.setdefault(symbol, result.computed_ns)
        for symbol in change.removed:
            left.setdefault(symbol, result.computed_ns)
    assert set(entered) == {"BTC/USDT", "ETH/USDT", "SOL/USDT"} and set(left) == {"ETH/USDT"}
    created = patch_pb.PATCH_EVENT_KIND_CREATED
    for symbol, at in entered.items():
        assert events.at(patch_of(symbol), created) == at, symbol
    retired = events.at(
        patch_of("ETH/USDT"), patch_pb.PATCH_EVENT_KIND_STATE_CHANGED, patch_pb.PATCH_STATE_ARCHIVED
    )
    assert retired is not None and retired == left["ETH/USDT"] == entered["SOL/USDT"]
    assert retired - entered["ETH/USDT"] >= HOLD_S * S
    # SOL led before ETH's hold ran out: the hold, not the ranking, kept ETH that long.
    sol_first = next(r.computed_ns for r in results if r.ranked and r.ranked[0].symbol == "SOL/USDT")
    assert sol_first < retired


async def _check_refusal(stub: patch_grpc.PatchAsyncStub) -> None:
    """A screen's strategy through CreatePatch: refused naming its key (only a running file follows one)."""
    request = patch_pb.CreatePatchRequest(
        strategy_toml=textwrap.dedent(STRATEGY).replace("screened", "other")
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CreatePatch(request, metadata=AUTH, timeout=CALL_TIMEOUT_S)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [field for field, _ in bad_request_violations(caught.value)] == ["strategy_toml.symbols"]
