"""The Screener as a process: `trademesh screener` on a real Redis, with a screen of its own
(`--screens DIR`) over bars published the way the bar service publishes them (an Envelope of
bus.v1.Bars on bars.{<venue>}.1m), called over real gRPC and through the gateway.

Six symbols of a fresh venue: four rank by their momentum, one is refused by the volume filter,
one has too few bars and is left out. The result comes over GetResults and StreamResults and is
on the bus stream screens.<name>; a name not loaded is refused naming its field.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import httpx2
import pytest
import redis.asyncio as aioredis
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from mcp.client import Client
from mcp.client.streamable_http import streamable_http_client
from prometheus_client import REGISTRY

from tests.integration.gateway_support import (
    Gateway,
    Processes,
    both,
    grpcweb_call,
    key_taken,
    list_instances,
    module_database,
    new_key,
)
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import (
    CALL_TIMEOUT_S,
    TEST_TOKEN,
    Venue,
    VenueFactory,
    metric_samples,
    metrics_page,
    until,
)
from trademesh.bus.v1 import bus_pb2 as bus
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.platform.bus.codec import decode, encode_bars, encode_market
from trademesh.core.platform.config.env import REDIS_URL, TOKEN
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.core.platform.service.process import start_service
from trademesh.core.screener.engine.definition import parse_screen
from trademesh.core.screener.engine.evaluate import evaluate
from trademesh.core.screener.feed import ScreenFeed
from trademesh.core.screener.state import MarketState
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.registry.v1 import registry_pb2 as reg
from trademesh.screener.v1 import screener_pb2 as sc
from trademesh.screener.v1 import screener_pb2_grpc as sc_grpc

pytestmark = pytest.mark.integration
__all__ = ["database_url", "module_database", "redis_url"]  # the fixtures, for pytest

SCREENER = "trademesh.screener.v1.Screener"
NAME = "movers"
MINUTE_NS = 60 * 10**9
WINDOW = 5  # bars back of the momentum; bar_volume sums as many
# symbol -> (the last close over the first, per-bar quote volume); the first close is 100.
MOVES = {
    "AAA/USDT": ("150", "1000"),
    "BBB/USDT": ("130", "1000"),
    "CCC/USDT": ("120", "1000"),
    "DDD/USDT": ("110", "1000"),
    "EEE/USDT": ("300", "1"),  # the best move, but thin: the filter refuses it
}
SHORT = "FFF/USDT"  # two bars only: no momentum, left out
RANKED = ["AAA/USDT", "BBB/USDT", "CCC/USDT", "DDD/USDT"]

SCREEN = f"""
name = "{NAME}"
description = "the test's movers"
venue = "{{venue}}"
cadence_s = 1
top = 3
max_age_s = 86400
filters = ["bar_volume >= 1000"]

[bars]
timeframe = "1m"
momentum = {WINDOW}
volatility = 2
volume = {WINDOW}

[score]
weights = {{ momentum = 1.0 }}
"""


def _undecodable() -> float:
    """The feed's count of skipped entries in this process."""
    return REGISTRY.get_sample_value("trademesh_screener_undecodable_entries_total") or 0.0


def _bars(venue: str, symbol: str, last: str, quote_volume: str, count: int) -> list[bus.Bar]:
    """`count` closed 1m bars ending at the last whole minute, closing from 100 straight to `last`."""
    end = time.time_ns() // MINUTE_NS * MINUTE_NS
    step = (float(last) - 100) / max(count - 1, 1)
    out = []
    for index in range(count):
        close = "100" if index == 0 else (last if index == count - 1 else f"{100 + index * step:.4f}")
        out.append(bus.Bar(venue=venue, symbol=symbol, timeframe=common.TIMEFRAME_1_MINUTE,
                           open_time_ns=end - (count - index) * MINUTE_NS, open=close, high=close, low=close,
                           close=close, volume="1", quote_volume=quote_volume, trade_count=1))  # fmt: skip
    return out


