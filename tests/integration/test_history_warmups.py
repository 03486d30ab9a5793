"""History.GetBars through the gateway, and the warm-ups that read it first (docs/history.md,
"What reads history"), on bars `trademesh data import` put in the database the gateway reads
(a generic CSV this test writes, with prices the sim venue never makes and bars into the next
minutes, so the warm-ups' windows hold imported bars alone however long the test takes):

- GetBars pages a range oldest first with the file's exact decimals, over native gRPC and over
  gRPC-web (`buf curl`); bad input is INVALID_ARGUMENT naming every bad field;
- the detector (in this process, on a sim venue process) warms a patch from exactly those bars,
  and a detector process activates a 1m patch at its start (35 bars the just-started sim has not);
- the Screener (a process) ranks a symbol only the imported history has, by its imported bars;
- Overwatch (a process) warms a market from its imported bars (as many as the classifier's
  memory) and publishes its regime;
- with the gateway down (or holding nothing), the detector warms from the venue, one line said.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import grpc
import pytest

from tests.forked_services import run_command
from tests.integration.gateway_support import (
    MESH_AUTH,
    Gateway,
    Processes,
    both,
    buf_curl,
    key_taken,
    module_database,
    new_key,
)
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, Venue, until
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.detector.app import Detector
from trademesh.core.detector.config import EXAMPLES_DIR, DetectorConfig
from trademesh.core.detector.engine.values import BarValue
from trademesh.core.detector.history import bar_history
from trademesh.core.detector.strategy_file import build_patches, load_strategy
from trademesh.core.domain.regime import ClassifierConfig, Regime
from trademesh.core.overwatch.convert import REGIME_TO_PB
from trademesh.core.overwatch.history_seed import warm_bars_needed
from trademesh.core.platform.config.env import DATABASE_URL, TOKEN
from trademesh.core.platform.config.mesh import MeshConfig, VenueLink
from trademesh.core.platform.rpc.client import auth_metadata
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.history.v1 import history_pb2 as pb
from trademesh.history.v1 import history_pb2_grpc as pb_grpc
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.overwatch.v1 import overwatch_pb2_grpc as ow_grpc
from trademesh.patch.v1 import patch_pb2 as patch_pb
from trademesh.patch.v1 import patch_pb2_grpc as patch_grpc
from trademesh.screener.v1 import screener_pb2 as sc
from trademesh.screener.v1 import screener_pb2_grpc as sc_grpc

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # PostgreSQL, the gateway and services as processes
__all__ = ["database_url", "module_database", "redis_url"]  # the fixtures, for pytest

HISTORY = "trademesh.history.v1.History"
MINUTE_NS = 60 * 10**9
PAST = 600  # bars before the import's minute: more than any warm-up here reads (Overwatch's 500)
AHEAD = 30  # bars after it: the windows hold imported bars alone for half an hour
DETECTED = "BTC/USDT"  # the detector's patch's market: the sim venue trades it near 30000
SCREENED = "HIST/USDT"  # a symbol the sim does not list: only the history has it
QUOTE_VOLUME = "1234.5"
WINDOW = 5  # the screen's momentum and volume windows


def detected_close(index: int) -> str:
    """Prices the sim never makes: 4-digit with a 5-decimal tail."""
    return f"{4000 + index % 900}.{index % 97:02d}125"


def screened_close(index: int) -> str:
    """A steady climb of 0.1 % a bar (to 10 decimals): every window's momentum is 1.001^5 - 1."""
    return f"{Decimal(100) * Decimal('1.001') ** index:.10f}"


@dataclass
class Served:
    gateway: Gateway
    processes: Processes
    key: str
    first_ns: int  # the first imported bar's open time (both series)
    closes: dict[str, dict[int, str]]  # symbol -> open time -> close


