"""Regime-gated strategies with real processes: a detector (its own PostgreSQL database, a real
sim venue, Redis) runs a patch with a `regime` source, and its `allowed` output follows the
regimes on the bus stream `regimes.1m`.

- The stream as Overwatch writes it (Envelopes of bus.v1.RegimeChanges): a regime already on the
  stream when the detector starts is heard at once (the latest of the market, not an older one,
  not another market's), and each change after it flips `allowed`.
- The feed itself on a real Redis: the start's read goes back page by page only as far as the
  markets wanted need, and the follow hears only what comes after it.
- With a real Overwatch reading bars published as the bar service publishes them: the change
  its classifier makes reaches the detector's patch.
"""

from __future__ import annotations

import asyncio
import logging
import textwrap
import uuid
from collections.abc import AsyncIterator, Sequence
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
from tests.integration.support import TEST_TOKEN, metric_samples, metrics_page, until
from tests.overwatch_support import bus_bar
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.detector.engine.io import Event, RegimeValue
from trademesh.core.detector.regime_feed import RegimeFeed
from trademesh.core.domain.model import Candle, Timeframe
from trademesh.core.domain.regime import Regime
from trademesh.core.overwatch.synthetic import SeriesSpec, segment_bars
from trademesh.core.platform.bus.codec import FIELD, encode_bars, encode_regimes
from trademesh.core.platform.bus.names import regimes_stream
from trademesh.core.platform.config.env import REDIS_URL, TOKEN
from trademesh.core.platform.service.process import ServiceProcess, start_service
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.patch.v1 import patch_pb2 as patch_pb
from trademesh.patch.v1 import patch_pb2_grpc as patch_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(300)]
__all__ = ["database_url", "redis_url"]  # fixtures

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
SYMBOL = "BTC/USDT"
STREAM = regimes_stream(Timeframe.M1)
WAIT_S = 60.0
PORTS = ("gate.allowed", "gate.regime", "gate.known")
# A patch of a regime source alone: what the test watches is its outputs.
GATED = """
id = "gated"
venues = ["{venue}"]
symbols = ["BTC/USDT"]
cables = []

[[modules]]
id = "gate"
type = "regime"
params = {{ regimes = "{regimes}" }}
"""


@dataclass
class Detector:
    process: ServiceProcess
    bus: str
    log: Path

    def patch_id(self, venue: str) -> str:
        return f"gated/{venue}/{SYMBOL}"


@dataclass
class Mesh:
    processes: Processes
    sim: ServiceProcess
    database: str
    bus: str
    directory: Path
    detectors: list[ServiceProcess]

    def detector(self, venue: str, regimes: str) -> Detector:
        path = self.directory / f"gated-{venue}.toml"
        path.write_text(textwrap.dedent(GATED.format(venue=venue, regimes=regimes)))
        log = self.directory / f"detector-{venue}.log"
        args = [
            "detector", "--port", "0", "--metrics-port", "0", "--venue", f"{venue}={self.sim.address}",
            "--database-url", self.database, "--strategy", str(path),
        ]  # fmt: skip
        with log.open("w") as log_file:
            process = start_service(args, env={TOKEN: TEST_TOKEN, REDIS_URL: self.bus}, stderr=log_file)
        self.detectors.append(process)
        return Detector(process, self.bus, log)


@pytest.fixture
async def mesh(tmp_path: Path, database_url: str, redis_url: str) -> AsyncIterator[Mesh]:
    async with new_database(database_url, "regimes") as database, redis_db(redis_url) as bus:
        processes = Processes(tmp_path, database)
        detectors: list[ServiceProcess] = []
        try:
            sim = processes.sim(None)
            yield Mesh(processes, sim, database, bus, tmp_path, detectors)
        finally:
            for detector in detectors:
                await asyncio.to_thread(detector.terminate)
            await processes.stop_all()


def change(venue: str, regime: ow.Regime.ValueType, at_ns: int, symbol: str = SYMBOL) -> ow.RegimeChange:
    return ow.RegimeChange(
        venue=venue, symbol=symbol, timeframe=common.TIMEFRAME_1_MINUTE, previous=ow.REGIME_UNKNOWN,
        regime=regime, since_ns=at_ns - 300 * 10**9, at_bar_ns=at_ns - 60 * 10**9, at_ns=at_ns,
    )  # fmt: skip


async def publish(client: Any, *changes: ow.RegimeChange) -> None:
    """One entry, as Overwatch writes a round of changes."""
    await client.xadd(STREAM, {FIELD: encode_regimes("overwatch/test", changes)})


