"""The Screener's tickers at once (trademesh.core.screener.prices) with real processes: a sim venue and
`trademesh screener` on an empty bus (no ingest, so no ticker stream at all). The screen ranks by
ticker metrics from its first evaluation: the screener asked the venue for every price in one
GetTickers call, the venue given by --venue, or found in the gateway's registry (as `trademesh up`
and compose run it). A venue that cannot answer leaves the screener evaluating (its ticker metrics
missing), said once in its log, and counted."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import grpc
import pytest
import redis.asyncio as aioredis

from tests.integration.gateway_support import MESH_AUTH, Processes, list_instances, module_database
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
from trademesh.core.platform.bus.codec import decode
from trademesh.core.platform.config.env import TOKEN
from trademesh.core.platform.service.process import start_service
from trademesh.marketdata.v1 import marketdata_pb2 as md
from trademesh.marketdata.v1 import marketdata_pb2_grpc as md_grpc
from trademesh.screener.v1 import screener_pb2 as sc

pytestmark = pytest.mark.integration
__all__ = ["database_url", "module_database", "redis_url"]  # the fixtures, for pytest

NAME = "spreads"
SYMBOLS = ["BTC/USDT", "ETH/USDT", "SOL/USDT"]  # the sim's
SCREEN = f"""
name = "{NAME}"
description = "the sim's markets by their spread, from tickers only"
venue = "sim"
cadence_s = 1
top = 3
max_age_s = 60
show = ["top_depth"]
filters = ["spread_bps >= 0"]

[score]
weights = {{ spread_bps = -1.0 }}
"""


@pytest.fixture
async def bus_url(redis_url: str) -> AsyncIterator[str]:
    async with redis_db(redis_url) as url:
        yield url


def _screener(tmp_path: Path, bus_url: str, venue_address: str) -> Venue:
    screens = _screens(tmp_path)
    log_path = tmp_path / "screener.log"
    with log_path.open("w") as log_file:
        args = ["screener", "--port", "0", "--metrics-port", "0", "--redis-url", bus_url,
                "--screens", str(screens), "--venue", f"sim={venue_address}"]  # fmt: skip
        return Venue(start_service(args, env={TOKEN: TEST_TOKEN}, stderr=log_file), log_path)


def _screens(tmp_path: Path) -> Path:
    screens = tmp_path / "screens"
    screens.mkdir(exist_ok=True)
    (screens / f"{NAME}.toml").write_text(SCREEN)
    return screens


def _check_first(first: sc.ScreenResult) -> None:
    """The screen's very first result ranks every sim symbol by its ticker metrics."""
    assert {r.symbol for r in first.ranked} == set(SYMBOLS)
    assert [r.rank for r in first.ranked] == [1, 2, 3]
    assert (first.universe, first.left_out, first.filtered_out) == (3, 0, 0)
    for ranked in first.ranked:
        metrics = {m.metric: m.value for m in ranked.metrics}
        assert Decimal(metrics["spread_bps"]) > 0 and Decimal(metrics["top_depth"]) > 0


async def _priced(address: str) -> None:
    """Until the sim at `address` has a market (a ticker) on each of its symbols."""
    async with grpc.aio.insecure_channel(address) as channel:
        market = md_grpc.MarketDataStub(channel)

        async def priced() -> bool | None:
            answer = await market.GetTickers(
                md.GetTickersRequest(), metadata=MESH_AUTH, timeout=CALL_TIMEOUT_S
            )
            return True if [t.symbol for t in answer.tickers] == SYMBOLS else None

        await until(priced, 30, 0.2, "a ticker of each of the sim's symbols")


async def _results_on_bus(client: Any) -> list[sc.ScreenResult]:
    """Every result the screener published (screens.<name>), oldest first."""
    return [decode(fields).screen_result for _, fields in await client.xrange(f"screens.{NAME}")]


async def test_a_screen_ranks_by_ticker_metrics_from_its_first_evaluation_without_a_ticker_stream(
    fresh_venue: VenueFactory, bus_url: str, tmp_path: Path
) -> None:
    venue = fresh_venue()
    await _priced(venue.address)
    client = aioredis.Redis.from_url(bus_url)
    service = _screener(tmp_path, bus_url, venue.address)
    try:

        async def published() -> list[sc.ScreenResult] | None:
            return await _results_on_bus(client) or None

        results = await until(published, 30, 0.2, "the screen's first result")
        _check_first(results[0])  # its very first evaluation: the venue's tickers at once, no stream
        text = await metrics_page(service.metrics_port)
        assert metric_samples(text, "trademesh_screener_seeded_tickers_total")['{venue="sim"}'] >= 3
        assert metric_samples(text, "trademesh_screener_seed_failures_total").get('{venue="sim"}', 0) == 0
    finally:
        await service.close_channels()
        code = await asyncio.to_thread(service.service.terminate)
        await client.aclose()
    assert code == 0, service.log()


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_venue_that_cannot_answer_leaves_the_screen_evaluating_said_once(
    bus_url: str, tmp_path: Path
) -> None:
    client = aioredis.Redis.from_url(bus_url)
    service = _screener(tmp_path, bus_url, f"127.0.0.1:{_closed_port()}")
    try:

        async def failed_twice() -> float | None:
            text = await metrics_page(service.metrics_port)
            failures = metric_samples(text, "trademesh_screener_seed_failures_total").get('{venue="sim"}', 0)
            return failures if failures >= 2 else None

        await until(failed_twice, 40, 0.5, "the unreachable venue asked twice (10 s apart)")
        results = await _results_on_bus(client)
        assert results and all(not r.ranked and r.universe == 0 for r in results)
        warnings = [line for line in service.log().splitlines() if "GetTickers" in line]
        assert len(warnings) == 1, warnings
        assert "sim's tickers at once" in warnings[0] and "asked again later" in warnings[0]
    finally:
        await service.close_channels()
        code = await asyncio.to_thread(service.service.terminate)
        await client.aclose()
    assert code == 0, service.log()


async def test_the_venue_is_found_in_the_gateways_registry(
    bus_url: str, module_database: str, tmp_path: Path
) -> None:
    """No --venue: the screener finds the sim where it registered (TRADEMESH_GATEWAY), at its start."""
    processes = Processes(tmp_path, module_database)
    client = aioredis.Redis.from_url(bus_url)
    try:
        gateway = await asyncio.to_thread(processes.gateway)
        sim = await asyncio.to_thread(processes.sim, gateway)

        async def registered() -> bool | None:
            return True if "sim" in await list_instances(gateway) else None

        await until(registered, 30, what="the sim registered with the gateway")
        await _priced(sim.address)
        screens = str(_screens(tmp_path))
        await asyncio.to_thread(
            processes.mesh_service, gateway, "screener", "--screens", screens, redis_url=bus_url
        )

        async def published() -> list[sc.ScreenResult] | None:
            return await _results_on_bus(client) or None

        results = await until(published, 30, 0.2, "the screen's first result")
        _check_first(results[0])
    finally:
        await client.aclose()
        await processes.stop_all()