def _csv(path: Path, first_ns: int, close: object) -> dict[int, str]:
    closes, lines = {}, ["ts,open,high,low,close,volume,quote_volume,trades"]
    for index in range(PAST + AHEAD):
        open_ns = first_ns + index * MINUTE_NS
        price = close(index)  # type: ignore[operator]
        closes[open_ns] = price
        lines.append(f"{open_ns // 10**6},{price},{price},{price},{price},2.5,{QUOTE_VOLUME},3")
    path.write_text("\n".join(lines) + "\n")
    return closes


@pytest.fixture(scope="module")
async def served(tmp_path_factory: pytest.TempPathFactory, module_database: str) -> AsyncIterator[Served]:
    directory = tmp_path_factory.mktemp("warmups")
    first_ns = time.time_ns() // MINUTE_NS * MINUTE_NS - PAST * MINUTE_NS
    env = {**os.environ, DATABASE_URL: module_database}
    closes = {}
    for symbol, close in ((DETECTED, detected_close), (SCREENED, screened_close)):
        path = directory / f"{symbol.replace('/', '')}.csv"
        closes[symbol] = _csv(path, first_ns, close)
        args = ["data", "import", str(path), "--venue", "sim", "--symbol", symbol, "--timeframe", "1m"]
        args += ["--columns", "ts=0,open=1,high=2,low=3,close=4,volume=5,quote_volume=6,trades=7"]
        imported = await asyncio.to_thread(run_command, args, env, 120)
        assert imported.returncode == 0, imported.stderr
    processes = Processes(directory, module_database)
    try:
        gateway, key = await both(
            lambda: processes.gateway(), lambda: new_key(module_database, "w", ["read"])
        )
        await key_taken(gateway, key)
        yield Served(gateway, processes, key, first_ns, closes)
    finally:
        await processes.stop_all()


# ---------------------------------------------------------------- GetBars


async def test_get_bars_pages_a_range_oldest_first_with_the_files_decimals(served: Served) -> None:
    start = served.first_ns + 10 * MINUTE_NS
    end = start + 250 * MINUTE_NS
    pages, next_start = [], start
    async with grpc.aio.insecure_channel(served.gateway.grpc_address) as channel:
        stub = pb_grpc.HistoryStub(channel)
        while True:
            request = pb.GetBarsRequest(
                venue="sim", symbol=DETECTED, timeframe="1m", start_ns=next_start, end_ns=end, limit=100
            )
            reply = await stub.GetBars(request, metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S)
            pages.append(list(reply.bars))
            if not reply.next_start_ns:
                break
            assert reply.next_start_ns == reply.bars[-1].open_time_ns + 1
            next_start = reply.next_start_ns
        # No end: up to the last bar held; the default limit holds all 630.
        whole = await stub.GetBars(
            pb.GetBarsRequest(venue="sim", symbol=DETECTED, timeframe="1m"),
            metadata=MESH_AUTH,
            timeout=CALL_TIMEOUT_S,
        )
        elsewhere = await stub.GetBars(
            pb.GetBarsRequest(venue="sim", symbol=DETECTED, timeframe="1h"),
            metadata=MESH_AUTH,
            timeout=CALL_TIMEOUT_S,
        )
    assert [len(page) for page in pages] == [100, 100, 50]
    bars = [bar for page in pages for bar in page]
    expected = [(ns, close) for ns, close in served.closes[DETECTED].items() if start <= ns < end]
    assert [(b.open_time_ns, b.close) for b in bars] == expected  # exact: "4010.10125", not a float's
    first = bars[0]
    assert (first.timeframe, first.volume, first.quote_volume, first.trade_count, first.closed) == (
        common.TIMEFRAME_1_MINUTE,
        "2.5",
        QUOTE_VOLUME,
        3,
        True,
    )
    assert len(whole.bars) == PAST + AHEAD and whole.next_start_ns == 0
    assert list(elsewhere.bars) == [] and elsewhere.next_start_ns == 0