class Probes:
    """The patch's regime outputs as the detector's Patch API streams them: the latest of each."""

    def __init__(self, address: str, patch_id: str) -> None:
        self.channel = grpc.aio.insecure_channel(address)
        self.patch_id = patch_id
        self.values: dict[str, object] = {}
        self.changed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Probes:
        self._task = asyncio.create_task(self._follow())
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.channel.close()

    async def _follow(self) -> None:
        stub = patch_grpc.PatchStub(self.channel)
        request = patch_pb.StreamProbesRequest(patch_id=self.patch_id, ports=list(PORTS))
        while True:  # the patch may not be active yet: ask again until it streams
            try:
                async for answer in stub.StreamProbes(request, metadata=AUTH):
                    async with self.changed:
                        for update in answer.updates:
                            which = update.value.WhichOneof("value")
                            key = f"{update.module_id}.{update.port}"
                            self.values[key] = None if which is None else getattr(update.value, which)
                        self.changed.notify_all()
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.UNAVAILABLE):
                    raise
            await asyncio.sleep(0.2)

    async def until(self, wanted: dict[str, object], timeout_s: float = WAIT_S) -> None:
        """The ports show these values, by the deadline (else the values seen)."""

        async def seen() -> None:
            async with self.changed:
                await self.changed.wait_for(lambda: all(self.values.get(k) == v for k, v in wanted.items()))

        try:
            await asyncio.wait_for(seen(), timeout_s)
        except TimeoutError:
            raise AssertionError(f"wanted {wanted} within {timeout_s} s; saw {self.values}") from None


async def test_a_running_detector_hears_the_latest_regime_at_start_then_each_change(mesh: Mesh) -> None:
    venue = "sim"
    client: Any = aioredis.Redis.from_url(mesh.bus)
    try:
        now = 1_767_225_600 * 10**9
        # Before the detector: the market was trending up, then ranging (its latest); another
        # market's and another timeframe's changes come after it on the stream.
        await publish(client, change(venue, ow.REGIME_TREND_UP, now))
        await publish(client, change(venue, ow.REGIME_RANGE, now + 60 * 10**9))
        hourly = change(venue, ow.REGIME_TREND_UP, now + 120 * 10**9)
        hourly.timeframe = common.TIMEFRAME_1_HOUR
        await publish(client, change(venue, ow.REGIME_TREND_UP, now + 120 * 10**9, symbol="ETH/USDT"), hourly)
        detector = mesh.detector(venue, "trend_up")
        async with Probes(detector.process.address, detector.patch_id(venue)) as probes:
            await probes.until({"gate.allowed": False, "gate.regime": 4.0, "gate.known": True})
            await publish(client, change(venue, ow.REGIME_TREND_UP, now + 180 * 10**9))
            await probes.until({"gate.allowed": True, "gate.regime": 2.0})
            await publish(client, change(venue, ow.REGIME_HIGH_VOLATILITY, now + 240 * 10**9))
            await probes.until({"gate.allowed": False, "gate.regime": 5.0})
        # Both markets' latest were heard at start (ETH/USDT's too: a patch made on it later has it).
        assert "2 regimes from regimes.1m at start" in detector.log.read_text()
        page = await metrics_page(detector.process.info["metrics_port"])
        assert metric_samples(page, "trademesh_detector_regimes_total") == {
            '{read="start"}': 2.0,
            '{read="live"}': 2.0,
        }
    finally:
        await client.aclose()


async def _publish_bars(client: Any, venue: str, candles: Sequence[Candle], per_entry: int) -> None:
    for start in range(0, len(candles), per_entry):
        chunk = [bus_bar(c, venue) for c in candles[start : start + per_entry]]
        await client.xadd(f"bars.{{{venue}}}.1m", {FIELD: encode_bars("bars/test", chunk)})


