"""The advisor as a real process in a mesh on the sim (gateway, sim, ingest, recorder, bars,
bridge, detector, the LLM stand-in as its own process): the examples' signals become decisions
and intents on the bus and in the recorder's tables, with the LLM's answers; Decide through the
gateway (buf curl, gRPC-web) and as an MCP tool; bad input as field violations while the
service serves on; a signal delivered twice is decided once; train and calibrate on recorded
bars. One mesh for the module."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import httpx2
import pytest
import redis.asyncio as aioredis
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.forked_services import run_command
from tests.integration.gateway_support import (
    Gateway,
    Processes,
    both,
    buf_curl,
    key_taken,
    new_key,
    run_at_once,
)
from tests.integration.mesh import ADVISOR_TEST_CONFIG, WARM_HISTORY_S, redis_db
from tests.integration.postgres_server import database_url, new_database
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, until
from tests.llm_standin import Standin, start_standin
from trademesh.advisor.v1 import messages_pb2 as am
from trademesh.advisor.v1 import service_pb2 as av
from trademesh.advisor.v1 import service_pb2_grpc as av_grpc
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.core.advisor.book_feed import BookFeed
from trademesh.core.advisor.synthetic import random_walk_bars
from trademesh.core.advisor.wire import decided_key
from trademesh.core.platform.bus.codec import FIELD, decode
from trademesh.core.platform.bus.names import ADVISOR_TELEMETRY, DECISIONS, INTENTS, SIGNALS
from trademesh.core.platform.config.env import DATABASE_URL, TOKEN
from trademesh.core.platform.errors import InvalidArgument
from trademesh.core.platform.patch_markets import ActivePatches
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.core.platform.service.process import ServiceProcess
from trademesh.core.tools.bars import BarStore
from trademesh.core.tools.book import LIVEDATA
from trademesh.core.tools.gaps import GapStore
from trademesh.core.tools.market import MarketTools
from trademesh.core.tools.recorded import RecorderDatabase
from trademesh.core.tools.resolver import VENUE_SERVICES, Instance, MeshResolver
from trademesh.core.tools.signals import SignalStore
from trademesh.core.tools.upstream import Upstream
from trademesh.signal.v1 import signal_pb2 as sig

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # not in the fast tier (./dev test --fast)
__all__ = ["database_url", "redis_url"]  # fixtures

AUTH = (("authorization", f"Bearer {TEST_TOKEN}"),)
ADVISOR = "trademesh.advisor.v1.Advisor"
DECISIONS_WITHIN_S = 120


@dataclass
class Mesh:
    processes: Processes
    gateway: Gateway
    advisor: ServiceProcess
    standin: Standin
    bus: str
    database: str
    key: str
    directory: Path
    sim: str  # the venue's and the bridge's addresses
    bridge: str

    def advisor_log(self) -> str:
        return "".join(p.read_text(errors="replace") for p in sorted(self.directory.glob("advisor-*.log")))


@pytest.fixture(scope="module")
async def mesh(
    tmp_path_factory: pytest.TempPathFactory, database_url: str, redis_url: str
) -> AsyncIterator[Mesh]:
    directory = tmp_path_factory.mktemp("advisor")
    config = directory / "advisor.toml"
    config.write_text(ADVISOR_TEST_CONFIG)
    async with new_database(database_url, "advisor") as database, redis_db(redis_url) as bus_url:
        processes = Processes(directory, database)
        standin = start_standin("good")

        def start() -> tuple[Gateway, ServiceProcess, ServiceProcess, ServiceProcess]:
            gateway = processes.gateway()
            sim = processes.sim(gateway, f"history_s = {WARM_HISTORY_S}\n")
            venue = ("--venue", f"sim={sim.address}")
            stores = ("--database-url", database)

            def service(name: str, *args: str) -> Callable[[], ServiceProcess]:
                return lambda: processes.mesh_service(gateway, name, *args, redis_url=bus_url)

            *_, bridge, advisor = run_at_once(
                service("ingest", *venue), service("bars", *venue), service("recorder", *stores),
                service("detector", *venue, *stores), service("bridge"),
                service(
                    "advisor", *venue, *stores, "--config", str(config), "--timeframe", "1s",
                    "--llm-base-url", standin.base_url, "--llm-models", "primary",
                    "--model-dir", str(directory / "models"),
                ),
            )  # fmt: skip
            return gateway, sim, bridge, advisor

        try:
            # The key is made (its CLI's start) while the mesh starts, its services at once.
            key, (gateway, sim, bridge, advisor) = await both(
                lambda: new_key(database, "advisor-test"), start
            )
            await key_taken(gateway, key)
            yield Mesh(
                processes,
                gateway,
                advisor,
                standin,
                bus_url,
                database,
                key,
                directory,
                sim.address,
                bridge.address,
            )
        finally:
            await processes.stop_all()
            standin.stop()


async def _entries(bus_url: str, stream: str) -> list[bus.Envelope]:
    client: Any = aioredis.Redis.from_url(bus_url)
    try:
        return [decode(fields) for _, fields in await client.xrange(stream)]
    finally:
        await client.aclose()


async def _bus_decisions(bus_url: str) -> list[am.Decision]:
    return [d for e in await _entries(bus_url, DECISIONS) for d in e.decisions.decisions]


async def _rows(database: str, query: str, *args: Any) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database)
    try:
        return list(await connection.fetch(query, *args))
    finally:
        await connection.close()


@contextlib.asynccontextmanager
async def _advisor(mesh: Mesh) -> AsyncIterator[av_grpc.AdvisorAsyncStub]:
    async with grpc.aio.insecure_channel(mesh.advisor.address) as channel:
        yield av_grpc.AdvisorStub(channel)


async def test_signals_become_decisions_and_intents_on_the_bus_and_in_the_recorder(mesh: Mesh) -> None:
    async def an_intent() -> am.Decision | None:
        found = [d for d in await _bus_decisions(mesh.bus) if d.outcome == am.OUTCOME_INTENT]
        return found[0] if found else None

    decision = await until(an_intent, DECISIONS_WITHIN_S, interval_s=0.5, what="an intent on the bus")
    signals = {s.signal_id for e in await _entries(mesh.bus, SIGNALS) for s in e.signals.signals}
    assert decision.signal_id in signals, "a decision names the detector's signal it decided"
    assert [s.stage for s in decision.stages] == list(range(1, 9))
    # Every stage ran (evaluation may be partial while the bars are fewer than the model needs).
    ran = (am.STAGE_STATUS_PASSED, am.STAGE_STATUS_DEGRADED)
    assert all(s.status in ran for s in decision.stages), decision.stages
    intent = decision.intent
    assert (intent.decision_id, intent.signal_id) == (decision.decision_id, decision.signal_id)
    assert Decimal(intent.size) > 0 and intent.venue == "sim" and intent.stop_loss and intent.take_profit
    intents = [i for e in await _entries(mesh.bus, INTENTS) for i in e.intents.intents]
    assert intent.intent_id in {i.intent_id for i in intents}
    events = [ev for e in await _entries(mesh.bus, ADVISOR_TELEMETRY) for ev in e.advisor_telemetry.events]
    mine = [ev for ev in events if ev.decision_id == decision.decision_id]
    names = {ev.fields["name"] for ev in mine}
    assert {"context_snapshot", "quality_score", "calibration_applied", "intent_emitted"} <= names
    assert len([ev for ev in mine if ev.kind == am.TELEMETRY_EVENT_KIND_STAGE_FINISHED]) == 8

    # The stand-in answered: the synthesis is the LLM's, the trace shows the model. Waited for:
    # on a loaded machine a decision's call may pass its deadline and fall back to the rules'
    # synthesis (said in its source), as a slow endpoint does in production.
    async def synthesised() -> am.Decision | None:
        found = [d for d in await _bus_decisions(mesh.bus) if d.synthesis.source == am.SYNTHESIS_SOURCE_LLM]
        return found[0] if found else None

    llm = await until(synthesised, DECISIONS_WITHIN_S, interval_s=0.5, what="a decision the LLM synthesised")
    assert llm.llm.model == "primary" and llm.llm.content

    async def recorded() -> tuple[list[asyncpg.Record], ...] | None:
        decisions = await _rows(
            mesh.database, "SELECT * FROM decisions WHERE decision_id = $1", decision.decision_id
        )
        intents = await _rows(mesh.database, "SELECT * FROM intents WHERE intent_id = $1", intent.intent_id)
        telemetry = await _rows(
            mesh.database, "SELECT * FROM advisor_telemetry WHERE decision_id = $1", decision.decision_id
        )
        return (
            (decisions, intents, telemetry) if decisions and intents and len(telemetry) == len(mine) else None
        )

    rows, intent_rows, telemetry_rows = await until(
        recorded, 30, interval_s=0.5, what="the decision recorded"
    )
    assert (rows[0]["outcome"], rows[0]["symbol"]) == ("intent", decision.symbol)
    assert am.Decision.FromString(rows[0]["decision"]) == decision
    assert intent_rows[0]["size"] == Decimal(intent.size)
    assert {r["name"] for r in telemetry_rows} == names

    # The API reads it back: by id with its telemetry, and in the list by strategy.
    async with _advisor(mesh) as advisor:
        got = await advisor.GetDecision(
            av.GetDecisionRequest(decision_id=decision.decision_id), metadata=AUTH
        )
        listed = await advisor.ListDecisions(
            av.ListDecisionsRequest(strategy_id=decision.strategy_id, outcome=am.OUTCOME_INTENT),
            metadata=AUTH,
        )
    assert got.decision == decision and len(got.events) == len(mine)
    assert decision.decision_id in {d.decision_id for d in listed.decisions}
    assert all(d.strategy_id == decision.strategy_id for d in listed.decisions)


HYPOTHETICAL = {
    "signal": {"venue": "sim", "symbol": "BTC/USDT", "direction": "DIRECTION_LONG", "conviction": "0.8"},
}


async def test_decide_through_the_gateway_with_buf_curl(mesh: Mesh) -> None:
    """gRPC-web through the gateway (the schema of proto/): a dry-run decision of a hypothetical
    signal with every stage, and the model and calibration in use."""

    async def decided() -> dict[str, Any] | None:
        done = await buf_curl(
            mesh.gateway, f"{ADVISOR}/Decide", "-d", json.dumps(HYPOTHETICAL), key=mesh.key, target="advisor"
        )
        if done.returncode != 0:
            return None  # not registered with the gateway yet, or the key not in its cache yet
        answer: dict[str, Any] = json.loads(done.stdout)["decision"]
        return answer

    decision = await until(decided, 60, interval_s=0.5, what="Decide through the gateway")
    assert decision["hypothetical"] is True and decision["signalId"].startswith("hypothetical-")
    assert [s["stage"] for s in decision["stages"]][:2] == ["STAGE_CONTEXT", "STAGE_MARKET_QUALITY"]
    assert len(decision["stages"]) == 8
    assert decision["outcome"] in ("OUTCOME_INTENT", "OUTCOME_BLOCKED")
    assert decision["decisionId"] not in {d.decision_id for d in await _bus_decisions(mesh.bus)}, "a dry run"

    model = await buf_curl(mesh.gateway, f"{ADVISOR}/GetModel", key=mesh.key, target="advisor")
    calibration = await buf_curl(mesh.gateway, f"{ADVISOR}/GetCalibration", key=mesh.key, target="advisor")
    assert model.returncode == 0 and calibration.returncode == 0, model.stderr + calibration.stderr
    assert json.loads(model.stdout)["model"]["shippedDefault"] is True
    regimes = json.loads(calibration.stdout)["calibration"]["regimes"]
    assert "fallback" in {r["regime"] for r in regimes}


async def test_the_advisors_api_as_mcp_tools_through_the_gateway(mesh: Mesh) -> None:
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {mesh.key}"}, timeout=30) as http,
        Client(streamable_http_client(f"{mesh.gateway.url}/mcp", http_client=http)) as client,
    ):
        decided = await client.call_tool(
            "advisor_decide",
            {"venue": "sim", "symbol": "ETH/USDT", "direction": "short", "conviction": "0.7"},
        )
        listed = await client.call_tool("advisor_decisions", {"limit": 5})
        bad = await client.call_tool(
            "advisor_decide", {"venue": "sim", "symbol": "ETHUSDT", "direction": "up"}
        )
    assert not decided.is_error, decided.content
    decision = decided.structured_content or {}
    assert decision["symbol"] == "ETH/USDT" and decision["hypothetical"] is True
    assert {s["stage"] for s in decision["stages"]} >= {"STAGE_CONTEXT", "STAGE_INTENT"}
    assert decision["stages"][0]["output"]["reference_price"], "each stage's output as an object"
    assert not listed.is_error and len((listed.structured_content or {})["decisions"]) <= 5
    assert bad.is_error and "invalid argument" in str(bad.content) and "ETHUSDT" in str(bad.content)


async def test_bad_input_is_field_violations_and_the_advisor_serves_on(mesh: Mesh) -> None:
    async with _advisor(mesh) as advisor:
        given = sig.Signal(venue="Not A Venue", symbol="BTCUSDT", direction=sig.DIRECTION_LONG)
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await advisor.Decide(av.DecideRequest(signal=given), metadata=AUTH, timeout=CALL_TIMEOUT_S)
        assert error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert {f for f, _ in bad_request_violations(error.value)} == {
            "signal.venue",
            "signal.symbol",
            "signal.conviction",
        }
        given = sig.Signal(venue="sim", symbol="BTC/USDT", conviction="1.5")
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await advisor.Decide(av.DecideRequest(signal=given), metadata=AUTH, timeout=CALL_TIMEOUT_S)
        assert {f for f, _ in bad_request_violations(error.value)} == {
            "signal.direction",
            "signal.conviction",
        }
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await advisor.ListDecisions(
                av.ListDecisionsRequest(page_size=501, page_token="%%"), metadata=AUTH
            )
        assert {f for f, _ in bad_request_violations(error.value)} == {"page_size"}
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await advisor.Decide(av.DecideRequest(), metadata=AUTH)
        assert {f for f, _ in bad_request_violations(error.value)} == {"source"}
        with pytest.raises(grpc.aio.AioRpcError) as error:
            await advisor.GetDecision(av.GetDecisionRequest(decision_id="nope"), metadata=AUTH)
        assert error.value.code() == grpc.StatusCode.NOT_FOUND
        model = await advisor.GetModel(av.GetModelRequest(), metadata=AUTH, timeout=CALL_TIMEOUT_S)
    # `--timeframe 1s` and no --model: the shipped 1s model (each timeframe ships its own).
    assert model.model.shipped_default and model.model.version.startswith("default-1s.")
    assert model.model.version in model.versions


async def test_a_signal_delivered_twice_is_decided_once_and_watched(mesh: Mesh) -> None:
    """The same signal in two bus entries (a detector's retried write): one decision, which a
    WatchDecisions stream opened before sees with its telemetry."""
    async with _advisor(mesh) as advisor:
        watch = advisor.WatchDecisions(
            av.WatchDecisionsRequest(strategy_id="manual", with_telemetry=True), metadata=AUTH, timeout=60
        )
        # A dry run of the same strategy first: once the stream shows it, the stream is live.
        dry = sig.Signal(venue="sim", symbol="SOL/USDT", direction=sig.DIRECTION_LONG, conviction="0.6",
                         strategy_id="manual")  # fmt: skip
        await advisor.Decide(av.DecideRequest(signal=dry), metadata=AUTH, timeout=CALL_TIMEOUT_S)
        first = await asyncio.wait_for(watch.read(), CALL_TIMEOUT_S)
        await _publish_twice(mesh)
        batch = await asyncio.wait_for(watch.read(), CALL_TIMEOUT_S)
        watch.cancel()
    assert isinstance(first, av.WatchDecisionsResponse) and first.decisions[0].hypothetical
    assert isinstance(batch, av.WatchDecisionsResponse)
    assert [d.signal_id for d in batch.decisions] == ["twice-0001"]
    assert {e.decision_id for e in batch.events} == {batch.decisions[0].decision_id}
    decided = [d for d in await _bus_decisions(mesh.bus) if d.signal_id == "twice-0001"]
    assert len(decided) == 1, [d.decision_id for d in decided]


async def test_a_signal_another_run_decided_is_not_published_again(mesh: Mesh) -> None:
    """Its mark is there (a run before this one, or another consumer, decided it) and its entry
    comes new: the decision made is dropped at the publish, the entry acknowledged."""
    client: Any = aioredis.Redis.from_url(mesh.bus)
    try:
        await client.set(decided_key("advisor", "elsewhere-0001"), b"a decision of another run", ex=60)
    finally:
        await client.aclose()
    await _publish_twice(mesh, "elsewhere-0001", times=1)
    assert not [d for d in await _bus_decisions(mesh.bus) if d.signal_id == "elsewhere-0001"]


async def _publish_twice(mesh: Mesh, signal_id: str = "twice-0001", times: int = 2) -> None:
    signal = sig.Signal(
        signal_id=signal_id, venue="sim", symbol="SOL/USDT", direction=sig.DIRECTION_SHORT,
        conviction="0.6", score="0.6", threshold="0.5", strategy_id="manual",
    )  # fmt: skip
    client: Any = aioredis.Redis.from_url(mesh.bus)
    try:
        ids = []
        for _ in range(times):
            now = time.time_ns()
            signal.ts_signal_ns = signal.ts_event_ns = now
            envelope = bus.Envelope(source="test", ts_publish_ns=now)
            envelope.signals.signals.append(signal)
            ids.append(await client.xadd(SIGNALS, {FIELD: envelope.SerializeToString()}))

        async def both_taken() -> bool | None:
            groups = {g["name"].decode(): g for g in await client.xinfo_groups(SIGNALS)}
            group = groups.get("advisor")
            done = group is not None and group["pending"] == 0 and group["last-delivered-id"] >= ids[-1]
            return True if done else None

        await until(both_taken, 30, interval_s=0.2, what="both entries decided and acknowledged")
    finally:
        await client.aclose()


# One offline command's deadline. Forked here, `advisor train` is 3.4 s of CPU and `calibrate` 4.7 s,
# most of it the libraries' import (scikit-learn with SciPy 2.6 s in each, matplotlib 0.9 s
# more in calibrate): the fits, samples and diagram on the test's 1,500 bars are 0.5 s, and 400
# bars cost the same 3.3 s (and give calibrate too few samples). At load 20 on the two cores they
# took 29-46 s and 40-57 s; the load of 40 the suite reaches (tests/forked_services.py) doubles
# that, past the 120 s it had.
OFFLINE_COMMAND_S = 300


def _cli(*args: str, database: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, DATABASE_URL: database}
    return run_command(["advisor", *args, "--database-url", database], env, timeout_s=OFFLINE_COMMAND_S)


async def _insert_bars(database: str, venue: str, symbol: str, count: int) -> None:
    bars = random_walk_bars(count, 7)
    candles = bars.candles(0, count)
    rows = [
        (
            venue,
            symbol,
            "1m",
            c.open_time_ns,
            c.open,
            c.high,
            c.low,
            c.close,
            c.volume,
            None,
            1,
            None,
            False,
            0,
        )
        for c in candles
    ]
    connection = await asyncpg.connect(database)
    try:
        await connection.copy_records_to_table(
            "bars", records=rows, columns=[
                "venue", "symbol", "timeframe", "open_time_ns", "open", "high", "low", "close", "volume",
                "quote_volume", "trade_count", "vwap", "repaired", "ts_publish_ns",
            ],
        )  # fmt: skip
    finally:
        await connection.close()


# Its two commands one after the other (OFFLINE_COMMAND_S each at most), and the module's mesh of
# seven services started in its time when it is the module's first test on its worker: at load 30
# here the mesh took 168-215 s and the test 89-112 s, once 304 s in all, past the suite's 300 s.
@pytest.mark.timeout(2 * OFFLINE_COMMAND_S + 180)
async def test_train_and_calibrate_on_recorded_bars(mesh: Mesh) -> None:
    """Bars of a market in the recorder's table: a versioned model the advisor then serves, a
    calibration with its reliability table and diagram; bad arguments are one line, exit 2."""
    await _insert_bars(mesh.database, "replay", "SYN/USDT", 1500)
    out = mesh.directory / "models"
    window = ("--venue", "replay", "--symbol", "SYN/USDT", "--since", "2026-01-01", "--until", "2026-01-04")
    # The two refusals (checked last) need nothing the training makes: they run beside it.
    trained, nothing, bad_time = await asyncio.gather(
        asyncio.to_thread(_cli, "train", *window, "--out", str(out), database=mesh.database),
        asyncio.to_thread(
            _cli, "train", "--venue", "replay", "--symbol", "NONE/USDT", "--since", "7d",
            database=mesh.database,
        ),
        asyncio.to_thread(
            _cli, "calibrate", "--venue", "replay", "--symbol", "SYN/USDT", "--since", "soon",
            database=mesh.database,
        ),
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    version = trained.stdout.split()[1]
    assert version.startswith("replay-syn-usdt-1m.") and (out / f"{version}.model.pkl").is_file()
    meta = json.loads((out / f"{version}.model.json").read_text())
    assert (meta["venue"], meta["symbol"], meta["report"]["samples"]) == ("replay", "SYN/USDT", 1475)
    assert "What it can and cannot predict" in (out / f"{version}.model.md").read_text()

    calibrated = await asyncio.to_thread(
        _cli, "calibrate", *window, "--model", version, "--model-dir", str(out), "--out", str(out),
        database=mesh.database,
    )  # fmt: skip
    assert calibrated.returncode == 0, calibrated.stderr
    assert "| calibrator |" in calibrated.stdout and "ECE" in calibrated.stdout
    assert (out / "replay-syn-usdt-1m.reliability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    written = json.loads((out / "replay-syn-usdt-1m.calibration.json").read_text())
    assert written["model_version"] == version and written["samples"] >= 50

    async with _advisor(mesh) as advisor:
        served = await advisor.GetModel(av.GetModelRequest(version=version), metadata=AUTH)
    assert served.model.report.venue == "replay" and served.versions[0] == version
    assert len(served.model.report.folds) == 5 and not served.model.shipped_default

    for done, named in ((nothing, "NONE/USDT"), (bad_time, "'soon'")):
        assert done.returncode == 2 and named in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr


async def test_a_look_at_a_venues_books_gives_each_symbols_top_as_the_single_tool_does(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The advisor's context refreshes its markets' books in one look (order_book_tops): each
    symbol's top as order_book_top answers it, a symbol without a book left out, a bad venue
    refused."""
    monkeypatch.setenv(TOKEN, TEST_TOKEN)  # the mesh token the advisor sends
    instances = [Instance("sim", mesh.sim, VENUE_SERVICES), Instance("bridge", mesh.bridge, (LIVEDATA,))]
    upstream = Upstream(MeshResolver(None, instances), CALL_TIMEOUT_S)
    db = RecorderDatabase(mesh.database, CALL_TIMEOUT_S)
    tools = MarketTools(upstream, BarStore(db), SignalStore(db), GapStore(db))
    try:

        async def both() -> dict[str, Any] | None:
            answer = await tools.order_book_tops("sim", ["BTC/USDT", "ETH/USDT", "DOGE/USDT"], 2)
            return answer if len(answer["books"]) == 2 else None

        answer = await until(both, 60, 0.5, "the bridge's books of BTC/USDT and ETH/USDT")
        assert answer["venue"] == "sim" and sorted(answer["books"]) == ["BTC/USDT", "ETH/USDT"]
        for symbol, top in answer["books"].items():
            single = await tools.order_book_top("sim", symbol, 2)
            assert set(top) == set(single) and (top["venue"], top["symbol"]) == ("sim", symbol)
            assert len(top["bids"]) == len(top["asks"]) == 2 and top["ts_event_ns"] > 0
            assert Decimal(top["bids"][0]["price"]) < Decimal(top["asks"][0]["price"])
            assert Decimal(top["bids"][1]["price"]) < Decimal(top["bids"][0]["price"])
        with pytest.raises(InvalidArgument, match="nowhere"):
            await tools.order_book_tops("nowhere", ["BTC/USDT"], 1)
    finally:
        await upstream.close()
        await db.close()


async def test_the_book_feed_keeps_the_bridges_tops_by_event_time(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The advisor's context keeps its markets' tops from a book subscription to the bridge
    (trademesh.core.advisor.book_feed): the top it holds as of a look's event time is the look's top
    (the bridge's book after the same events), for several looks as the sim's book moves."""
    monkeypatch.setenv(TOKEN, TEST_TOKEN)
    instances = [Instance("sim", mesh.sim, VENUE_SERVICES), Instance("bridge", mesh.bridge, (LIVEDATA,))]
    upstream = Upstream(MeshResolver(None, instances), CALL_TIMEOUT_S)
    db = RecorderDatabase(mesh.database, CALL_TIMEOUT_S)
    tools = MarketTools(upstream, BarStore(db), SignalStore(db), GapStore(db))
    feed = BookFeed(tools.book_events, 5_000_000_000)
    symbol = "ETH/USDT"
    feed.follow("sim", symbol)
    try:

        async def started() -> int | None:
            return feed.newest("sim", symbol)

        await until(started, 30, 0.05, "the feed's first top")
        seen: set[int] = set()
        for _ in range(5):
            look = await tools.order_book_top("sim", symbol, 1)
            at = int(look["ts_event_ns"])

            async def reached(at: int = at) -> bool | None:
                newest = feed.newest("sim", symbol)
                return True if newest is not None and newest >= at else None

            await until(reached, 10, 0.05, "the feed's tops past the look's time")
            kept = feed.at("sim", symbol, at)
            assert kept is not None and kept.ts_event_ns <= at
            best = (look["bids"][0], look["asks"][0])
            assert (kept.bid, kept.bid_size, kept.ask, kept.ask_size) == tuple(
                Decimal(level[part]) for level in best for part in ("price", "size")
            )
            seen.add(at)
            await asyncio.sleep(0.3)
        assert len(seen) >= 3  # the book moved between the looks
    finally:
        await feed.close()
        await upstream.close()
        await db.close()


async def test_the_advisor_follows_the_markets_of_the_detectors_active_patches(
    mesh: Mesh, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The markets the detector's active patches trade, through the Patch API (ListPatches) as
    the advisor finds the detector (the gateway's registry), are those the advisor says it
    follows from the start (trademesh.core.platform.patch_markets), before their first signals."""
    monkeypatch.setenv(TOKEN, TEST_TOKEN)
    resolver = MeshResolver(mesh.gateway.grpc_address)
    upstream = Upstream(resolver, CALL_TIMEOUT_S)
    patches = ActivePatches(upstream)
    try:

        async def listed() -> frozenset[tuple[str, str]] | None:
            await resolver.refresh()
            return await patches.poll() or None

        markets = await until(listed, 60, 0.5, "the detector's active patches")
    finally:
        await upstream.close()
        await resolver.close()
    assert {venue for venue, _ in markets} == {"sim"} and len(markets) >= 2
    said = "the detectors' active patches trade " + ", ".join(f"{v} {s}" for v, s in sorted(markets))

    async def followed() -> bool | None:
        return True if said in mesh.advisor_log() else None

    await until(followed, 30, 0.5, f"the advisor's log: {said}")


async def test_decide_for_venues_nobody_serves_is_not_found_and_follows_nothing(mesh: Mesh) -> None:
    """A read key's dry runs (MCP advisor_decide) for 20 venue names nobody serves: each answers
    NOT_FOUND naming the venue, and the advisor follows none of them (no part fetched, nothing
    said of them); a signal on the bus for one is not decided, said once."""
    names = [f"nope-{n}" for n in range(20)]

    async def reachable() -> bool | None:
        done = await buf_curl(mesh.gateway, f"{ADVISOR}/GetModel", key=mesh.key, target="advisor")
        return True if done.returncode == 0 else None  # registered, and the key in the cache

    await until(reachable, 60, interval_s=0.5, what="the advisor through the gateway")
    async with (
        httpx2.AsyncClient(headers={"Authorization": f"Bearer {mesh.key}"}, timeout=30) as http,
        Client(streamable_http_client(f"{mesh.gateway.url}/mcp", http_client=http)) as client,
    ):
        for name in names:
            answer = await client.call_tool(
                "advisor_decide", {"venue": name, "symbol": "BTC/USDT", "direction": "long"}
            )
            assert answer.is_error and "not found" in str(answer.content).lower(), answer.content
            assert f"no venue '{name}'" in str(answer.content), answer.content
    signal = sig.Signal(
        signal_id="nope-bus-1", venue="nope-bus", symbol="BTC/USDT", direction=sig.DIRECTION_LONG,
        conviction="0.7", strategy_id="trend", ts_signal_ns=time.time_ns(), ts_event_ns=time.time_ns(),
    )  # fmt: skip
    envelope = bus.Envelope(source="test")
    envelope.signals.signals.append(signal)
    client_redis: Any = aioredis.Redis.from_url(mesh.bus)
    try:
        await client_redis.xadd(SIGNALS, {FIELD: envelope.SerializeToString()})
    finally:
        await client_redis.aclose()

    async def refused() -> bool | None:
        return True if "signal nope-bus-1 not decided: no venue 'nope-bus'" in mesh.advisor_log() else None

    await until(refused, 30, 0.2, "the bus signal refused")
    said = [line for line in mesh.advisor_log().splitlines() if "nope-" in line]
    assert len(said) == 1, said  # the bus signal's refusal; no part of any of them fetched