async def test_get_bars_refuses_bad_input_naming_every_field(served: Served) -> None:
    async with grpc.aio.insecure_channel(served.gateway.grpc_address) as channel:
        stub = pb_grpc.HistoryStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.GetBars(
                pb.GetBarsRequest(symbol="X" * 65, timeframe="7m", start_ns=-1, end_ns=-5, limit=5001),
                metadata=MESH_AUTH,
                timeout=CALL_TIMEOUT_S,
            )
        with pytest.raises(grpc.aio.AioRpcError) as backwards:
            await stub.GetBars(
                pb.GetBarsRequest(venue="sim", symbol=DETECTED, timeframe="1m", start_ns=10, end_ns=10),
                metadata=MESH_AUTH,
                timeout=CALL_TIMEOUT_S,
            )
        with pytest.raises(grpc.aio.AioRpcError) as anonymous:
            await stub.GetBars(
                pb.GetBarsRequest(venue="sim", symbol=DETECTED, timeframe="1m"), timeout=CALL_TIMEOUT_S
            )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    fields = [name for name, _ in bad_request_violations(refused.value)]
    assert fields == ["venue", "symbol", "timeframe", "start_ns", "end_ns", "limit"]
    assert backwards.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [name for name, _ in bad_request_violations(backwards.value)] == ["end_ns"]
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED


async def test_buf_curl_gets_bars_over_grpc_web_with_a_read_key(served: Served) -> None:
    start = served.first_ns + 3 * MINUTE_NS
    body = {"venue": "sim", "symbol": SCREENED, "timeframe": "1m", "startNs": str(start), "limit": 2}
    web = await buf_curl(served.gateway, f"{HISTORY}/GetBars", "-d", json.dumps(body), key=served.key)
    assert web.returncode == 0, web.stderr
    answer = json.loads(web.stdout)
    assert [(int(b["openTimeNs"]), b["close"]) for b in answer["bars"]] == [  # the file's value, plain
        (start, "100.3003001"),  # 100.3003001000 in the file
        (start + MINUTE_NS, str(Decimal(screened_close(4)).normalize())),
    ]
    assert int(answer["nextStartNs"]) == start + MINUTE_NS + 1


# ---------------------------------------------------------------- the detector


def _detector(venue: Venue, gateway: str | None) -> Detector:
    config = DetectorConfig(
        mesh=MeshConfig((VenueLink("sim", venue.address),)),
        redis_url="redis://127.0.0.1:1",  # not reached: run() is not called
        database_url="postgresql://127.0.0.1:1/none",
        gateway=gateway,
    )
    return Detector(config)


def _minute_patch(detector: Detector, tmp_path: Path, symbol: str = DETECTED) -> str:
    """The shipped mean-reversion strategy on 1m bars of the sim's `symbol`."""
    text = (EXAMPLES_DIR / "mean_reversion.toml").read_text().replace('timeframe = "1s"', 'timeframe = "1m"')
    text = text.replace('symbols = ["BTC/USDT"]', f'symbols = ["{symbol}"]')
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = tmp_path / "mean_reversion_1m.toml"
    path.write_text(text)
    (patch,) = build_patches(detector.engine, load_strategy(path, detector.catalog), time.time_ns())
    return patch.id


async def _warm_bars(detector: Detector, patch_id: str, venue: Venue, now_ns: int) -> list[BarValue]:
    history = await bar_history(
        detector.engine,
        patch_id,
        detector.channels.get(venue.address),
        auth_metadata(),
        now_ns,
        detector.held,
    )
    bars = [event for _, event in history]
    assert all(isinstance(bar, BarValue) for bar in bars)
    return bars  # type: ignore[return-value]