async def _publish(client: Any, venue: str) -> None:
    stream = f"bars.{{{venue}}}.1m"
    for symbol, (last, volume) in MOVES.items():
        await client.xadd(
            stream, {b"d": encode_bars("bars/test", _bars(venue, symbol, last, volume, WINDOW + 1))}
        )
    await client.xadd(stream, {b"d": encode_bars("bars/test", _bars(venue, SHORT, "300", "1000", 2))})


@pytest.fixture
async def bus_url(redis_url: str) -> AsyncIterator[str]:
    async with redis_db(redis_url) as url:
        yield url


def _screens(tmp_path: Path, venue: str) -> Path:
    directory = tmp_path / "screens"
    directory.mkdir()
    (directory / f"{NAME}.toml").write_text(SCREEN.replace("{venue}", venue))
    return directory


def _check_result(result: sc.ScreenResult, venue: str) -> None:
    assert (result.screen, result.venue, result.top_n) == (NAME, venue, 3)
    assert [(r.rank, r.symbol) for r in result.ranked] == list(enumerate(RANKED, start=1))
    assert [r.score for r in result.ranked] == sorted((r.score for r in result.ranked), reverse=True)
    first = {m.metric: m.value for m in result.ranked[0].metrics}
    assert first == {"bar_volume": "5000.0", "momentum": "0.5"}
    assert (result.universe, result.left_out, result.filtered_out) == (6, 1, 1)
    assert dict(result.missing) == {"bar_volume": 1, "momentum": 1}
    assert result.computed_ns % 10**9 == 0  # at a multiple of the cadence


async def test_ranks_the_bars_on_the_bus_over_grpc_and_publishes_each_result(
    bus_url: str, tmp_path: Path
) -> None:
    venue = "t" + uuid.uuid4().hex[:10]
    client = aioredis.Redis.from_url(bus_url)
    await _publish(client, venue)
    log_path = tmp_path / "screener.log"
    with log_path.open("w") as log_file:
        args = ["screener", "--port", "0", "--metrics-port", "0", "--redis-url", bus_url,
                "--screens", str(_screens(tmp_path, venue))]  # fmt: skip
        service = Venue(start_service(args, env={TOKEN: TEST_TOKEN}, stderr=log_file), log_path)
        try:
            await _check_health_and_reflection(service.address)
            stub = sc_grpc.ScreenerStub(service.channel(TEST_TOKEN))
            listed = await stub.ListScreens(sc.ListScreensRequest(), timeout=CALL_TIMEOUT_S)
            [definition] = listed.screens
            assert (definition.name, definition.venue, list(definition.needed)) == (
                NAME, venue, ["bar_volume", "momentum"])  # fmt: skip

            async def evaluated() -> sc.ScreenResult | None:
                got = await stub.GetResults(sc.GetResultsRequest(screen=NAME), timeout=CALL_TIMEOUT_S)
                return got.result if got.HasField("result") else None

            _check_result(await until(evaluated, 20, what="the screen's first result"), venue)
            await _check_stream(stub, venue)
            await _check_on_bus(client, venue)
            await _check_bad_names(stub)
            await _check_metrics(service.metrics_port)
        finally:
            await service.close_channels()
            code = await asyncio.to_thread(service.service.terminate)
            await client.aclose()
    assert code == 0, service.log()


async def _check_health_and_reflection(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=CALL_TIMEOUT_S)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        ask = reflection_pb2.ServerReflectionRequest(list_services="")
        reply: Any = await reflection.ServerReflectionInfo(iter([ask])).read()
        assert SCREENER in {s.name for s in reply.list_services_response.service}


async def _check_stream(stub: sc_grpc.ScreenerAsyncStub, venue: str) -> None:
    """The latest first, then the next evaluation (a second later: the cadence's next multiple)."""
    call: Any = stub.StreamResults(sc.StreamResultsRequest(screens=[NAME]))
    latest: sc.StreamResultsResponse = await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)
    after: sc.StreamResultsResponse = await asyncio.wait_for(call.read(), 10)
    call.cancel()
    _check_result(latest.result, venue)
    _check_result(after.result, venue)
    assert after.result.computed_ns > latest.result.computed_ns


