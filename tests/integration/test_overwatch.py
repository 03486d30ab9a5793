"""Overwatch as a process: `trademesh overwatch` on a real Redis, bars published on the bus the
way the bar service publishes them (Envelope of bus.v1.Bars on bars.{<venue>}.1m), called over
real gRPC.

A market's history already on its stream when the service starts warms it (its changes are not
published one by one: its regime is, once, as the bus is owed it); the bars after that change its
regime live: the change comes over StreamRegimes after its board, and on the bus stream regimes.1m.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Sequence
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

from tests.integration.gateway_support import (
    Gateway,
    Processes,
    both,
    grpcweb_call,
    key_taken,
    list_instances,
    module_database,
    mux_add,
    new_key,
    open_mux,
    open_stream,
)
from tests.integration.mesh import redis_db
from tests.integration.postgres_server import database_url
from tests.integration.redis_server import redis_url
from tests.integration.support import CALL_TIMEOUT_S, TEST_TOKEN, Venue, metric_samples, metrics_page, until
from tests.overwatch_support import bus_bar
from trademesh.common.v1 import common_pb2 as common
from trademesh.core.domain.model import Candle, Timeframe
from trademesh.core.domain.regime import Regime
from trademesh.core.overwatch.feed import BarFeed
from trademesh.core.overwatch.synthetic import SeriesSpec, segment_bars
from trademesh.core.platform.bus.codec import decode, encode_bars
from trademesh.core.platform.config.env import TOKEN
from trademesh.core.platform.rpc.status import bad_request_violations
from trademesh.core.platform.service.process import start_service
from trademesh.overwatch.v1 import overwatch_pb2 as ow
from trademesh.overwatch.v1 import overwatch_pb2_grpc as ow_grpc
from trademesh.registry.v1 import registry_pb2 as reg

pytestmark = pytest.mark.integration
__all__ = ["database_url", "module_database", "redis_url"]  # the fixtures, for pytest

OVERWATCH = "trademesh.overwatch.v1.Overwatch"
SYMBOL = "BTC/USDT"
WARM_BARS = 150  # on the stream before the service starts: more than the 100-bar warm-up
THIN_BARS = 60  # then thin volume: 0.15x, read as thin_liquidity within ~25 bars


async def _publish(client: Any, venue: str, candles: Sequence[Candle], per_entry: int) -> None:
    stream = f"bars.{{{venue}}}.1m"
    for start in range(0, len(candles), per_entry):
        chunk = [bus_bar(c, venue) for c in candles[start : start + per_entry]]
        await client.xadd(stream, {b"d": encode_bars("bars/test", chunk)})


@pytest.fixture
async def bus_url(redis_url: str) -> AsyncIterator[str]:
    """An emptied database of the test's own: the service reads every bars.* stream there."""
    async with redis_db(redis_url) as url:
        yield url


async def _changes_on_bus(client: Any) -> list[ow.RegimeChange]:
    entries = await client.xrange("regimes.1m")
    return [change for _, fields in entries for change in decode(fields).regimes.changes]


async def test_warms_from_the_stream_then_streams_and_publishes_a_live_change(
    bus_url: str, tmp_path: Path
) -> None:
    venue = "t" + uuid.uuid4().hex[:10]
    series = segment_bars(Regime.THIN_LIQUIDITY, THIN_BARS, seed=7, spec=SeriesSpec(warmup_bars=WARM_BARS))
    client = aioredis.Redis.from_url(bus_url)
    await _publish(client, venue, series.bars[:WARM_BARS], per_entry=50)
    log_path = tmp_path / "overwatch.log"
    with log_path.open("w") as log_file:
        args = [
            "overwatch",
            "--port",
            "0",
            "--metrics-port",
            "0",
            "--redis-url",
            bus_url,
            "--discover-s",
            "0.2",
        ]
        service = Venue(start_service(args, env={TOKEN: TEST_TOKEN}, stderr=log_file), log_path)
        try:
            stub = ow_grpc.OverwatchStub(service.channel(TEST_TOKEN))
            await _check_warm_board(stub, client, venue)
            await _check_live_change(stub, client, venue, series.bars[WARM_BARS:])
            await _check_bad_input(stub)
            await _check_metrics(service.metrics_port)
        finally:
            await service.close_channels()
            code = await asyncio.to_thread(service.service.terminate)
            await client.aclose()
    assert code == 0, service.log()