async def test_the_detector_warms_a_patch_from_exactly_the_imported_bars(
    served: Served, venue: Venue, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(TOKEN, TEST_TOKEN)
    detector = _detector(venue, served.gateway.grpc_address)
    try:
        patch_id = _minute_patch(detector, tmp_path)
        ((_, need),) = detector.engine.history_needed(patch_id).items()
        now = time.time_ns()
        bars = await _warm_bars(detector, patch_id, venue, now)
        last_closed = now // MINUTE_NS * MINUTE_NS - MINUTE_NS
        imported = served.closes[DETECTED]
        assert [(b.open_time_ns, b.close) for b in bars] == [
            (ns, float(imported[ns]))
            for ns in range(last_closed - (need - 1) * MINUTE_NS, last_closed + 1, MINUTE_NS)
        ]
        assert all(4000 <= b.close < 4901 and b.volume == 2.5 and b.trade_count == 3 for b in bars)
        await detector.warm_up(patch_id, now)  # the same bars through the engine: no error
    finally:
        await detector.channels.close()
        await detector.held.close()


async def test_a_detector_process_activates_a_1m_patch_at_once_warmed_from_the_imported_bars(
    served: Served, module_database: str, bus_url: str, tmp_path: Path
) -> None:
    """Its 35 1m bars exist nowhere but in the imported history (the sim just started): without
    them the patch would warm from live data for 35 minutes."""
    text = (EXAMPLES_DIR / "mean_reversion.toml").read_text().replace('timeframe = "1s"', 'timeframe = "1m"')
    strategy = tmp_path / "mean_reversion.toml"
    strategy.write_text(text)
    processes = served.processes
    sim = processes.sim(served.gateway)
    args = ["--venue", f"sim={sim.address}", "--database-url", module_database, "--strategy", str(strategy)]
    detector = processes.mesh_service(served.gateway, "detector", *args, redis_url=bus_url)
    try:
        async with grpc.aio.insecure_channel(detector.address) as channel:
            stub = patch_grpc.PatchStub(channel)
            listed = await stub.ListPatches(
                patch_pb.ListPatchesRequest(), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
            )
            (patch,) = listed.patches
            assert patch.state == patch_pb.PATCH_STATE_ACTIVE  # ready means started: active already
            probes = stub.StreamProbes(
                patch_pb.StreamProbesRequest(patch_id=patch.patch_id, ports=["ohlcv.close"]),
                metadata=MESH_AUTH,
                timeout=CALL_TIMEOUT_S,
            )
            reply = await probes.read()
            assert isinstance(reply, patch_pb.StreamProbesResponse)
            first = reply.updates[0]
            probes.cancel()
    finally:
        await processes.stop(detector)
        await processes.stop(sim)
    assert "warms from live data" not in processes.log_path(detector).read_text()
    warmed_bar = first.ts_ns - MINUTE_NS  # the engine's time of the last warm bar: its close
    if warmed_bar in served.closes[DETECTED]:  # no live 1m bar of the sim closed since
        assert first.value.number == float(served.closes[DETECTED][warmed_bar])


async def test_with_the_gateway_down_or_holding_nothing_the_detector_warms_from_the_venue(
    served: Served,
    venue: Venue,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv(TOKEN, TEST_TOKEN)
    with socket.socket() as probe:  # a port nothing listens on: bound, then closed
        probe.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{probe.getsockname()[1]}"
    cases = (
        (nowhere, DETECTED, "history at the gateway", False),  # said once, however many warm-ups
        (served.gateway.grpc_address, "ETH/USDT", "history holds no 1m bars of sim ETH/USDT", True),  # each
        (None, DETECTED, None, True),  # no gateway configured: not asked, nothing said
    )
    for index, (gateway, symbol, said, each) in enumerate(cases):
        detector = _detector(venue, gateway)
        try:
            patch_id = _minute_patch(detector, tmp_path / str(index), symbol)
            caplog.clear()
            with caplog.at_level(logging.INFO, logger="trademesh.core.platform.warm_history"):

                async def from_venue(
                    detector: Detector = detector, patch_id: str = patch_id, each: bool = each
                ) -> list[BarValue] | None:
                    if each:
                        caplog.clear()
                    # The sim's own 1m candles: none before it started (a minute or more ago).
                    bars = await _warm_bars(detector, patch_id, venue, time.time_ns())
                    return bars or None

                bars = await until(from_venue, 90, 1.0, "a closed 1m candle of the sim")
            if symbol == DETECTED:  # the sim's BTC near 65000, not the imported 4000s
                assert all(b.close > 10_000 for b in bars), "the sim's prices, not the imported ones"
            lines = [r.getMessage() for r in caplog.records]
            if said is None:
                assert lines == []
            else:
                assert len(lines) == 1 and said in lines[0], lines
        finally:
            await detector.channels.close()
            await detector.held.close()


# ---------------------------------------------------------------- the Screener and Overwatch


@pytest.fixture
async def bus_url(redis_url: str) -> AsyncIterator[str]:
    async with redis_db(redis_url) as url:
        yield url


SCREEN = f"""
name = "history"
description = "ranks what only the imported history has"
venue = "sim"
cadence_s = 1
top = 3
max_age_s = 86400
filters = ["bar_volume >= 1000"]

[universe]
symbols = ["{SCREENED}"]

[bars]
timeframe = "1m"
momentum = {WINDOW}
volatility = 2
volume = {WINDOW}

[score]
weights = {{ momentum = 1.0 }}
"""


async def test_the_screener_ranks_a_symbol_from_its_imported_bars(
    served: Served, bus_url: str, tmp_path: Path
) -> None:
    screens = tmp_path / "screens"
    screens.mkdir()
    (screens / "history.toml").write_text(SCREEN)
    screener = served.processes.mesh_service(
        served.gateway, "screener", "--screens", str(screens), redis_url=bus_url
    )
    try:
        async with grpc.aio.insecure_channel(screener.address) as channel:
            stub = sc_grpc.ScreenerStub(channel)

            async def evaluated() -> sc.ScreenResult | None:
                got = await stub.GetResults(
                    sc.GetResultsRequest(screen="history"), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
                )
                return got.result if got.HasField("result") else None

            result = await until(evaluated, 30, what="the screen's first result")
    finally:
        await served.processes.stop(screener)
    # Nothing on the bus: the symbol and its bars come from the imported history alone.
    assert [r.symbol for r in result.ranked] == [SCREENED]
    metrics = {m.metric: m.value for m in result.ranked[0].metrics}
    assert float(metrics["momentum"]) == pytest.approx(float(Decimal("1.001") ** WINDOW - 1), rel=1e-9)
    assert Decimal(metrics["bar_volume"]) == WINDOW * Decimal(QUOTE_VOLUME)


async def test_overwatch_warms_its_markets_from_the_imported_bars(served: Served, bus_url: str) -> None:
    overwatch = served.processes.mesh_service(served.gateway, "overwatch", redis_url=bus_url)
    warm = warm_bars_needed(ClassifierConfig())
    try:
        async with grpc.aio.insecure_channel(overwatch.address) as channel:
            stub = ow_grpc.OverwatchStub(channel)

            async def board() -> dict[str, ow.MarketRegime] | None:
                got = await stub.GetBoard(ow.GetBoardRequest(), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S)
                found = {m.symbol: m for m in got.board.markets if m.venue == "sim"}
                return found if set(found) == {DETECTED, SCREENED} else None

            markets = await until(board, 30, what="both imported markets on the board")
    finally:
        await served.processes.stop(overwatch)
    started_ns = time.time_ns()
    for symbol, market in markets.items():
        # Warmed with the classifier's memory of imported bars, the last one closed by the start.
        assert market.bars == warm, symbol
        assert market.last_bar_ns in served.closes[symbol]
        assert started_ns - market.last_bar_ns < 5 * MINUTE_NS
        assert market.regime != REGIME_TO_PB[Regime.UNKNOWN]