async def _check_on_bus(client: Any, venue: str) -> None:
    entries = await client.xrange(f"screens.{NAME}")
    results = [decode(fields).screen_result for _, fields in entries]
    assert len(results) >= 2
    _check_result(results[-1], venue)
    assert [r.computed_ns for r in results] == sorted({r.computed_ns for r in results})


async def _check_bad_names(stub: sc_grpc.ScreenerAsyncStub) -> None:
    call: Any = stub.StreamResults(sc.StreamResultsRequest(screens=[NAME, "nope"]))
    with pytest.raises(grpc.aio.AioRpcError) as stream_error:
        await call.read()
    assert stream_error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = bad_request_violations(stream_error.value)
    assert field == "screens[1]" and "'nope' is not a screen loaded" in description
    with pytest.raises(grpc.aio.AioRpcError) as get_error:
        await stub.GetResults(sc.GetResultsRequest(screen="Nope"), timeout=CALL_TIMEOUT_S)
    assert get_error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request_violations(get_error.value)] == ["screen"]


async def _check_metrics(port: int) -> None:
    text = await metrics_page(port)
    evaluations = metric_samples(text, "trademesh_screener_evaluations_total")[f'{{screen="{NAME}"}}']
    assert evaluations >= 2
    instruments = metric_samples(text, "trademesh_screener_instruments_total")
    assert instruments[f'{{outcome="ranked",screen="{NAME}"}}'] >= 4 * evaluations - 4
    assert instruments[f'{{outcome="filtered_out",screen="{NAME}"}}'] >= 1
    assert metric_samples(text, "trademesh_screener_evaluation_seconds_total")[f'{{screen="{NAME}"}}'] > 0
    assert metric_samples(text, "trademesh_screener_screens") == {"": 1.0}


async def test_registers_with_the_gateway_and_is_read_through_it_over_grpcweb_and_mcp(
    bus_url: str, module_database: str, tmp_path: Path
) -> None:
    """Registered under its name, kind core; with a key of the `read` scope alone, the result over
    gRPC-web (GetResults) and the `screen` MCP tool; a bad name refused over both, naming it."""
    venue = "t" + uuid.uuid4().hex[:10]
    client = aioredis.Redis.from_url(bus_url)
    try:
        await _publish(client, venue)
    finally:
        await client.aclose()
    screens = _screens(tmp_path, venue)
    processes = Processes(tmp_path, module_database)
    try:
        key, gateway = await both(
            lambda: new_key(module_database, "screen-reader", ["read"]), processes.gateway
        )
        service = processes.mesh_service(gateway, "screener", "--screens", str(screens), redis_url=bus_url)

        async def registered() -> reg.Instance | None:
            return (await list_instances(gateway)).get("screener")

        instance = await until(registered, 30, what="screener in the gateway's registry")
        assert instance.kind == reg.KIND_CORE and instance.address == service.address
        assert SCREENER in instance.services
        await key_taken(gateway, key)
        await _check_grpcweb(gateway, key, venue)
        await _check_mcp(gateway, key, venue)
    finally:
        await processes.stop_all()


async def _check_grpcweb(gateway: Gateway, key: str, venue: str) -> None:
    asked = sc.GetResultsRequest(screen=NAME).SerializeToString()

    async def evaluated() -> sc.ScreenResult | None:
        answer = await grpcweb_call(gateway, f"{SCREENER}/GetResults", asked, key=key)
        assert answer.code == grpc.StatusCode.OK.value[0], answer.message
        got = sc.GetResultsResponse.FromString(answer.messages[0])
        return got.result if got.HasField("result") else None

    _check_result(await until(evaluated, 20, what="a result through the gateway"), venue)
    bad = sc.GetResultsRequest(screen="nope").SerializeToString()
    refused = await grpcweb_call(gateway, f"{SCREENER}/GetResults", bad, key=key)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "screen" in refused.message and "'nope' is not a screen loaded" in refused.message