async def _check_warm_board(stub: ow_grpc.OverwatchAsyncStub, client: Any, venue: str) -> None:
    """Ready only once the history on the stream is read: the board has it all at once."""
    answer = await stub.GetBoard(ow.GetBoardRequest(), timeout=CALL_TIMEOUT_S)
    [market] = answer.board.markets
    assert (market.venue, market.symbol, market.timeframe) == (venue, SYMBOL, common.TIMEFRAME_1_MINUTE)
    assert market.bars == WARM_BARS
    assert market.regime not in (ow.REGIME_UNSPECIFIED, ow.REGIME_UNKNOWN, ow.REGIME_THIN_LIQUIDITY)
    assert market.updated_ns == market.last_bar_ns + 60 * 10**9  # the bar's close: the time given
    assert market.features.volume_ratio > 0.5
    # The warm-up's changes are not published one by one; the market's regime once, as owed
    # (never published before: from unknown), before the service is ready.
    [owed] = await _changes_on_bus(client)
    assert (owed.venue, owed.previous, owed.regime) == (venue, ow.REGIME_UNKNOWN, market.regime)
    assert owed.since_ns == market.since_ns
    other = await stub.GetBoard(ow.GetBoardRequest(filter=ow.MarketFilter(venues=["nowhere"])))
    assert list(other.board.markets) == []


async def _check_live_change(
    stub: ow_grpc.OverwatchAsyncStub, client: Any, venue: str, thin: Sequence[Candle]
) -> None:
    request = ow.StreamRegimesRequest(filter=ow.MarketFilter(venues=[venue], symbols=[SYMBOL]))
    call: Any = stub.StreamRegimes(request)
    first: ow.StreamRegimesResponse = await asyncio.wait_for(call.read(), CALL_TIMEOUT_S)
    assert first.WhichOneof("event") == "board" and len(first.board.markets) == 1
    before = first.board.markets[0].regime
    await _publish(client, venue, thin, per_entry=10)
    message: ow.StreamRegimesResponse = await asyncio.wait_for(call.read(), 30)
    change = message.change
    assert message.WhichOneof("event") == "change", message
    assert (change.venue, change.symbol, change.previous) == (venue, SYMBOL, before)
    assert change.regime == ow.REGIME_THIN_LIQUIDITY
    assert change.features.volume_ratio <= 0.35
    assert change.since_ns < change.at_bar_ns and change.at_ns == change.at_bar_ns + 60 * 10**9
    assert thin[0].open_time_ns <= change.since_ns
    call.cancel()

    async def on_bus() -> list[ow.RegimeChange] | None:
        changes = await _changes_on_bus(client)
        return changes[1:] or None  # after the warm-up's owed change

    assert await until(on_bus, 10, what="the change on regimes.1m") == [change]

    async def read_all() -> ow.MarketRegime | None:
        board = (await stub.GetBoard(ow.GetBoardRequest(), timeout=CALL_TIMEOUT_S)).board
        return board.markets[0] if board.markets[0].bars == WARM_BARS + len(thin) else None

    market = await until(read_all, 10, what="every bar read")
    assert market.regime == ow.REGIME_THIN_LIQUIDITY and market.since_ns == change.since_ns