async def test_a_change_overwatch_reads_from_the_bars_reaches_the_patch(mesh: Mesh, tmp_path: Path) -> None:
    """The whole path: bars on the bus, a real Overwatch, its change on regimes.1m, the patch."""
    venue = "t" + uuid.uuid4().hex[:10]
    series = segment_bars(Regime.THIN_LIQUIDITY, 60, seed=7, spec=SeriesSpec(warmup_bars=150))
    client: Any = aioredis.Redis.from_url(mesh.bus)
    overwatch_log = tmp_path / "overwatch.log"
    try:
        await _publish_bars(client, venue, series.bars[:150], per_entry=50)
        args = [
            "overwatch",
            "--port",
            "0",
            "--metrics-port",
            "-1",
            "--redis-url",
            mesh.bus,
            "--discover-s",
            "0.2",
        ]
        with overwatch_log.open("w") as log_file:
            overwatch = start_service(args, env={TOKEN: TEST_TOKEN}, stderr=log_file)
        try:
            detector = mesh.detector(venue, "thin_liquidity")
            async with Probes(detector.process.address, detector.patch_id(venue)) as probes:
                # Overwatch wrote nothing yet (its warm-up's regime is history): no regime known.
                await _publish_bars(client, venue, series.bars[150:], per_entry=10)
                await probes.until({"gate.allowed": True, "gate.regime": 6.0, "gate.known": True})
        finally:
            await asyncio.to_thread(overwatch.terminate)
    finally:
        await client.aclose()


async def test_the_feed_reads_back_page_by_page_to_each_wanted_market_then_follows(redis_url: str) -> None:
    """trademesh.core.detector.regime_feed on a real Redis, pages of two entries: the start's read goes back
    only as far as the wanted markets need, skips what is not an Envelope of regimes, and the
    follow hears only the entries written after it."""
    async with redis_db(redis_url) as bus:
        client: Any = aioredis.Redis.from_url(bus)
        heard: list[list[RegimeValue]] = []

        def hear(events: Sequence[Event]) -> None:
            heard.append([event for event in events if isinstance(event, RegimeValue)])

        try:
            await publish(client, change("sim", ow.REGIME_TREND_DOWN, 1, symbol="OLD/USDT"))
            await publish(client, change("sim", ow.REGIME_TREND_UP, 2))
            await publish(client, change("sim", ow.REGIME_RANGE, 3))  # BTC's latest
            await client.xadd(STREAM, {FIELD: b"not an envelope"})
            await publish(client, change("sim", ow.REGIME_THIN_LIQUIDITY, 4, symbol="ETH/USDT"))
            feed = RegimeFeed(client, hear, lambda: WANTED, page=2)
            await feed.latest()
            # Back to BTC's range (two pages), not to OLD/USDT's entry: ETH's and BTC's latest.
            assert [(v.symbol, v.regime, v.ts_event_ns) for v in heard[0]] == [
                (SYMBOL, Regime.RANGE, 3),
                ("ETH/USDT", Regime.THIN_LIQUIDITY, 4),
            ]
            assert feed.undecodable == 1
            await feed.follow_once()  # nothing new: waits its block, hears nothing
            assert len(heard) == 1
            await publish(client, change("sim", ow.REGIME_TREND_UP, 5), change("sim", ow.REGIME_RANGE, 6))
            await feed.follow_once()
            assert [(v.regime, v.ts_event_ns) for v in heard[1]] == [(Regime.TREND_UP, 5), (Regime.RANGE, 6)]
        finally:
            await client.aclose()


async def test_the_feed_says_a_redis_error_once_and_goes_on_when_it_clears(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A key of another type where the stream should be (WRONGTYPE): said once, retried; once it
    is a stream of regimes, the changes are heard."""
    async with redis_db(redis_url) as bus:
        client: Any = aioredis.Redis.from_url(bus)
        heard: asyncio.Queue[list[Event]] = asyncio.Queue()
        feed = RegimeFeed(client, lambda events: heard.put_nowait(list(events)), set, block_ms=100)
        stop = asyncio.Event()
        await client.set(STREAM, "not a stream")
        with caplog.at_level(logging.WARNING, "trademesh.core.detector.regime_feed"):
            task = asyncio.create_task(feed.run(stop))
            try:
                await until(lambda: _said(caplog, "WRONGTYPE"), 30, what="the error said")
                await client.delete(STREAM)
                await publish(client, change("sim", ow.REGIME_TREND_UP, 7))
                got = await asyncio.wait_for(heard.get(), 30)
                assert got == [RegimeValue("sim", SYMBOL, Regime.TREND_UP, 7 - 300 * 10**9, 7)]
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
                await client.aclose()
        said = [r.getMessage() for r in caplog.records if "WRONGTYPE" in r.getMessage()]
        assert len(said) == 1, said


async def _said(caplog: pytest.LogCaptureFixture, text: str) -> bool | None:
    return True if any(text in record.getMessage() for record in caplog.records) else None


WANTED = {("sim", SYMBOL), ("sim", "ETH/USDT")}