async def _check_mcp(gateway: Gateway, key: str, venue: str) -> None:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    async with http, Client(streamable_http_client(f"{gateway.url}/mcp", http_client=http)) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        annotations = listed["screen"].annotations
        assert annotations is not None and annotations.read_only_hint and not annotations.destructive_hint
        mine = await client.call_tool("screen", {"name": NAME})
        bad = await client.call_tool("screen", {"name": "nope"})
    assert not mine.is_error, mine.content
    got = mine.structured_content or {}
    assert got["screens"] == [NAME]
    result = got["result"]
    assert (result["screen"], result["venue"], result["top_n"]) == (NAME, venue, 3)
    assert [r["symbol"] for r in result["ranked"]] == RANKED
    assert result["ranked"][0]["metrics"] == {"bar_volume": "5000.0", "momentum": "0.5"}
    assert result["computed"].endswith("Z") and result["filtered_out"] == 1 and result["left_out"] == 1
    text = str(bad.content)
    assert bad.is_error and "invalid argument" in text
    assert "name" in text and "'nope' is not a screen loaded (loaded: movers)" in text, text


TICKER_SCREEN = """
name = "tight"
venue = "tk"
max_age_s = 600
[bars]
timeframe = "1m"
momentum = 1
[score]
weights = { spread_bps = -1.0, momentum = 1.0 }
"""


def _warming(feed: ScreenFeed) -> bool:
    """Read afresh each time (mypy would hold an asserted property's value across awaits)."""
    return feed.warming


async def test_the_feed_reads_bars_and_tickers_of_its_screens_venues_and_skips_what_is_not_theirs(
    bus_url: str,
) -> None:
    """A screen of a ticker metric reads its venue's tickers as well as its bars; the entries on
    the streams at the start are its warm-up; an entry that is not an Envelope is counted, not
    fatal; another venue's streams are not read."""
    screen = parse_screen(TICKER_SCREEN, "tight.toml")
    client: Any = aioredis.Redis.from_url(bus_url)
    now = time.time_ns()
    tick = md.MarketEvent(venue="tk", symbol="AAA/USDT", ts_event_ns=now,
                          ticker=md.Ticker(best_bid="99.5", best_ask="100.5"))  # fmt: skip
    try:
        await client.xadd(
            "bars.{tk}.1m", {b"d": encode_bars("bars/test", _bars("tk", "AAA/USDT", "110", "1", 2))}
        )
        await client.xadd("md.{tk}.tickers", {b"d": encode_market("ingest/test", [tick])})
        await client.xadd("md.{other}.tickers", {b"d": encode_market("ingest/test", [tick])})
        feed = ScreenFeed(client, MarketState([screen]), ticker_age_ms=600_000, batch=1, block_ms=50)
        # and its venue's instrument changes (a delisted symbol leaves its screens: docs/bus.md)
        assert feed.streams == ["bars.{tk}.1m", "md.{tk}.instruments", "md.{tk}.tickers"]
        await feed.mark_warm_up()
        assert _warming(feed)
        while await feed.read():
            pass
        assert not _warming(feed)
        await client.xadd("md.{tk}.tickers", {b"x": b"not an envelope"})
        before = _undecodable()
        assert await feed.read() == 1 and _undecodable() == before + 1
        [inputs] = feed.state.inputs(screen)
        assert inputs.symbol == "AAA/USDT" and len(inputs.bars) == 2
        assert inputs.ticker is not None and (inputs.ticker.bid, inputs.ticker.ask) == (
            Decimal("99.5"),
            Decimal("100.5"),
        )
        result = evaluate(screen, [inputs], now)
        assert [r.symbol for r in result.ranked] == ["AAA/USDT"]
        assert result.ranked[0].metrics["spread_bps"] == pytest.approx(100.0)
    finally:
        await client.aclose()