async def _check_bad_input(stub: ow_grpc.OverwatchAsyncStub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as board_error:
        await stub.GetBoard(ow.GetBoardRequest(filter=ow.MarketFilter(venues=["sim", "Bad Venue"])))
    assert board_error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert [f for f, _ in bad_request_violations(board_error.value)] == ["filter.venues[1]"]
    call: Any = stub.StreamRegimes(ow.StreamRegimesRequest(filter=ow.MarketFilter(symbols=["BTCUSDT"])))
    with pytest.raises(grpc.aio.AioRpcError) as stream_error:
        await call.read()
    assert stream_error.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    [(field, description)] = bad_request_violations(stream_error.value)
    assert field == "filter.symbols[0]" and "'BTCUSDT' is not a symbol" in description


async def _check_metrics(port: int) -> None:
    text = await metrics_page(port)
    bars = metric_samples(text, "trademesh_overwatch_bars_total")
    assert bars == {
        '{timeframe="1m",warm="true"}': float(WARM_BARS),
        '{timeframe="1m",warm="false"}': float(THIN_BARS),
    }
    assert metric_samples(text, "trademesh_overwatch_markets") == {"": 1.0}
    changes = metric_samples(text, "trademesh_overwatch_changes_total")
    assert changes['{regime="thin_liquidity",warm="false"}'] == 1.0
    assert sum(v for k, v in changes.items() if 'warm="true"' in k) >= 1.0
    assert metric_samples(text, "trademesh_overwatch_classify_seconds_total")[""] > 0


async def test_registers_with_the_gateway_and_is_read_through_it_over_grpcweb_and_mcp(
    bus_url: str, module_database: str, tmp_path: Path
) -> None:
    """As every core service: registered under its name, kind core, with its gRPC service and
    metrics port; health SERVING; reflection lists the Overwatch service. Through the gateway, with
    a key of the `read` scope alone: the board over gRPC-web (GetBoard, StreamRegimes' first
    message) and the `regimes` MCP tool, filtered; a bad filter refused over both, naming it."""
    venue = "t" + uuid.uuid4().hex[:10]
    series = segment_bars(Regime.THIN_LIQUIDITY, THIN_BARS, seed=7, spec=SeriesSpec(warmup_bars=WARM_BARS))
    client = aioredis.Redis.from_url(bus_url)
    try:
        await _publish(client, venue, series.bars, per_entry=50)  # all of it warms the market: thin
    finally:
        await client.aclose()
    processes = Processes(tmp_path, module_database)
    try:
        key, gateway = await both(
            lambda: new_key(module_database, "regime-reader", ["read"]), processes.gateway
        )
        service = processes.mesh_service(gateway, "overwatch", "--metrics-port", "0", redis_url=bus_url)

        async def registered() -> reg.Instance | None:
            return (await list_instances(gateway)).get("overwatch")

        instance = await until(registered, 30, what="overwatch in the gateway's registry")
        assert instance.kind == reg.KIND_CORE and instance.address == service.address
        assert OVERWATCH in instance.services
        assert instance.metrics_port == service.info["metrics_port"] > 0
        await _check_health_and_reflection(service.address)
        # Only warm bars so far: the live series is there at 0 all the same (OverwatchNotClassifying).
        bars = metric_samples(
            await metrics_page(service.info["metrics_port"]), "trademesh_overwatch_bars_total"
        )
        assert bars['{timeframe="1m",warm="false"}'] == 0.0
        await key_taken(gateway, key)
        await _check_grpcweb(gateway, key, venue)
        await _check_mcp(gateway, key, venue)
    finally:
        await processes.stop_all()


async def _check_health_and_reflection(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        answer = await health.Check(health_pb2.HealthCheckRequest(service=""), timeout=CALL_TIMEOUT_S)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING
        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        ask = reflection_pb2.ServerReflectionRequest(list_services="")
        reply: Any = await reflection.ServerReflectionInfo(iter([ask])).read()
        assert OVERWATCH in {s.name for s in reply.list_services_response.service}


def _thin_market(markets: Sequence[ow.MarketRegime], venue: str) -> ow.MarketRegime:
    [market] = markets
    assert (market.venue, market.symbol, market.timeframe) == (venue, SYMBOL, common.TIMEFRAME_1_MINUTE)
    assert market.regime == ow.REGIME_THIN_LIQUIDITY and market.bars == WARM_BARS + THIN_BARS
    return market


async def _check_grpcweb(gateway: Gateway, key: str, venue: str) -> None:
    asked = ow.GetBoardRequest(filter=ow.MarketFilter(venues=[venue])).SerializeToString()
    answer = await grpcweb_call(gateway, f"{OVERWATCH}/GetBoard", asked, key=key)
    assert answer.code == grpc.StatusCode.OK.value[0], answer.message
    board = ow.GetBoardResponse.FromString(answer.messages[0]).board
    market = _thin_market(board.markets, venue)
    request = ow.StreamRegimesRequest(filter=ow.MarketFilter(venues=[venue], symbols=[SYMBOL]))
    stream = await open_stream(gateway, f"{OVERWATCH}/StreamRegimes", request.SerializeToString(), key=key)
    try:
        [first] = await stream.messages(1)
    finally:
        await stream.close()
    opened = ow.StreamRegimesResponse.FromString(first)
    assert opened.WhichOneof("event") == "board"
    assert _thin_market(opened.board.markets, venue).since_ns == market.since_ns
    bad = ow.GetBoardRequest(filter=ow.MarketFilter(venues=["Bad Venue"])).SerializeToString()
    refused = await grpcweb_call(gateway, f"{OVERWATCH}/GetBoard", bad, key=key)
    assert refused.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert "filter.venues[0]" in refused.message
    await _check_mux(gateway, key, request, market.since_ns)


async def _check_mux(gateway: Gateway, key: str, request: ow.StreamRegimesRequest, since_ns: int) -> None:
    """StreamRegimes as a subscription of a Studio tab's one Mux stream: its board in a data frame."""
    session = await open_mux(gateway, key)
    try:
        added = await mux_add(
            gateway,
            key,
            session.session_id,
            "regimes",
            f"{OVERWATCH}/StreamRegimes",
            request.SerializeToString(),
        )
        assert added.code == grpc.StatusCode.OK.value[0], added.message
        frames = await session.collect(lambda found: any(f.WhichOneof("frame") == "data" for f in found))
    finally:
        await session.close()
    data = next(f.data for f in frames if f.WhichOneof("frame") == "data")
    assert data.subscription_id == "regimes"
    board = ow.StreamRegimesResponse.FromString(data.message).board
    assert [m.since_ns for m in board.markets] == [since_ns]


async def _check_mcp(gateway: Gateway, key: str, venue: str) -> None:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    async with http, Client(streamable_http_client(f"{gateway.url}/mcp", http_client=http)) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        annotations = listed["regimes"].annotations
        assert annotations is not None and annotations.read_only_hint and not annotations.destructive_hint
        mine = await client.call_tool("regimes", {"venue": venue, "symbol": SYMBOL})
        other = await client.call_tool("regimes", {"venue": venue, "symbol": "ETH/USDT"})
        bad = await client.call_tool("regimes", {"venue": "Bad Venue", "symbol": "BTCUSDT"})
    assert not mine.is_error, mine.content
    [market] = (mine.structured_content or {})["markets"]
    assert (market["venue"], market["symbol"], market["timeframe"]) == (venue, SYMBOL, "1m")
    assert market["regime"] == "thin_liquidity" and market["bars"] == WARM_BARS + THIN_BARS
    assert market["updated_ns"] == market["last_bar_ns"] + 60 * 10**9 and market["since"].endswith("Z")
    assert not other.is_error and (other.structured_content or {})["markets"] == []
    text = str(bad.content)
    assert bad.is_error and "invalid argument" in text
    assert "venue" in text and "'BTCUSDT' is not a canonical symbol" in text, text


def _warming(feed: BarFeed) -> bool:
    """Read afresh each time (mypy would hold an asserted property's value across awaits)."""
    return feed.warming


async def test_the_feed_finds_streams_of_its_timeframe_and_a_stream_gone_while_warming_holds_back_nothing(
    bus_url: str,
) -> None:
    client: Any = aioredis.Redis.from_url(bus_url)
    candles = segment_bars(Regime.RANGE, 1, seed=1, spec=SeriesSpec(warmup_bars=3)).bars
    try:
        await _publish(client, "ta", candles[:2], per_entry=1)
        await client.xadd("bars.{ta}.1h", {b"d": encode_bars("bars/test", [bus_bar(candles[0], "ta")])})
        feed = BarFeed(client, Timeframe.M1, batch=1, block_ms=50)
        assert await feed.discover() == ["bars.{ta}.1m"] and _warming(feed)
        [first] = await feed.read()  # one entry a read: the second is still to come
        assert first.warm and first.bars[0].open_time_ns == candles[0].open_time_ns and _warming(feed)
        await client.delete("bars.{ta}.1m")
        assert await feed.read() == [] and not _warming(feed)
        await _publish(client, "tb", candles[2:3], per_entry=1)
        assert await feed.discover() == ["bars.{tb}.1m"] and await feed.discover() == []
        [late] = await feed.read()
        assert late.warm and late.stream == "bars.{tb}.1m"
        await client.xadd("bars.{tb}.1m", {b"d": encode_bars("bars/test", [])})
        await client.xadd("bars.{tb}.1m", {b"x": b"not an envelope"})
        await _publish(client, "tb", candles[:1], per_entry=1)
        live = [read for _ in range(4) for read in await feed.read()]  # one entry a read; then none
        assert [(len(r.bars), r.warm) for r in live] == [(0, False), (1, False)] and feed.undecodable == 1
    finally:
        await client.aclose()