FUNDING_SIM = """
[[symbols]]
symbol = "ETH/USDT"
start_price = "3000"
tick_size = "0.01"
lot_size = "0.0001"
"""
# perpetual -> (its funding rate, its synthetic takers a second: 0 trades nothing in 24 h)
PERPETUALS = {
    "AAA/USDT:USDT": ("0.0001", 20),
    "BBB/USDT:USDT": ("-0.0002", 20),
    "CCC/USDT:USDT": ("0.0003", 20),
    "DDD/USDT:USDT": ("0.0009", 0),  # the best rate, but no volume: the filter refuses it
}
FUNDING_SCREEN = """
name = "carry"
venue = "{venue}"
cadence_s = 1
top = 2
max_age_s = 60
show = ["spread_bps"]
filters = ["volume_24h > 0"]

[score]
weights = { funding_rate = 1.0 }
"""


def _funding_sim() -> str:
    perpetuals = "".join(
        f'[[symbols]]\nsymbol = "{symbol}"\nstart_price = "100"\ntick_size = "0.01"\nlot_size = "0.01"\n'
        f'funding_rate = "{rate}"\ntrades_per_s = {takers}\n'
        for symbol, (rate, takers) in PERPETUALS.items()
    )
    return FUNDING_SIM + perpetuals


async def test_a_screen_filters_on_the_24h_volume_and_ranks_by_funding_rate_from_a_venue_through_ingest(
    fresh_venue: VenueFactory, bus_url: str, tmp_path: Path
) -> None:
    """Real parts: a sim venue with four perpetuals and a spot pair, ingest publishing its tickers
    (24h volume) and funding rates to the bus, the Screener reading them: the perpetuals that trade
    rank by their funding rate, the one without volume is filtered out, the spot pair (no funding
    rate) is left out."""
    venue = fresh_venue(_funding_sim(), "carry")
    mesh = tmp_path / "mesh.toml"
    mesh.write_text(
        f'[[venues]]\nname = "carry"\naddress = "{venue.address}"\nchannels = ["tickers", "funding"]\n'
    )
    screens = tmp_path / "screens"
    screens.mkdir()
    (screens / "carry.toml").write_text(FUNDING_SCREEN.replace("{venue}", "carry"))
    env = {TOKEN: TEST_TOKEN}
    with (tmp_path / "ingest.log").open("w") as ingest_log, (tmp_path / "screener.log").open("w") as log:
        ingest = start_service(
            ["ingest", "--port", "0", "--metrics-port", "-1", "--mesh-config", str(mesh),
             "--funding-every-s", "0"],
            env={**env, REDIS_URL: bus_url}, stderr=ingest_log,
        )  # fmt: skip
        args = [
            "screener",
            "--port",
            "0",
            "--metrics-port",
            "-1",
            "--redis-url",
            bus_url,
            "--screens",
            str(screens),
        ]
        service = Venue(start_service(args, env=env, stderr=log), tmp_path / "screener.log")
        try:
            stub = sc_grpc.ScreenerStub(service.channel(TEST_TOKEN))

            async def ranked_all() -> sc.ScreenResult | None:
                got = await stub.GetResults(sc.GetResultsRequest(screen="carry"), timeout=CALL_TIMEOUT_S)
                return got.result if got.HasField("result") and len(got.result.ranked) == 3 else None

            result = await until(ranked_all, 30, what="the three trading perpetuals ranked")
        finally:
            await service.close_channels()
            await asyncio.to_thread(service.service.terminate)
            await asyncio.to_thread(ingest.terminate)
    assert [r.symbol for r in result.ranked] == ["CCC/USDT:USDT", "AAA/USDT:USDT", "BBB/USDT:USDT"]
    metrics = [{m.metric: m.value for m in r.metrics} for r in result.ranked]
    assert [Decimal(m["funding_rate"]) for m in metrics] == [
        Decimal("0.0003"),
        Decimal("0.0001"),
        Decimal("-0.0002"),
    ]
    assert all(float(m["volume_24h"]) > 0 and "spread_bps" in m for m in metrics)
    assert result.top_n == 2
    assert (result.universe, result.filtered_out, result.left_out) == (5, 1, 1)
    assert dict(result.missing) == {"funding_rate": 1, "volume_24h": 0}, "the spot pair has no funding rate"
